/**
 * GStreamer pipeline strings per source kind. Every pipeline ends in packed RGB on an appsink named
 * `sink`. The decode step can be replaced per board (configs/boards/*.json `decode`), e.g.
 * `nvv4l2decoder ! nvvidconv` on Jetson, where software decodebin would cost a core.
 */
import type { SourceConfig } from './schema.js';

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

/**
 * The secrets of a source's config, longest first: an RTSP URL's user information as written and
 * percent-decoded, and its password alone. Texts that may quote them (GStreamer's errors quote the
 * pipeline, and so the URL) are masked with {@link maskSecrets}; maskUrlCredentials alone misses a
 * password that holds a `#`, `/` or `?` (the URL's userinfo seems to end there).
 */
export function sourceSecrets(src: SourceConfig): string[] {
  if (src.kind !== 'rtsp') return [];
  const found = new Set<string>();
  const m = /^[a-z][a-z0-9+.-]*:\/\/(.*)@[^@]*$/i.exec(src.url.split(/\s/)[0]);
  if (m) {
    const userinfo = m[1];
    const colon = userinfo.indexOf(':');
    const password = colon >= 0 ? userinfo.slice(colon + 1) : '';
    for (const s of [userinfo, password]) {
      if (s) found.add(s);
      const decoded = percentDecode(s);
      if (decoded) found.add(decoded);
    }
  }
  return [...found].sort((a, b) => b.length - a.length);
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

export function buildPipeline(src: SourceConfig, board: BoardCapture = {}): string {
  const decode = board.decode ?? 'decodebin';
  const tail = rgbTail(src, { sync: src.kind === 'file' && src.realtime, maxBuffers: 2 });
  switch (src.kind) {
    case 'file':
      return `filesrc location=${gstQuote(src.path)} ! ${decode} ! ${tail}`;
    case 'rtsp':
      return `rtspsrc location=${gstQuote(src.url)} latency=${src.latencyMs} protocols=${src.transport} ! ${decode} ! ${tail}`;
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
