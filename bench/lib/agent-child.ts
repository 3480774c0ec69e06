/**
 * Child process for the pipeline and tracker benches: runs AgentRunner (the pipeline that
 * `edge-agent run` runs) on a config and records when each frame leaves the pipeline, so that the
 * steady-state rate can be told apart from the run's start (GStreamer preroll) and end.
 * Prints one JSON line: the run summary and the frame completion times.
 *
 *   UV_THREADPOOL_SIZE=16 node --import tsx bench/lib/agent-child.ts --config agent.json
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { loadAgentConfig } from '../../agent/src/config/load.js';
import { AgentRunner } from '../../agent/src/pipeline/agent-runner.js';
import { rootLogger } from '../../agent/src/util/log.js';

const { values } = parseArgs({ options: { config: { type: 'string' } } });
const config = await loadAgentConfig(String(values.config));
// info: if a run hangs, the bench's error shows how far it got (detector loaded, capture started).
rootLogger().level = 'info';
const doneMs: number[] = [];
const runner = new AgentRunner({ config, sinks: { onFrame: () => { doneMs.push(performance.now()); } } });
try {
  await runner.start();
  const t0 = performance.now();
  const summary = await runner.run();
  process.stdout.write(`${JSON.stringify({ summary, frameDoneMs: doneMs.map((t) => t - t0) })}\n`);
} finally {
  await runner.stop();
}
