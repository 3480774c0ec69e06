/**
 * Request/reply plumbing for adapters that keep a runtime in a worker thread (ONNX Runtime,
 * LiteRT.js): the first reply to a load request, numbered calls whose replies carry the same id,
 * transferred buffers, every pending call rejected when the worker fails, exits or is disposed, and
 * a per-call time limit after which the worker is stopped.
 */
import { writeSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import { EdgeFleetError, InputError, ModelError, ModelOutputError } from '../agent/src/util/errors.js';
import { moduleLogger } from '../agent/src/util/log.js';
import type { TensorData } from './contract.js';

const log = moduleLogger('worker-calls');

/** A run that got no answer within its limit; the worker was stopped and the session is closed. */
export class InferenceTimeoutError extends EdgeFleetError {
  constructor(readonly what: string, readonly timeoutMs: number) {
    super('E_INFER_TIMEOUT', `${what} did not answer within ${timeoutMs} ms (detector.runTimeoutMs), so its worker was stopped and the session closed. ` +
      'The execution provider is hung, or far slower on this board than the limit allows: the agent exits for its supervisor (systemd, a docker restart policy) ' +
      'to start it again; raise detector.runTimeoutMs if runs here really take that long');
  }
}

/**
 * Workers that did not stop when told to: a thread blocked in native code (ONNX Runtime's
 * session.run() is synchronous inside the worker) cannot be interrupted by V8. Node joins every
 * worker thread before the process exits (process.exit included), so such a thread keeps the process
 * from ever exiting: at exit, the process ends itself with SIGKILL instead (a signal systemd's
 * Restart=on-failure and docker's restart policies both restart; SIGTERM would count as clean).
 */
const stuckWorkers = new Map<Worker, string>();
let exitBackstopArmed = false;

function exitBackstop(code: number): void {
  if (stuckWorkers.size === 0) return;
  // The logger writes asynchronously; this is the last chance to say why the process dies.
  writeSync(2, `worker-calls: ${[...stuckWorkers.values()].join('; ')}: the worker thread is blocked in native code and Node cannot exit while it runs; ending the process with SIGKILL (exit code ${code} is lost)\n`);
  process.kill(process.pid, 'SIGKILL');
}

function markStuck(worker: Worker, label: string, graceMs: number): void {
  stuckWorkers.set(worker, label);
  // One that gets out of native code after all (a load that finally returns) and exits is no longer stuck.
  worker.once('exit', () => stuckWorkers.delete(worker));
  // Do not let it hold the event loop either: the process may end on its own, through the backstop.
  worker.unref();
  log.error({ worker: label, graceMs }, 'the inference worker did not stop within the grace: it is blocked in native code (a hung execution provider); the process will end itself with SIGKILL when it exits');
  if (!exitBackstopArmed) {
    exitBackstopArmed = true;
    process.on('exit', exitBackstop);
  }
}

/**
 * Refuses feeds whose data does not fill their dims before they are sent (and packed RGB, for ORT's
 * runRgb). A buffer handed to an earlier run was transferred to the worker and is detached (length
 * 0): posted again, it reached LiteRT.js as an empty input and the run never answered.
 */
export function checkFeeds(feeds: Record<string, TensorData>, rgb?: { input: string; data: Uint8Array }): void {
  const detached = (name: string) => new InputError(`Input ${name}: its buffer was detached by an earlier run (run() transfers input buffers to the worker); pass a fresh copy to each run`);
  for (const [name, t] of Object.entries(feeds)) {
    const want = t.dims.reduce((a, b) => a * b, 1);
    if (want > 0 && t.data.buffer.byteLength === 0) throw detached(name);
    if (t.data.length !== want) throw new InputError(`Expected ${want} values for input ${name} (dims [${t.dims.join(', ')}]) but received ${t.data.length}`);
  }
  if (rgb && rgb.data.buffer.byteLength === 0) throw detached(rgb.input);
}

/** A load given up through its signal (CreateSessionOptions.signal): the worker was told to stop. */
export class LoadAbortedError extends EdgeFleetError {
  constructor(readonly what: string, reason?: unknown) {
    super('E_LOAD_ABORTED', `${what} was given up${reason instanceof Error ? `: ${reason.message}` : ''}; its worker was stopped`);
  }
}

/**
 * Posts `request` and resolves with the worker's first reply (a load answer). When `signal` aborts
 * first, rejects with LoadAbortedError at once (the caller stops the worker: stopWorkerThread).
 */
export async function firstReply<R>(worker: Worker, request: unknown, what: string, signal?: AbortSignal): Promise<R> {
  // Remove only our own listeners afterwards: Worker keeps internal 'newListener' hooks that
  // removeAllListeners() would break (its message port would stop delivering).
  let onMessage!: (m: R) => void, onError!: (e: Error) => void, onExit!: (code: number) => void, onAbort!: () => void;
  try {
    return await new Promise<R>((resolve, reject) => {
      onMessage = resolve;
      onError = reject;
      onExit = (code) => reject(new ModelError(`${what}: the worker exited with code ${code}`));
      onAbort = () => reject(new LoadAbortedError(what, signal?.reason));
      if (signal?.aborted) { onAbort(); return; }
      signal?.addEventListener('abort', onAbort, { once: true });
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
      worker.postMessage(request);
    });
  } finally {
    signal?.removeEventListener('abort', onAbort);
    worker.off('message', onMessage).off('error', onError).off('exit', onExit);
  }
}

/**
 * Resolves when `worker` exits; make it when the worker starts (an exit is not emitted twice). Never
 * rejects, unlike events.once, which rejects on the worker's 'error' event (then left unhandled).
 */
export function exitOf(worker: Worker): Promise<true> {
  return new Promise((resolve) => worker.once('exit', () => resolve(true)));
}

/**
 * Stops a worker: asks it to end itself (`requestStop`, see WorkerCallsOptions) or terminates it, and
 * resolves once it exited (`exited`: a promise made when it started), or after `graceMs` when it is
 * blocked in native code: then it is reported stuck, and the process ends itself at exit (markStuck).
 */
export async function stopWorkerThread(worker: Worker, label: string, o: { exited: Promise<unknown>; graceMs?: number; requestStop?: () => void }): Promise<void> {
  const graceMs = o.graceMs ?? 2000;
  if (o.requestStop) o.requestStop();
  else void worker.terminate().catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const stopped = await Promise.race([
    o.exited.then(() => true),
    new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), graceMs); }),
  ]);
  clearTimeout(timer);
  if (!stopped) markStuck(worker, label, graceMs);
}

