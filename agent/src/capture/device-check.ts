/**
 * Why a v4l2 camera device cannot be opened, in the words an operator acts on. GStreamer's own
 * messages ("Cannot identify device", "This isn't a device", "Could not open device … for reading
 * and writing") do not say what to do; this looks at the path the way v4l2src does (stat, then an
 * open for reading and writing: gst_v4l2_open in sys/v4l2/v4l2_calls.c).
 */
import { accessSync, statSync, constants } from 'node:fs';

/** The file-system calls used, injectable where a test needs a case it cannot create (EACCES as root). */
export interface DeviceFs {
  stat(path: string): { isCharacterDevice(): boolean };
  /** Throws like fs.accessSync when `path` cannot be opened for reading and writing. */
  accessReadWrite(path: string): void;
}

const nodeFs: DeviceFs = {
  stat: (path) => statSync(path),
  accessReadWrite: (path) => accessSync(path, constants.R_OK | constants.W_OK),
};

/** What is wrong with `device`, or undefined when it looks like an openable video device. */
export function deviceProblem(device: string, fs: DeviceFs = nodeFs): string | undefined {
  let isChar: boolean;
  try {
    isChar = fs.stat(device).isCharacterDevice();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      return 'no such device (is the camera plugged in, and is this its path? `v4l2-ctl --list-devices` lists the video devices)';
    }
    if (code === 'EACCES') return permissionDenied(device);
    return `cannot read it (${(err as Error).message})`;
  }
  if (!isChar) return 'it is not a video device (expected a character device such as /dev/video0)';
  try {
    fs.accessReadWrite(device);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return permissionDenied(device);
    return `cannot open it for reading and writing (${(err as Error).message})`;
  }
  return undefined;
}

function permissionDenied(device: string): string {
  return `permission denied: the agent's user cannot open ${device} for reading and writing ` +
    '(add it to the `video` group, which owns video devices: `usermod -aG video <user>`, then restart the agent)';
}
