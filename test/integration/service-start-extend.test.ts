/**
 * A first start on a Jetson: the detector's TensorRT engine is built by trtexec (here a stub that
 * takes seconds) while `edge-agent run` loads its models. systemd (here a real AF_UNIX datagram
 * listener on NOTIFY_SOCKET) must be asked for more start-up time all along, with a STATUS= line
 * naming the build; before, nothing was sent and the unit was killed at TimeoutStartSec=120s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { AgentService } from '../../agent/src/service/agent-service.js';
import { ServiceNotifier } from '../../agent/src/service/notifier.js';
import { createNotifyTransport } from '../../agent/src/service/notify-transport.js';
import { StartupKeepalive } from '../../agent/src/service/startup-keepalive.js';
import { Detector } from '../../agent/src/infer/detector.js';
import { TensorRtAdapter } from '../../platform-adapters/tensorrt/adapter.js';
import { OrtAdapter } from '../../platform-adapters/onnxruntime/adapter.js';
import { notifyListenerUnavailable, startNotifyListener } from '../helpers/notify-socket.js';
import { waitFor } from '../helpers/wait.js';

const MODEL = resolve('assets/models/coco-centernet/model.onnx');
const BUILD_S = 5;

test('while trtexec builds the engine, the agent keeps extending its start timeout and says so in STATUS', { timeout: 60_000 }, async (t) => {
  const unavailable = notifyListenerUnavailable();
  if (unavailable) {
    t.skip(unavailable);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ef-start-extend-'));
  const listener = await startNotifyListener();
  const silent = pino({ level: 'silent' });
  const { transport } = createNotifyTransport({ env: { NOTIFY_SOCKET: listener.socketPath }, pid: process.pid });
  assert.ok(transport, 'a notify transport');
  const notifier = new ServiceNotifier({ transport, log: silent });
  // The unit's periods scaled down 20×: a tick every 1.5 s asking for 3 s more. Scaled down 100×
  // (300 ms / 600 ms), a stall of the loaded test machine over 300 ms failed the gap check (781 ms).
  const service = new AgentService({ onStop: () => undefined, notifier, keepalive: new StartupKeepalive({ notifier, intervalMs: 1500, extendMs: 3000, restOfStartMs: 6000, log: silent }) });
  try {
    const trtexec = join(dir, 'trtexec');
    writeFileSync(trtexec, `#!/bin/sh
case "$*" in *--help*) echo "&&&& RUNNING TensorRT.trtexec [TensorRT v8602]"; exit 0;; esac
for a in "$@"; do case "$a" in --saveEngine=*) E="\${a#--saveEngine=}";; esac; done
sleep ${BUILD_S}
printf engine > "$E"
`);
    chmodSync(trtexec, 0o755);
    const tensorRt = new TensorRtAdapter({
      findTrtexec: () => trtexec,
      ortTensorRt: async () => ({ ok: true }),
      // Off Jetson the engine cannot run: the session behind the wrapper is the model on the CPU.
      openWrapper: (o) => new OrtAdapter().createSession({ ...o, modelPath: MODEL, providers: ['cpu'] }),
      cacheDir: join(dir, 'engines'),
    });
    const t0 = Date.now();
    const detector = await service.loading('loading models', () => Detector.open({ modelPath: MODEL, providers: ['tensorrt', 'cpu'], tensorRt }));
    const loadMs = Date.now() - t0;
    await detector.close();
    await waitFor('the last datagram', () => listener.datagrams().some((d) => d.msg.includes('done in')), 5000);

    const grams = listener.datagrams().map((d) => d.msg);
    const building = grams.filter((m) => /^EXTEND_TIMEOUT_USEC=3000000\nSTATUS=building the TensorRT fp16 engine for .*model\.onnx with trtexec/.test(m));
    assert.ok(loadMs >= BUILD_S * 1000, `the load waited for the build (${loadMs} ms)`);
    assert.ok(building.length >= 2, `extensions during a ${BUILD_S} s build every 1.5 s: ${building.length}\n${grams.join('\n')}`);
    assert.match(grams[0], /^EXTEND_TIMEOUT_USEC=3000000\nSTATUS=loading models \(0 s so far\)$/);
    assert.match(grams.at(-1)!, /^EXTEND_TIMEOUT_USEC=6000000\nSTATUS=loading models: done in \d+ s; waiting for the first frame$/);
    // Never a gap longer than the extension asked for: systemd would have timed out in it.
    const times = listener.datagrams().map((d) => d.t);
    const gapMs = Math.max(...times.slice(1).map((x, i) => (x - times[i]) * 1000));
    assert.ok(gapMs < 3000, `longest gap between extensions: ${gapMs.toFixed(0)} ms`);
  } finally {
    await service.stop();
    listener.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
