/**
 * Camera credentials never leave capture in a message: its errors reach the journal, telemetry, the
 * fleet's retained state (health reason) and `edge-agent run`'s output, and GStreamer's own errors
 * quote the pipeline (so the URL) as they like.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSchema } from '../../agent/src/util/schema.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { GstFrameSource, type GstModule } from '../../agent/src/capture/gst-source.js';
import { runTsChild, gstSkip } from '../helpers/gst-child.js';

const source = compileSchema(SourceConfig);

/** A GStreamer stand-in whose errors quote the pipeline description: `how` says where it fails. */
function quotingGst(how: 'parse' | 'bus' | 'sink'): GstModule {
  return {
    Pipeline: class {
      private bus?: (m: Record<string, unknown>) => void;
      constructor(private readonly description: string) {
        if (how === 'parse') throw new Error(`no element "nvv4l2decoder" in ${description}`);
      }
      play() {
        setImmediate(() => this.bus?.({ type: 'error', message: `Could not open ${this.description}`, debug: `gstrtspsrc.c(1): retrieve_sdp:\nlocation=${this.description}` }));
      }
      stop() { /* nothing pending */ }
      sendEOS() { setImmediate(() => this.bus?.({ type: 'eos' })); }
      pollBus(cb: (m: Record<string, unknown>) => void) { this.bus = cb; }
      findChild() { return how === 'sink' ? undefined : { pull: () => undefined }; }
    },
  };
}

// As written in the URL: plain, and percent-encoded (p@ss#w/rd?x"y, pct@word).
const PASSWORDS = ['S3cretPass', 'p%40ss%23w%2Frd%3Fx%22y', 'pct%40word'];
const urlWith = (pw: string) => `rtsp://admin:${pw}@10.0.0.21/stream1`;
/** What each password must never show as, in any text: as written, and percent-decoded. */
const forms = (pw: string) => [pw, decodeURIComponent(pw)];

for (const how of ['parse', 'bus', 'sink'] as const) {
  test(`an RTSP password is masked in every error and stat of a failing source (${how})`, async () => {
    for (const pw of PASSWORDS) {
      const src = new GstFrameSource({
        config: source.parse({ kind: 'rtsp', url: urlWith(pw), reconnect: { maxRetries: 1 } }, 's'),
        board: { decode: 'nvv4l2decoder ! nvvidconv' }, gst: quotingGst(how), random: () => 0.5, sleep: async () => undefined,
      });
      const err = await (async () => {
        try { for await (const _ of src.frames()) { /* none */ } } catch (e) { return e as Error; }
        return undefined;
      })();
      assert.ok(err, 'the source fails');
      const texts = [err.message, String(err.stack), JSON.stringify(src.stats), src.maskedPipeline];
      for (const text of texts) {
        for (const secret of forms(pw)) assert.ok(!text.includes(secret), `${JSON.stringify(secret)} in ${text}`);
        assert.ok(!text.includes('admin:'), text);
      }
      // Still says where: the host and the element (the credentials go to rtspsrc apart from the URL).
      assert.match(err.message, /location="rtsp:\/\/10\.0\.0\.21\/stream1" user-id="admin" user-pw="?\*\*\*/);
    }
  });
}

// The reported case: board "jetson-orin" on a box without nvv4l2decoder, and a camera that cannot be reached.
for (const decode of ['nvv4l2decoder ! nvvidconv', undefined]) {
  test(`real GStreamer: a camera that fails is logged and fails without its password (decode ${decode ?? 'decodebin'})`, { skip: gstSkip, timeout: 30_000 }, async () => {
    const cfg = { kind: 'rtsp', url: 'rtsp://admin:S3cret%23Pass@127.0.0.1:9/stream1', latencyMs: 0, reconnect: { maxRetries: 1, initialDelayMs: 1 } };
    const args = [JSON.stringify(cfg), ...(decode ? [JSON.stringify({ decode })] : [])];
    const r = await runTsChild('test/helpers/gst-source-child.ts', { args, env: { EF_LOG_LEVEL: 'info' }, limitMs: 25_000 });
    assert.equal(r.hung, false);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { error: { message: string } | null };
    assert.ok(out.error, r.stdout);
    if (!decode) assert.match(r.stderr, /camera source failed; restarting/);
    for (const secret of ['S3cret', 'admin:']) {
      assert.ok(!r.stdout.includes(secret), r.stdout);
      assert.ok(!r.stderr.includes(secret), r.stderr);
    }
  });
}
