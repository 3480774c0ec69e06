/**
 * Camera frames from GStreamer through gstreamer-superficial's appsink.
 *
 * - Each pending appsink `pull()` and bus poll holds a libuv thread until GStreamer answers, so the
 *   launchers size UV_THREADPOOL_SIZE for the cameras (thread-pool.ts), and a source that would take
 *   the pool's last thread refuses to start; stopping the pipeline (state NULL) flushes the appsink and the
 *   bus, which makes both return: that is how a failing source stops without hanging.
 * - Bus errors end the attempt; live sources are restarted with jittered exponential backoff, a file
 *   is not (a missing file is an error, not something to wait for). End of stream ends the run of a
 *   file or test source; a camera (rtsp, v4l2, jetson-csi) has no end, so its EOS (rtspsrc posts one
 *   when the camera closes the connection, or ~30 s after it stops sending) is restarted like an error.
 * - A camera whose pipeline cannot start (a v4l2 device that is missing, not a video device, or not
 *   ours to open) is an error that says so, restarted like any other: a USB camera may come back.
 *   So is a file, test or raw pipeline source that cannot start, under its own restart policy.
 * - Each attempt builds a new Pipeline: one pipeline stopped then played again hangs at the second play
 *   (decodebin's dynamic pads). gstreamer-superficial 1.7.4 freed none, so every restart leaked one
 *   (its bus's fds, appsink, buffers); patches/gstreamer-superficial+1.7.4.patch (scripts/setup.sh)
 *   frees a pipeline once its bus poll has ended in NULL and its wrapper is collected.
 * - gstreamer-superficial does not expose buffer timestamps, so ptsNs is derived from the frame index
 *   and the negotiated framerate for a file or a non-live test or pipeline source (exact: every frame
 *   is there), and from the capture clock for a live source: a camera delivers fewer frames than its
 *   header claims (UDP loss, variable rate, a wrong header), and index ÷ rate then ran slow (a 30 s
 *   dwell fired after 60 s at half the frames).
 */
import { createRequire } from 'node:module';
import { setTimeout as delay } from 'node:timers/promises';
import type { Frame } from '../types.js';
import type { SourceConfig } from './schema.js';
import { readFileSync } from 'node:fs';
import { buildPipeline, isLive, maskSecrets, rtspAuth, sourceSecrets, type BoardCapture } from './pipelines.js';
import { maskUrlCredentials } from '../util/mask-url.js';
import { FrameQueue } from './frame-queue.js';
import { CaptureError } from '../util/errors.js';
import { deviceProblem } from './device-check.js';
import { Backoff } from '../link/backoff.js';
import { moduleLogger } from '../util/log.js';
import { threadPoolSizeFor, threadPoolSizeOf } from './thread-pool.js';

/** Sources with no end of their own: an end of stream from one means the camera went away. */
const CAMERA_KINDS: ReadonlySet<string> = new Set(['rtsp', 'v4l2', 'jetson-csi']);
/**
 * How long a source whose appsink read eos at start waits for a second bus message before taking it
 * for a failed start (see readStartFailure in runOnce): a started pipeline's next message comes at
 * once; a failed start's does not come at all. Well under the 3 s bound of a failed start.
 */
const REQUEUE_WAIT_MS = 1000;

export interface GstAppSink {
  pull(cb: (buf: Buffer | null, caps: Record<string, unknown>) => void): void;
  /** appsink's `drop` property (gstreamer-superficial maps GObject properties to accessors). */
  drop?: boolean;
  /** appsink's read-only `eos`: true at end of stream, and while the appsink has not started. */
  readonly eos?: boolean;
}
export interface GstPipeline {
  play(): void;
  stop(): void;
  sendEOS(): void;
  findChild(name: string): unknown;
  pollBus(cb: (msg: Record<string, unknown>) => void): void;
}
export interface GstModule {
  Pipeline: new (description: string) => GstPipeline;
}

export interface FrameSourceStats {
  /** Frames decoded by GStreamer and handed to the queue. */
  framesIn: number;
  /** Frames dropped by the capture queue because the pipeline was behind. */
  dropped: number;
  restarts: number;
  errors: number;
  lastError?: string;
}

