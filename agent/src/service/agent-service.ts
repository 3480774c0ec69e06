/**
 * AgentService: the glue between `edge-agent run` and systemd, so the command needs three calls:
 *
 *   const service = new AgentService({ onStop: () => ac.abort() });
 *   const runner = new AgentRunner({ config, sinks: service.sinks(otherSinks) });
 *   service.start();                 // SIGTERM/SIGINT/SIGHUP handled from here on
 *   ... await runner.run(ac.signal) ... finally { await runner.stop(); await service.stop(); }
 *
 * Model loads go through `service.loading('loading models', ...)`: systemd is asked for more start-up
 * time while they run (a TensorRT engine build takes minutes; see StartupKeepalive).
 *
 * READY=1 goes out when the first frame has been through the pipeline, every processed frame feeds
 * the watchdog, and a SIGTERM sends STOPPING=1, calls `onStop` (stop capture; the pipeline then
 * finishes or abandons the frame in flight) and waits, within `stopTimeoutMs`, for the command to
 * reach `service.stop()`, so flush the outbox (link.stop()) in the command's `finally` before it. If
 * that does not happen in time the process exits 0 anyway: abandoning work at the bound is the
 * designed outcome, and systemd would otherwise SIGKILL it at TimeoutStopSec.
 */
import type { FrameResult, PipelineSinks } from '../pipeline/camera-pipeline.js';
import { moduleLogger } from '../util/log.js';
import { ServiceLifecycle, type ReloadHandler } from './lifecycle.js';
import { ServiceNotifier } from './notifier.js';
import { StartupKeepalive } from './startup-keepalive.js';

export interface AgentServiceOptions {
  /** Stops capture: called once, first thing on SIGTERM/SIGINT. */
  onStop: () => void;
  /** Bound on the whole stop, from the signal to `stop()`; keep it under TimeoutStopSec (30 s). */
  stopTimeoutMs?: number;
  notifier?: ServiceNotifier;
  lifecycle?: ServiceLifecycle;
  /** Default: one on `notifier` with its default periods. */
  keepalive?: StartupKeepalive;
  /** Exit after an abandoned stop; default process.exit. */
  forceExit?: (code: number) => void;
}

export class AgentService {
  readonly notifier: ServiceNotifier;
  readonly lifecycle: ServiceLifecycle;
  private readonly keepalive: StartupKeepalive;
  private readonly log = moduleLogger('service');
  private resolveStopped: () => void = () => undefined;
  private readonly stopped = new Promise<void>((r) => { this.resolveStopped = r; });
  private cameraFrames = 0;

  constructor(opts: AgentServiceOptions) {
    this.notifier = opts.notifier ?? ServiceNotifier.fromEnv();
    this.keepalive = opts.keepalive ?? new StartupKeepalive({ notifier: this.notifier });
    const forceExit = opts.forceExit ?? ((code: number) => process.exit(code));
    let finished = false;
    void this.stopped.then(() => { finished = true; });
    this.lifecycle = opts.lifecycle ?? new ServiceLifecycle({
      notifier: this.notifier,
      // The command returns its own exit code on the normal path; only an abandoned stop forces it.
      exit: (code) => {
        if (!finished) {
          this.log.warn('stop bound reached before the run finished; exiting');
          forceExit(code);
        }
      },
    });
    this.lifecycle.onShutdown(async () => {
      opts.onStop();
      await this.stopped;
    }, { name: 'pipeline', timeoutMs: opts.stopTimeoutMs ?? 15_000 });
  }

  /** Pipeline sinks that feed READY and the watchdog, then call `inner`. */
  sinks(inner?: PipelineSinks): PipelineSinks {
    return {
      onFrame: async (r: FrameResult) => {
        this.notifier.frameProcessed();
        if (++this.cameraFrames === 1) void this.notifier.ready(`first frame processed (camera ${r.cameraId})`);
        await inner?.onFrame?.(r);
      },
      onAlert: inner?.onAlert?.bind(inner),
    };
  }

  /** Start-up work that may outlast TimeoutStartSec (model loads, engine builds): systemd is kept waiting, with a STATUS= line. */
  loading<T>(activity: string, work: () => Promise<T>): Promise<T> {
    return this.keepalive.during(activity, work);
  }

  /** A step run on SIGHUP or a pushed config revision (see ServiceLifecycle.onReload). */
  onReload(handler: ReloadHandler, opts?: { timeoutMs?: number; name?: string }): void {
    this.lifecycle.onReload(handler, opts);
  }

  start(): void {
    this.lifecycle.start();
  }

  /** Called by the command when the run is over (normal end or after a signal); safe twice. */
  async stop(): Promise<void> {
    this.resolveStopped();
    await this.notifier.stopping();
    this.lifecycle.stop();
    this.notifier.stop();
  }
}
