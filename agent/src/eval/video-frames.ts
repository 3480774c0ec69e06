/**
 * Decodes a video file into packed RGB frames with `gst-launch-1.0 ... ! fdsink` and cuts stdout
 * into width*height*3-byte frames. A small, dependency-free frame source for evaluation and tests;
 * the agent's live path uses the appsink capture in agent/src/capture. Spawn is injected.
 */
import { spawn as nodeSpawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Frame } from '../types.js';
import { CaptureError, InputError } from '../util/errors.js';

export interface VideoFramesOptions {
  path: string;
  width: number;
  height: number;
  /** Frames per second used to synthesise ptsNs (the fdsink byte stream carries no timestamps). */
  fps: number;
  maxFrames?: number;
  signal?: AbortSignal;
  spawn?: typeof nodeSpawn;
}

export async function* videoFrames(opts: VideoFramesOptions): AsyncGenerator<Frame> {
  if (!/^[^!]+$/.test(opts.path)) throw new InputError(`Expected a file path without '!' but received ${JSON.stringify(opts.path)}`);
  const spawn = opts.spawn ?? nodeSpawn;
  const frameBytes = opts.width * opts.height * 3;
  const args = ['-q', 'filesrc', `location=${opts.path}`, '!', 'decodebin', '!', 'videoconvert', '!', 'videoscale', '!',
    `video/x-raw,format=RGB,width=${opts.width},height=${opts.height}`, '!', 'fdsink', 'fd=1'];
  const child = spawn('gst-launch-1.0', args, { stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcessByStdio<null, Readable, Readable>;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { if (stderr.length < 4000) stderr += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const spawnError = new Promise<Error>((resolve) => child.on('error', resolve));
  const onAbort = () => child.kill('SIGTERM');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let index = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  try {
    const reading = (async function* () { for await (const chunk of child.stdout) yield chunk as Buffer; })();
    const first = await Promise.race([reading.next(), spawnError.then((e) => e)]);
    if (first instanceof Error) throw new CaptureError(`could not run gst-launch-1.0 (${first.message}); install gstreamer1.0-tools`, { cause: first });
    const chunks = (async function* () { if (!first.done) yield first.value; yield* reading; })();
    for await (const chunk of chunks) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= frameBytes) {
        const all = Buffer.concat(pending);
        const data = new Uint8Array(all.buffer, all.byteOffset, frameBytes).slice();
        const rest = all.subarray(frameBytes);
        pending = rest.length > 0 ? [rest] : [];
        pendingBytes = rest.length;
        yield { width: opts.width, height: opts.height, data, index, ptsNs: Math.round((index * 1e9) / opts.fps), capturedAtNs: Number(process.hrtime.bigint()), sourceId: opts.path };
        index++;
        if (opts.maxFrames !== undefined && index >= opts.maxFrames) return;
      }
    }
    const code = await exited;
    if (code !== 0 && !opts.signal?.aborted) throw new CaptureError(`gst-launch-1.0 exited with ${code} decoding ${opts.path}: ${stderr.trim().slice(0, 500)}`);
    if (index === 0) throw new CaptureError(`no frame decoded from ${opts.path}; check that it is a video GStreamer can decode`);
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
}

export interface VideoInfo {
  width: number;
  height: number;
  fps: number;
}

/** Reads width, height and frame rate of a video file from the caps `gst-launch-1.0 -v` prints. */
export async function probeVideo(path: string, spawn: typeof nodeSpawn = nodeSpawn): Promise<VideoInfo> {
  const child = spawn('gst-launch-1.0', ['-v', 'filesrc', `location=${path}`, '!', 'decodebin', '!', 'videoconvert', '!', 'fakesink', 'num-buffers=1'], { stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcessByStdio<null, Readable, Readable>;
  let text = '';
  child.stdout.on('data', (d: Buffer) => { if (text.length < 64_000) text += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { if (text.length < 64_000) text += d.toString(); });
  const code = await new Promise<number | null>((resolve, reject) => { child.on('error', reject); child.on('close', resolve); })
    .catch((err: unknown) => { throw new CaptureError(`could not run gst-launch-1.0 (${(err as Error).message}); install gstreamer1.0-tools`, { cause: err }); });
  const m = /video\/x-raw[^\n]*?width=\(int\)(\d+), height=\(int\)(\d+)[^\n]*?framerate=\(fraction\)(\d+)\/(\d+)/.exec(text);
  if (code !== 0 || !m) throw new InputError(`Expected a video GStreamer can decode at ${path} but probing it failed (exit ${code}): ${text.split('\n').filter((l) => /ERROR|WARN/.test(l)).join(' ').slice(0, 300)}`);
  const den = Number(m[4]);
  return { width: Number(m[1]), height: Number(m[2]), fps: den > 0 && Number(m[3]) > 0 ? Number(m[3]) / den : 25 };
}