export interface FrameSourceOptions {
  config: SourceConfig;
  board?: BoardCapture;
  /** Injected for tests; defaults to gstreamer-superficial. */
  gst?: GstModule;
  random?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  nowNs?: () => number;
  /** libuv pool size to check the running sources against; defaults to this process's (real GStreamer only). */
  threadPoolSize?: number;
}

/** What to do on each signal's abort, for the sources running under it. */
const abortHandlers = new WeakMap<AbortSignal, { stops: Set<() => void>; listener: () => void }>();

/**
 * Calls `stop` when `signal` aborts, until the returned function is called. One listener per signal
 * however many sources share it: a runner's 11th camera made Node warn MaxListenersExceededWarning,
 * which reads as a leak, though each source removed its own.
 */
function onAbort(signal: AbortSignal, stop: () => void): () => void {
  let entry = abortHandlers.get(signal);
  if (!entry) {
    const stops = new Set<() => void>();
    const listener = () => {
      abortHandlers.delete(signal);
      for (const s of [...stops]) s();
    };
    entry = { stops, listener };
    abortHandlers.set(signal, entry);
    signal.addEventListener('abort', listener, { once: true });
  }
  const { stops, listener } = entry;
  stops.add(stop);
  return () => {
    stops.delete(stop);
    if (stops.size === 0 && abortHandlers.get(signal)?.stops === stops) {
      abortHandlers.delete(signal);
      signal.removeEventListener('abort', listener);
    }
  };
}

/** This process's libuv pool, as libuv sized it from the environment at start. */
const PROCESS_THREAD_POOL = threadPoolSizeOf(process.env.UV_THREADPOOL_SIZE);
/** Sources whose frames() is running, each holding a pool thread for its bus poll and one for its pull. */
let runningSources = 0;

type AttemptEnd = { kind: 'eos' } | { kind: 'stopped' } | { kind: 'error'; message: string; fatal: boolean };

let gstModule: GstModule | undefined;
function loadGst(): GstModule {
  if (!gstModule) {
    try {
      // CommonJS with a native .node main: load it through createRequire.
      gstModule = createRequire(import.meta.url)('gstreamer-superficial') as GstModule;
    } catch (err) {
      throw new CaptureError(`Cannot load gstreamer-superficial (${(err as Error).message}). Possible fixes: install ` +
        'libgstreamer1.0-dev and libgstreamer-plugins-base1.0-dev, then run ./scripts/setup.sh (or `npm rebuild gstreamer-superficial`)', { cause: err });
    }
  }
  return gstModule;
}

/**
 * Waits `ms`, or less when `signal` aborts. timers/promises drops its abort listener when the timer
 * fires too; the hand-made one removed it only on abort, so each restart left one on the caller's
 * signal (MaxListenersExceededWarning after the 11th restart, and a slow leak on a camera that is down).
 */
const defaultSleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
  try {
    await delay(ms, undefined, { signal });
  } catch (err) {
    if (!signal?.aborted) throw err;
  }
};

export class GstFrameSource {
  readonly stats: FrameSourceStats = { framesIn: 0, dropped: 0, restarts: 0, errors: 0 };
  /** The pipeline given to GStreamer; it holds the camera's credentials: never log it, see {@link maskedPipeline}. */
  readonly pipelineDescription: string;
  /** The pipeline with its credentials masked, for messages. */
  readonly maskedPipeline: string;
  private readonly secrets: readonly string[];
  private readonly log = moduleLogger('capture');
  /** Asks the running attempt to end (EOS through the pipeline, then stop). */
  private requestStop: (() => void) | undefined;

  constructor(private readonly opts: FrameSourceOptions) {
    const cfg = opts.config;
    const auth = cfg.kind === 'rtsp' ? rtspAuth(cfg, cfg.passwordFile !== undefined ? readPasswordFile(cfg.id, cfg.passwordFile) : undefined) : undefined;
    this.pipelineDescription = buildPipeline(cfg, opts.board, auth);
    this.secrets = sourceSecrets(cfg, auth);
    this.maskedPipeline = this.mask(this.pipelineDescription);
  }

  /**
   * `text` with the camera's credentials masked. Every message of this source passes here: they
   * reach the journal, telemetry, the fleet's retained state (health reason) and `run`'s output, and
   * GStreamer's own errors may quote the URL or the whole pipeline.
   */
  private mask(text: string): string {
    return maskUrlCredentials(maskSecrets(text, this.secrets));
  }

