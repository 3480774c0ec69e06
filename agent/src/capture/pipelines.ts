/**
 * GStreamer pipeline strings per source kind. Every pipeline ends in packed RGB on an appsink named
 * `sink`. The decode step can be replaced per board (configs/boards/*.json `decode`), e.g.
 * `nvv4l2decoder ! nvvidconv` on Jetson, where software decodebin would cost a core.
 */
import type { SourceConfig } from './schema.js';
import { ConfigError } from '../util/errors.js';

export interface BoardCapture {
  /** Elements between the demuxed/compressed stream and raw video; default `decodebin`. */
  decode?: string;
}

/** Quotes a value for gst_parse_launch (double quotes, backslash escapes). */
export function gstQuote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function rgbTail(src: SourceConfig, opts: { sync: boolean; maxBuffers: number }): string {
  const size = src.width && src.height ? `,width=${src.width},height=${src.height}` : '';
  const scale = size ? 'videoscale ! ' : '';
  // drop=false: our own queue decides what to drop, and counts it (appsink's drop would be silent).
  return `videoconvert ! ${scale}video/x-raw,format=RGB${size} ! appsink name=sink max-buffers=${opts.maxBuffers} drop=false sync=${opts.sync} emit-signals=false`;
}

type RtspSourceConfig = Extract<SourceConfig, { kind: 'rtsp' }>;

/** How rtspsrc is given a camera: the URL without credentials, and the credentials apart (`user-id`, `user-pw`). */
export interface RtspAuth {
  location: string;
  user?: string;
  password?: string;
}

/**
 * The URL's user information, split off the authority (RFC 3986: up to the first `/`, `?` or `#`) at
 * its last `@`. rtspsrc does not percent-decode the userinfo it parses from a URL, so a password with
 * `@ # / ? :` could not be given at all; it is decoded here and passed as `user-pw`.
 */
function splitUserinfo(url: string): { location: string; userinfo?: string; authority: string; rest: string } {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(url);
  if (!m) return { location: url, authority: '', rest: '' };
  const at = m[2].lastIndexOf('@');
  if (at < 0) return { location: url, authority: m[2], rest: m[3] };
  return { location: `${m[1]}${m[2].slice(at + 1)}${m[3]}`, userinfo: m[2].slice(0, at), authority: m[2], rest: m[3] };
}

/** A host, an IPv4 or a bracketed IPv6 address, with an optional port. */
const HOST_PORT = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d*)?$/i;

/**
 * Why an RTSP URL cannot be used as written, or undefined: a password with a raw `@ # / ?` (which
 * only percent-encoding keeps inside the user information) splits the URL elsewhere, and the camera
 * would get part of the password and a host made of the rest.
 */
export function rtspUrlProblem(url: string): string | undefined {
  const { userinfo, authority, rest } = splitUserinfo(url);
  const host = userinfo === undefined ? authority : authority.slice(userinfo.length + 1);
  if (rest.includes('@') && (userinfo !== undefined || !HOST_PORT.test(host))) {
    return 'a URL whose user and password are percent-encoded (@ as %40, # as %23, / as %2F, ? as %3F, : as %3A, % as %25), ' +
      'or the URL without them and "username" and "password" (or "passwordFile") beside it: this one\'s password seems to hold a raw @, #, / or ?';
  }
  return undefined;
}