interface Reply {
  type: string;
  id?: number;
  message?: string;
  /** A run-failed reply's error code, when the error had one. */
  code?: string;
}

export interface WorkerCallsOptions {
  /**
   * A call not answered within this time rejects with InferenceTimeoutError, every other pending
   * call with it, and the worker is stopped: the session is closed. No limit when absent.
   */
  runTimeoutMs?: number;
  /**
   * Whether the worker has already run the model once (a warm-up at load). Until a first call is
   * answered, calls are not timed: lazy initialisation and engine builds happen on the first run.
   */
  warmedUp?: boolean;
  /** How long a stopped worker has to exit before it is reported stuck in native code. */
  terminateGraceMs?: number;
  /**
   * Asks the worker to end itself at its next safe point (between runs) instead of terminate().
   * ONNX Runtime needs it: a worker terminated inside its synchronous native run() aborts the whole
   * process (SIGABRT) when the run returns, as the binding throws a Napi::Error into the torn-down
   * environment ("terminate called after throwing an instance of 'Napi::Error'").
   */
  requestStop?: () => void;
}

interface Pending<R> {
  resolve: (r: R) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
}

/** Numbered calls to a worker whose replies are `{ type, id, ... }`, `run-failed` for an error. */
export class WorkerCalls<R extends Reply> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending<R>>();
  private closed = false;
  private failure: Error | undefined;
  private answered: boolean;
  private stopping: Promise<void> | undefined;
  private readonly exited: Promise<true>;

  /** `label` names the runtime and model in errors ("Inference on m.onnx", "TFLite inference on m.tflite"). */
  constructor(private readonly worker: Worker, private readonly label: string, private readonly opts: WorkerCallsOptions = {}) {
    this.answered = opts.warmedUp ?? false;
    this.exited = exitOf(worker);
    worker.on('message', (msg: R) => {
      if (msg.type === 'fatal') {
        this.failAll(new ModelError(`${label}: the worker failed: ${msg.message}`));
        return;
      }
      const p = msg.id === undefined ? undefined : this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id as number);
      clearTimeout(p.timer);
      if (!this.answered) {
        this.answered = true;
        // The worker is warm now: the calls that queued behind its first run are timed from here.
        for (const [id, q] of this.pending) this.arm(id, q);
      }
      if (msg.type === 'run-failed') {
        p.reject(msg.code === 'E_MODEL_OUTPUT' ? new ModelOutputError(`${label}: ${msg.message}`) : new ModelError(`${label} failed: ${msg.message}`));
      } else p.resolve(msg);
    });
    worker.on('error', (err) => this.failAll(new ModelError(`${label}: the worker crashed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      stuckWorkers.delete(worker);
      if (!this.closed) this.failAll(new ModelError(`${label}: the worker exited unexpectedly with code ${code}`));
    });
  }

  /** Sends the request made for a fresh id; the buffers of `transfer` move to the worker. */
  call(make: (id: number) => unknown, transfer: ArrayBufferView[]): Promise<R> {
    if (this.closed) return Promise.reject(new EdgeFleetError('E_CLOSED', 'session is disposed'));
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const buffers: ArrayBuffer[] = [];
    for (const t of transfer) if (t.buffer instanceof ArrayBuffer && !buffers.includes(t.buffer)) buffers.push(t.buffer);
    return new Promise<R>((resolve, reject) => {
      const p: Pending<R> = { resolve, reject };
      this.pending.set(id, p);
      if (this.answered) this.arm(id, p);
      this.worker.postMessage(make(id), buffers);
    });
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** Rejects what is pending and stops the worker; resolves once it exited, or after the grace if it is stuck. */
  async dispose(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.failAll(new EdgeFleetError('E_CLOSED', 'session disposed while inference was in flight'));
    }
    await this.stop();
  }

  private arm(id: number, p: Pending<R>): void {
    const limit = this.opts.runTimeoutMs;
    if (limit === undefined || p.timer) return;
    p.timer = setTimeout(() => {
      if (this.pending.get(id) !== p) return;
      this.failAll(new InferenceTimeoutError(this.label, limit));
      void this.stop();
    }, limit);
  }

  /**
   * Stops the worker, at most once: asks it to end itself (requestStop) or terminates it. A thread
   * blocked in native code never stops: after the grace it is reported stuck, not awaited.
   */
  private stop(): Promise<void> {
    this.stopping ??= stopWorkerThread(this.worker, this.label, { exited: this.exited, graceMs: this.opts.terminateGraceMs, requestStop: this.opts.requestStop });
    return this.stopping;
  }

  /** Rejects every pending call with `err`; later calls reject with the first failure. */
  private failAll(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }
}