  get live(): boolean {
    return isLive(this.opts.config);
  }

  /**
   * Frames in capture order. Ends at end of stream, at `maxFrames`, or when `signal` aborts; throws a
   * CaptureError when the source fails for good.
   */
  async *frames(signal?: AbortSignal): AsyncGenerator<Frame> {
    const cfg = this.opts.config;
    const pool = this.opts.threadPoolSize ?? (this.opts.gst ? undefined : PROCESS_THREAD_POOL);
    // Each running source holds a pool thread for its bus poll for good: once they hold every thread,
    // no pull, resize or file write runs again, and every camera stalls without an error.
    const cameras = runningSources + 1;
    if (pool !== undefined && cameras >= pool) {
      throw new CaptureError(`Camera source "${cfg.id}" cannot start: ${cameras} cameras would hold all ${pool} threads of libuv's pool ` +
        `(UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 'unset'}; each camera holds one for its bus and one while it waits for a frame) ` +
        `and every camera would stall. Start the agent through bin/edge-agent or the systemd unit, which size the pool, or set ` +
        `UV_THREADPOOL_SIZE to at least ${threadPoolSizeFor(cameras)} (2 per camera + 4) before node starts`);
    }
    runningSources++;
    try {
      yield* this.framesRunning(cfg, signal);
    } finally {
      runningSources--;
    }
  }

  private async *framesRunning(cfg: SourceConfig, signal?: AbortSignal): AsyncGenerator<Frame> {
    const queue = new FrameQueue<Frame>(cfg.queueSize, this.live ? 'drop-oldest' : 'block', () => { this.stats.dropped++; });
    let failure: CaptureError | undefined;
    let stopRequested = false;
    const stop = () => {
      stopRequested = true;
      this.requestStop?.();
      queue.end();
    };
    const unlisten = signal ? onAbort(signal, stop) : undefined;
    const producer = this.produce(queue, () => stopRequested, signal).then(
      (err) => { failure = err; queue.end(); },
      // No `cause`: it would carry the unmasked message into whatever serialises the error.
      (err: unknown) => { failure = new CaptureError(this.mask(String((err as Error).message ?? err))); queue.end(); },
    );
    try {
      for (;;) {
        const frame = await queue.shift();
        if (!frame) break;
        yield frame;
      }
      await producer;
      if (failure && !stopRequested) throw failure;
    } finally {
      unlisten?.();
      stop();
      await producer;
    }
  }

  private async produce(queue: FrameQueue<Frame>, stopped: () => boolean, signal?: AbortSignal): Promise<CaptureError | undefined> {
    const cfg = this.opts.config;
    const maxRetries = cfg.reconnect.maxRetries ?? (cfg.kind === 'file' ? 0 : Number.MAX_SAFE_INTEGER);
    const random = this.opts.random ?? Math.random;
    const sleep = this.opts.sleep ?? defaultSleep;
    const backoff = new Backoff({ initialMs: cfg.reconnect.initialDelayMs, maxMs: cfg.reconnect.maxDelayMs, random });
    let index = 0;
    // Frame.segment: the connection's number, one more at each restart (even one that delivers nothing).
    let segment = 0;
    const startNs = (this.opts.nowNs ?? (() => Number(process.hrtime.bigint())))();
    const pts = new PtsClock(startNs, { clockTimed: this.live && cfg.kind !== 'file' });
    for (;;) {
      const before = this.stats.framesIn;
      let end = await this.runOnce(queue, { nextIndex: () => index++, stopped, pts, segment });
      if (end.kind === 'eos' && CAMERA_KINDS.has(cfg.kind) && !stopped()) {
        end = { kind: 'error', fatal: false, message: 'the camera ended its stream (end of stream from a live camera)' };
      }
      if (end.kind !== 'error' || stopped()) return undefined;
      end = { ...end, message: this.mask(end.message) };
      this.stats.errors++;
      this.stats.lastError = end.message;
      // A run that delivered frames was healthy: the next failure starts the backoff afresh.
      if (this.stats.framesIn > before) backoff.reset();
      const attempt = backoff.attempts;
      if (end.fatal || attempt >= maxRetries) {
        return new CaptureError(`Camera source "${cfg.id}" failed: ${end.message}` +
          (end.fatal ? '' : attempt > 0 ? ` (gave up after ${attempt} restart${attempt > 1 ? 's' : ''})` : ''));
      }
      const delayMs = backoff.nextDelayMs();
      this.log.warn({ source: cfg.id, error: end.message, attempt, delayMs }, 'camera source failed; restarting');
      this.stats.restarts++;
      pts.newConnection();
      segment++;
      await sleep(delayMs, signal);
      if (stopped()) return undefined;
    }
  }