/** `username`/`password` (or the password read from `passwordFile`) take the place of the URL's, which are percent-decoded. */
export function rtspAuth(src: RtspSourceConfig, filePassword?: string): RtspAuth {
  const problem = rtspUrlProblem(src.url);
  if (problem) throw new ConfigError(`Camera source "${src.id}": expected ${problem}`, [{ path: '/source/url', expected: problem, received: '(not shown: it holds a password)' }]);
  const { location, userinfo } = splitUserinfo(src.url);
  const colon = userinfo?.indexOf(':') ?? -1;
  const urlUser = userinfo === undefined ? undefined : percentDecode(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
  const urlPassword = userinfo !== undefined && colon >= 0 ? percentDecode(userinfo.slice(colon + 1)) : undefined;
  const user = src.username ?? (urlUser || undefined);
  const password = src.password ?? filePassword ?? urlPassword;
  return { location, ...(user !== undefined ? { user } : {}), ...(password !== undefined ? { password } : {}) };
}

/** Shorter secrets are left to maskUrlCredentials: masking each occurrence of 3 letters would garble the text. */
const MIN_LITERAL_SECRET = 4;

/**
 * The secrets of a source's config, longest first: an RTSP URL's user information and password as
 * written, percent-decoded and quoted for GStreamer, also as split at the URL's last `@` (a raw `@ # /
 * ?` in a password), and the password given apart (`password`, `passwordFile`'s, in `auth`). Texts
 * that may quote them (GStreamer's errors quote the pipeline) are masked with {@link maskSecrets};
 * maskUrlCredentials alone misses a password that holds a `#`, `/`, `?` or `"`.
 */
export function sourceSecrets(src: SourceConfig, auth?: RtspAuth): string[] {
  if (src.kind !== 'rtsp') return [];
  const found = new Set<string>();
  const add = (s: string | undefined) => {
    if (!s) return;
    for (const form of [s, percentDecode(s)]) {
      found.add(form);
      found.add(gstQuote(form).slice(1, -1));
    }
  };
  const addUserinfo = (userinfo: string | undefined) => {
    if (userinfo === undefined) return;
    add(userinfo);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) add(userinfo.slice(colon + 1));
  };
  addUserinfo(splitUserinfo(src.url).userinfo);
  addUserinfo(/^[a-z][a-z0-9+.-]*:\/\/(.*)@[^@]*$/is.exec(src.url)?.[1]);
  add(src.password);
  add(auth?.password);
  return [...found].filter((s) => s.length >= MIN_LITERAL_SECRET).sort((a, b) => b.length - a.length);
}

/** `text` with each of `secrets` (as given, longest first) replaced by `***`. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

function percentDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // a lone % (a password written undecoded): taken as written
  }
}

/** True when the source produces frames at its own pace (a camera): frames must be dropped, not waited for. */
export function isLive(src: SourceConfig): boolean {
  switch (src.kind) {
    case 'file': return src.realtime;
    case 'test': case 'pipeline': return src.live;
    default: return true;
  }
}

/** `auth`: an RTSP source's credentials as resolved at start (rtspAuth, with passwordFile read); from the config alone if absent. */
export function buildPipeline(src: SourceConfig, board: BoardCapture = {}, auth?: RtspAuth): string {
  const decode = board.decode ?? 'decodebin';
  const tail = rgbTail(src, { sync: src.kind === 'file' && src.realtime, maxBuffers: 2 });
  switch (src.kind) {
    case 'file':
      return `filesrc location=${gstQuote(src.path)} ! ${decode} ! ${tail}`;
    case 'rtsp': {
      const a = auth ?? rtspAuth(src);
      const credentials = `${a.user !== undefined ? ` user-id=${gstQuote(a.user)}` : ''}${a.password !== undefined ? ` user-pw=${gstQuote(a.password)}` : ''}`;
      return `rtspsrc location=${gstQuote(a.location)}${credentials} latency=${src.latencyMs} protocols=${src.transport} ! ${decode} ! ${tail}`;
    }
    case 'v4l2': {
      const rate = src.framerate ? ` ! video/x-raw,framerate=${src.framerate}/1` : '';
      // decodebin, never the board's hardware decoder: a USB camera's raw YUYV cannot enter
      // nvv4l2decoder (not-linked); decodebin passes raw video through and decodes MJPEG.
      return `v4l2src device=${gstQuote(src.device)}${rate} ! decodebin ! ${tail}`;
    }
    case 'jetson-csi':
      // Argus delivers NV12 in NVMM memory; nvvidconv copies it to system memory as BGRx.
      return `nvarguscamerasrc sensor-id=${src.sensorId} ! video/x-raw(memory:NVMM),width=${src.captureWidth},height=${src.captureHeight},framerate=${src.framerate}/1 ` +
        `! nvvidconv ! video/x-raw,format=BGRx ! ${tail}`;
    case 'test': {
      const size = `,width=${src.width ?? 640},height=${src.height ?? 480}`;
      const n = src.numFrames > 0 ? ` num-buffers=${src.numFrames}` : '';
      return `videotestsrc pattern=${src.pattern} is-live=${src.live}${n} ! video/x-raw,framerate=${src.framerate}/1${size} ! ${tail}`;
    }
    case 'pipeline':
      return /\bappsink\b[^!]*\bname=sink\b/.test(src.pipeline) ? src.pipeline : `${src.pipeline} ! ${tail}`;
  }
}
