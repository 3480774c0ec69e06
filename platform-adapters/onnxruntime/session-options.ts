/**
 * The onnxruntime session options the agent's inference worker uses (ort-worker.ts), shared with the
 * pipeline bench's bare `session.run` baseline (bench/lib/bare-ort.ts) so that both measure the same
 * session.
 */
import type ort from 'onnxruntime-node';

export function workerSessionOptions(provider: string, intraOpThreads: number | undefined, opts: { spinning?: boolean } = {}): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    // Absent: onnxruntime's default (the binding refuses an undefined value).
    ...(intraOpThreads !== undefined ? { intraOpNumThreads: intraOpThreads } : {}),
    interOpNumThreads: 1,
    logSeverityLevel: 3,
    // Intra-op threads sleep between parallel sections instead of spinning (onnxruntime's
    // session.intra_op.allow_spinning, default on; onnxruntime_session_options_config_keys.h). The
    // box is never the detector's alone: GStreamer decodes, sharp resizes, other cameras and the
    // privacy models run on the same cores, and a spinning thread holds a core it is not using. The
    // pipeline bench runs the same bare session both ways (docs/benchmarks.md, section 1): with one
    // core busy elsewhere (2 cores, CenterNet, 2 intra-op threads) spinning took 1.55–1.77× the wall
    // time and 1.58–1.80× the CPU in two runs (2026-11-28, on a host busy itself); without that
    // neighbour the runs disagreed (spinning 0.95–1.12× the wall time). At 1 intra-op thread there
    // is no pool and nothing spins.
    extra: { session: { intra_op: { allow_spinning: opts.spinning ? '1' : '0' } } },
  };
}
