/**
 * Child process of bench/latency.ts: runs the agent (AgentRunner, as `edge-agent run` does) on the
 * example config with vtest.avi played at its own frame rate, like a camera, and records for every
 * alert the time from the frame's capture (appsink pull) to the alert reaching the publisher sink.
 * Prints one JSON line: alert latencies and the run summary.
 *
 *   UV_THREADPOOL_SIZE=16 node --import tsx bench/lib/latency-child.ts --frames N
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadAgentConfig } from '../../agent/src/config/load.js';
import { AgentRunner } from '../../agent/src/pipeline/agent-runner.js';
import { rootLogger } from '../../agent/src/util/log.js';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '300' }, config: { type: 'string', default: 'configs/agent.example.json' } } });
const config = await loadAgentConfig(String(values.config));
rootLogger().level = 'warn';
const dir = mkdtempSync(join(tmpdir(), 'ef-bench-latency-'));
config.stateDir = dir;
config.link = undefined;
for (const c of config.cameras) {
  if (c.source.kind !== 'file') throw new Error(`expected a file camera in ${values.config}, got ${c.source.kind}`);
  c.source.realtime = true;
  c.source.maxFrames = Number(values.frames);
}
const alertMs: number[] = [];
const alertDetected: boolean[] = [];
let lastFrameDetected = false;
const runner = new AgentRunner({
  config,
  sinks: {
    onFrame: (r) => { lastFrameDetected = r.detections !== undefined; },
    onAlert: (_a, frame) => {
      alertMs.push((Number(process.hrtime.bigint()) - frame.capturedAtNs) / 1e6);
      alertDetected.push(lastFrameDetected);
    },
  },
});
try {
  await runner.start();
  const summary = await runner.run();
  process.stdout.write(`${JSON.stringify({ alertMs, alertDetected, summary, schedule: config.schedule, threads: config.detector.threads ?? null })}\n`);
} finally {
  await runner.stop();
  rmSync(dir, { recursive: true, force: true });
}