  private runOnce(queue: FrameQueue<Frame>, ctx: { nextIndex: () => number; stopped: () => boolean; pts: PtsClock; segment: number }): Promise<AttemptEnd> {
    const cfg = this.opts.config;
    const gst = this.opts.gst ?? loadGst();
    const nowNs = this.opts.nowNs ?? (() => Number(process.hrtime.bigint()));
    let pipeline: GstPipeline;
    try {
      pipeline = new gst.Pipeline(this.pipelineDescription);
    } catch (err) {
      return Promise.resolve({ kind: 'error', fatal: true, message: `invalid GStreamer pipeline (${(err as Error).message}): ${this.maskedPipeline}` });
    }
    const sink = pipeline.findChild('sink') as GstAppSink | undefined;
    if (!sink || typeof sink.pull !== 'function') {
      pipeline.stop();
      return Promise.resolve({ kind: 'error', fatal: true, message: `the pipeline has no appsink named "sink": ${this.maskedPipeline}` });
    }
    return new Promise<AttemptEnd>((resolve) => {
      let busError: string | undefined;
      /** The bus error's message alone, without GStreamer's debug line. */
      let busMessage: string | undefined;
      let done = false;
      let eosRequested = false;
      let startFailed = false;
      let stoppedToRead = false;
      /** Set while a possible failed start waits to see whether gstreamer-superficial polls on (readStartFailure). */
      let requeueWait: NodeJS.Timeout | undefined;
      let fallback: NodeJS.Timeout | undefined;
      // A camera whose appsink never started failed to start; another source whose appsink reads
      // eos at once may also have had an empty stream (see below), so it failed only if an element said so.
      const outcome = (): AttemptEnd => (startFailed && (CAMERA_KINDS.has(cfg.kind) || busError) ? { kind: 'error', fatal: false, message: this.startFailure(busMessage, busError) }
        : busError ? { kind: 'error', fatal: false, message: busError }
        : ctx.stopped() || (cfg.maxFrames > 0 && this.stats.framesIn >= cfg.maxFrames) ? { kind: 'stopped' } : { kind: 'eos' });
      // Ends the attempt. Called from the bus callback whenever possible: gstreamer-superficial
      // re-queues its blocking bus poll unless the pipeline is in NULL when the callback returns, and
      // a poll left waiting on a stopped pipeline never returns (process exit then hangs joining the
      // thread pool, seen with gdb). So a stop is an EOS request, and the bus's EOS stops it.
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(fallback);
        clearTimeout(requeueWait);
        pipeline.stop();
        if (this.requestStop === requestEos) this.requestStop = undefined;
        resolve(outcome());
      };
      const requestEos = () => {
        if (eosRequested || done || startFailed) return; // a failed start is ending already
        eosRequested = true;
        // sendEOS runs on this thread and waits for the source's streaming thread to let go of its
        // pad (basesrc takes the stream lock). That thread may be waiting for room in the full
        // appsink (drop=false), which only a pull answered on this thread makes: a main thread busy
        // for ~80 ms before the stop hung the agent for good, deaf to SIGTERM. Samples after a stop
        // are discarded anyway, so let the appsink drop them; setting `drop` wakes a waiting render
        // (gst_app_sink_set_drop signals the appsink's condition).
        sink.drop = true;
        pipeline.sendEOS();
        // A pipeline that cannot carry EOS (stalled source) is stopped directly after a bound.
        fallback = setTimeout(finish, 3000);
      };
      this.requestStop = requestEos;
      const onBus = (msg: Record<string, unknown>) => {
        if (requeueWait !== undefined) {
          // gstreamer-superficial polled on by itself: the pipeline is not in NULL, so it started, and
          // its appsink read eos because the stream was empty. Its EOS (or an error) ends the attempt.
          clearTimeout(requeueWait);
          requeueWait = undefined;
          startFailed = false;
        }
        if (msg.type === 'error') {
          busMessage = String(msg.message ?? 'error');
          busError = `${busMessage}${msg.debug ? ` (${String(msg.debug).split('\n').pop()})` : ''}`;
          finish(); // flushes the appsink: the pending pull returns null
        } else if (msg.type === 'eos') {
          finish();
        } else if (startFailed && !done) {
          readStartFailure(msg);
        }
      };
      // A failed start leaves the pipeline in NULL, so gstreamer-superficial stops polling after the
      // first message (the state change of the first element started, the appsink), and the source's
      // error waits unread behind the others. Read on, one message per poll, and only while one is sure
      // to come (a poll that waits for ever keeps the process from exiting): stopping returns each
      // started element to NULL and posts that, after the error.
      //
      // An empty stream (a file, test or raw pipeline source) can read eos at once too, in a race, and
      // its first message is the same READY. Stopped here, it hung: its pipeline had started, so
      // going to NULL set its bus flushing, the stop's messages never came, and the poll waited for
      // ever (the process could not exit). So the first READY is not acted on at once: a pipeline
      // not in NULL is polled on by gstreamer-superficial, and its next message comes (onBus then
      // takes it for started); one in NULL, a failed start, is not, and is stopped to read on.
      const readStartFailure = (msg: Record<string, unknown>) => {
        const newState = msg.type === 'state-changed' ? String(msg['new-state']) : '';
        if (!stoppedToRead) {
          if (newState !== 'GST_STATE_READY') { finish(); return; }
          requeueWait = setTimeout(() => {
            requeueWait = undefined;
            if (done) return;
            stoppedToRead = true;
            pipeline.stop();
            pipeline.pollBus(onBus);
          }, REQUEUE_WAIT_MS);
          return;
        } else if (newState === 'GST_STATE_NULL') {
          finish(); // the stop's own messages: no element posted an error
          return;
        }
        pipeline.pollBus(onBus);
      };
      pipeline.pollBus(onBus);
      const onSample = (buf: Buffer | null, caps: Record<string, unknown>) => {
        if (done) return;
        if (!buf) {
          // End of stream at the appsink; the bus's EOS message follows and ends the attempt.
          fallback ??= setTimeout(finish, 3000);
          return;
        }
        if (ctx.stopped() || (cfg.maxFrames > 0 && this.stats.framesIn >= cfg.maxFrames)) {
          // Keep draining (and discarding) so that the EOS can travel through a full appsink.
          requestEos();
          sink.pull(onSample);
          return;
        }
        const frame = toFrame(buf, caps, { index: ctx.nextIndex(), sourceId: cfg.id, capturedAtNs: nowNs(), pts: ctx.pts, segment: ctx.segment });
        if (typeof frame === 'string') {
          busError = frame;
          requestEos();
          sink.pull(onSample);
          return;
        }
        this.stats.framesIn++;
        void queue.push(frame).then(() => sink.pull(onSample));
      };
      pipeline.play();
      // gstreamer-superficial's play() drops gst_element_set_state's result. A source that cannot
      // open (v4l2src on a missing device or on /dev/null, in a camera's or a raw pipeline) fails
      // NULL→READY, before the appsink starts, and an appsink that has not started reads eos=true; a
      // started camera cannot have reached end of stream this soon. A file, test or raw pipeline can,
      // in a race, when its stream is empty: for those the bus decides (outcome), an element's error
      // being a failed start, none an end of stream. Before, such a start failure was read as the end
      // of the stream 3 s later, and `edge-agent run` ended as if the source had finished.
      if (sink.eos === true) {
        startFailed = true;
        fallback = setTimeout(finish, 3000);
        return;
      }
      sink.pull(onSample);
    });
  }

  /** What went wrong when a camera's pipeline did not start, with what to do where that is known. */
  private startFailure(gstMessage: string | undefined, gstError: string | undefined): string {
    const cfg = this.opts.config;
    if (cfg.kind === 'v4l2') {
      const problem = deviceProblem(cfg.device);
      return `could not open the camera device ${cfg.device}${problem ? `: ${problem}` : ''}${gstMessage ? ` (GStreamer: ${gstMessage})` : ''}`;
    }
    return `the ${CAMERA_KINDS.has(cfg.kind) ? 'camera ' : ''}pipeline could not start: ${gstError ?? 'an element failed to start without saying why (run the pipeline with gst-launch-1.0 to see more)'}`;
  }
}

