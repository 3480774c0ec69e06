/**
 * A stand-in for the GStreamer module (GstFrameSource's `gst` option) where no real pipeline is
 * wanted: a camera that answers each pull with a 2×2 RGB frame. `perConnection` says how many frames
 * each connection (each Pipeline made) sends before its end of stream: one number for every
 * connection (Infinity: until stopped), or a list, the n-th entry for the n-th connection (0 past
 * its end). `framerate` goes into the caps when given ('30/1').
 */
import type { GstModule } from '../../agent/src/capture/gst-source.js';

export function standInCamera(opts: { perConnection?: number | readonly number[]; framerate?: string } = {}): GstModule {
  const per = opts.perConnection ?? Infinity;
  const caps = { width: 2, height: 2, ...(opts.framerate ? { framerate: opts.framerate } : {}) };
  let created = 0;
  return {
    Pipeline: class {
      private bus?: (m: Record<string, unknown>) => void;
      private sent = 0;
      private readonly frames = typeof per === 'number' ? per : per[created++] ?? 0;
      play() { /* frames flow from pull() */ }
      stop() { /* nothing pending */ }
      sendEOS() { setImmediate(() => this.bus?.({ type: 'eos' })); }
      pollBus(cb: (m: Record<string, unknown>) => void) { this.bus = cb; }
      findChild() {
        return { pull: (cb: (b: Buffer | null, c: Record<string, unknown>) => void) => {
          if (this.sent++ < this.frames) setImmediate(() => cb(Buffer.alloc(2 * 2 * 3), caps));
          else setImmediate(() => this.bus?.({ type: 'eos' }));
        } };
      }
    },
  };
}
