"""A GStreamer RTSP server for tests: a live test pattern at /cam behind Basic auth with the user and
password given (any characters), on a free port, printed as its first line ("port N").
Usage: /usr/bin/python3 test/helpers/rtsp-server.py USER PASSWORD (needs gir1.2-gst-rtsp-server-1.0)"""
import sys
import gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtspServer, GLib

Gst.init(None)
user, password = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_service('0')
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch('( videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=10/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 )')
factory.set_shared(True)
auth = GstRtspServer.RTSPAuth()
token = GstRtspServer.RTSPToken()
token.set_string('media.factory.role', 'user')  # writable_structure() hands Python a copy
auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
server.set_auth(auth)
permissions = GstRtspServer.RTSPPermissions()
permissions.add_role_from_structure(Gst.Structure.new_from_string('user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true'))
factory.set_permissions(permissions)
server.get_mount_points().add_factory('/cam', factory)
server.attach(None)
print(f'port {server.get_bound_port()}', flush=True)
GLib.MainLoop().run()