/** The first line of an RTSP source's `passwordFile` (a secret kept out of the config), read once at start. */
function readPasswordFile(sourceId: string, path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CaptureError(`Camera source "${sourceId}": cannot read its passwordFile ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); ` +
      'it must be readable by the agent\'s user (edge-agent) and hold the password on its first line');
  }
  const password = text.split(/\r?\n/)[0];
  if (!password) throw new CaptureError(`Camera source "${sourceId}": its passwordFile ${path} is empty; write the password on its first line`);
  return password;
}

/** Parses "30/1" / "30000/1001"; 0 for variable rate. */
function fps(caps: Record<string, unknown>): number {
  const m = /^(\d+)\/(\d+)$/.exec(String(caps.framerate ?? ''));
  return m && Number(m[2]) > 0 ? Number(m[1]) / Number(m[2]) : 0;
}

/**
 * A source's presentation times, strictly increasing across reconnects. A live source (`clockTimed`)
 * is timed by the capture clock (capturedAtNs − start, monotonic): its frame count says nothing of the
 * time that passed (lost or never-sent frames). Otherwise, within one connection they come from the
 * frame index and the negotiated rate (exact for files) or, at a variable rate, from the capture
 * clock. A new connection starts after the last time plus the outage: the index carries on
 * while the rate may change (15 → 30 fps took 599.9 s back to 300 s), and the rules' cooldowns and
 * dwell times, computed from these times, went negative and held alerts back for hours.
 */
