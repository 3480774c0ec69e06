/**
 * Stand-ins for AgentRunner tests: a detector that finds nothing, and camera sources that deliver a
 * number of 32×24 frames, one per macrotask, then end, or fail as GstFrameSource does when it gives up.
 */
import type { DetectorHandle } from '../../agent/src/pipeline/agent-runner.js';
import type { FrameSourceStats } from '../../agent/src/capture/gst-source.js';
import type { Frame } from '../../agent/src/types.js';
import { CaptureError } from '../../agent/src/util/errors.js';

export const nullDetector = {
  meta: { name: 'stand-in', version: '1', labels: ['person'], decoder: { kind: 'centernet' } },
  provider: 'cpu',
  session: { info: { fallbacks: [] } },
  detectTimed: () => Promise.resolve({ detections: [], timings: { preprocessMs: 0, inferMs: 0, decodeMs: 0 } }),
  close: () => Promise.resolve(),
} as unknown as DetectorHandle;

export function blankFrame(sourceId: string, index: number): Frame {
  return { width: 32, height: 24, data: new Uint8Array(32 * 24 * 3), index, ptsNs: index * 1e8, capturedAtNs: Number(process.hrtime.bigint()), sourceId };
}

/** A camera that delivers `frames` frames, one per macrotask, then ends, or fails with `fail` (as GstFrameSource gives up). */
export function fakeSource(id: string, opts: { frames: number; fail?: string }) {
  const stats: FrameSourceStats = { framesIn: 0, dropped: 0, restarts: 0, errors: 0 };
  return {
    stats,
    async *frames(signal?: AbortSignal): AsyncGenerator<Frame> {
      for (let i = 0; i < opts.frames && !signal?.aborted; i++) {
        await new Promise((r) => setImmediate(r));
        stats.framesIn++;
        yield blankFrame(id, i);
      }
      if (opts.fail && !signal?.aborted) {
        stats.errors++;
        stats.lastError = opts.fail;
        throw new CaptureError(`Camera source "${id}" failed: ${opts.fail}`);
      }
    },
  };
}
