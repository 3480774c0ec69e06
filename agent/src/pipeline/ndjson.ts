/**
 * NDJSON frame log: one line per processed frame. Writes go through a stream with back-pressure
 * respected, so a slow disk slows the pipeline instead of buffering without bound.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import type { FrameResult } from './camera-pipeline.js';
import type { Box } from '../types.js';

export interface FrameLine {
  camera: string;
  frame: number;
  ptsNs: number;
  /** true when the detector ran on this frame. */
  detected: boolean;
  detections: Array<{ label: string; classId: number; score: number; box: Box }>;
  tracks?: Array<{ trackId: number; label: string; score: number; box: Box; source: 'detected' | 'predicted' }>;
  alerts?: string[];
}

const r1 = (v: number) => Math.round(v * 10) / 10;
const rbox = (b: Box): Box => ({ x: r1(b.x), y: r1(b.y), w: r1(b.w), h: r1(b.h) });
const r3 = (v: number) => Math.round(v * 1000) / 1000;

export function toFrameLine(r: FrameResult, includeTracks: boolean): FrameLine {
  const line: FrameLine = {
    camera: r.cameraId,
    frame: r.frame.index,
    ptsNs: r.frame.ptsNs,
    detected: r.detections !== undefined,
    detections: (r.detections ?? []).map((d) => ({ label: d.label, classId: d.classId, score: r3(d.score), box: rbox(d.box) })),
  };
  if (includeTracks) line.tracks = r.tracks.map((t) => ({ trackId: t.trackId, label: t.label, score: r3(t.score), box: rbox(t.box), source: t.source }));
  if (r.alerts.length) line.alerts = r.alerts.map((a) => a.id);
  return line;
}

export class NdjsonWriter {
  private stream: Writable | undefined;
  /** The one wait for room that every blocked write shares (one pair of listeners however many cameras wait). */
  private room: Promise<void> | undefined;

  /** `open`: the stream to write to (tests); by default stdout for '-', else the file, truncated. */
  constructor(private readonly target: string, private readonly open?: () => Writable) {}

  start(): void {
    if (this.stream) return;
    const s: Writable = this.stream = this.open?.() ?? (this.target === '-' ? process.stdout : createWriteStream(this.target, { flags: 'w' }));
    // An error with no write waiting (a full disk, an --out in a directory that does not exist) would
    // end the process as an unhandled 'error' event; the stream keeps it (errored) and the next write throws it.
    s.on('error', () => undefined);
  }

  async write(obj: unknown): Promise<void> {
    if (!this.stream) this.start();
    const s = this.stream as Writable;
    if (s.destroyed) throw closedError(s, this.target);
    if (!s.write(`${JSON.stringify(obj)}\n`)) await (this.room ??= drained(s, this.target).finally(() => { this.room = undefined; }));
  }

  async stop(): Promise<void> {
    const s = this.stream;
    this.stream = undefined;
    // A destroyed stream has nothing left to flush, and end() on it would throw or never call back.
    if (!s || s === process.stdout || s.destroyed) return;
    await new Promise<void>((resolve, reject) => s.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

function closedError(s: Writable, target: string): Error {
  return s.errored ?? new Error(`the frame log ${target === '-' ? '(stdout)' : target} was closed`);
}

/**
 * Waits for room in the stream, or fails when it closes instead. A stream that went away (a reader of
 * stdout that exited: EPIPE) errors the write that met it; a write waiting for 'drain' behind it (another
 * camera's) heard no error and waited for ever.
 */
async function drained(s: Writable, target: string): Promise<void> {
  const ac = new AbortController();
  try {
    await Promise.race([
      once(s, 'drain', { signal: ac.signal }),
      once(s, 'close', { signal: ac.signal }).then(() => { throw closedError(s, target); }),
    ]);
  } finally {
    ac.abort();
  }
}