export class PtsClock {
  private base = 0;
  private first: number | undefined;
  private last = Number.NEGATIVE_INFINITY;
  private reconnected = false;

  private readonly clockTimed: boolean;

  constructor(private readonly startNs: number, opts: { clockTimed?: boolean } = {}) {
    this.clockTimed = opts.clockTimed ?? false;
  }

  /** The next frame belongs to a new connection. */
  newConnection(): void {
    this.first = undefined;
    this.reconnected = true;
  }

  at(index: number, rate: number, capturedAtNs: number): number {
    let pts: number;
    if (rate > 0 && !this.clockTimed) {
      if (this.first === undefined) {
        this.first = index;
        this.base = this.reconnected ? Math.max(this.last + Math.round(1e9 / rate), capturedAtNs - this.startNs) : 0;
      }
      pts = this.base + Math.round(((index - this.first) * 1e9) / rate);
    } else {
      pts = capturedAtNs - this.startNs;
    }
    if (pts <= this.last) pts = this.last + 1;
    this.last = pts;
    return pts;
  }
}

function toFrame(buf: Buffer, caps: Record<string, unknown>, ctx: { index: number; sourceId: string; capturedAtNs: number; pts: PtsClock; segment: number }): Frame | string {
  const width = Number(caps.width);
  const height = Number(caps.height);
  if (!(width > 0 && height > 0)) return `appsink caps carry no frame size: ${JSON.stringify(caps)}`;
  const packed = width * 3;
  // GStreamer pads RGB rows to 4 bytes (GST_ROUND_UP_4); repack when it did.
  const stride = Math.ceil(packed / 4) * 4;
  let data: Uint8Array;
  if (buf.length === packed * height) {
    data = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } else if (buf.length === stride * height) {
    data = new Uint8Array(packed * height);
    for (let y = 0; y < height; y++) data.set(buf.subarray(y * stride, y * stride + packed), y * packed);
  } else {
    return `unexpected RGB buffer of ${buf.length} bytes for ${width}x${height}`;
  }
  const rate = fps(caps);
  const ptsNs = ctx.pts.at(ctx.index, rate, ctx.capturedAtNs);
  return { width, height, data, index: ctx.index, ptsNs, capturedAtNs: ctx.capturedAtNs, sourceId: ctx.sourceId, segment: ctx.segment };
}
