import type { CliCommand } from '../dispatch.js';
import { numberOption, parseCommandArgs, POSITIVE_INT, requireOption } from '../args.js';
import { loadAgentConfig } from '../../config/load.js';
import { AgentRunner, type RunSummary } from '../../pipeline/agent-runner.js';
import { setConfiguredLogLevel } from '../../util/log.js';
import { AgentService } from '../../service/agent-service.js';
import { FleetAttachment } from '../../pipeline/fleet-attachment.js';
import { ConfigReloader } from '../../service/config-reload.js';
import { AgentConfig } from '../../config/schema.js';

export const command: CliCommand = {
  summary: 'run the pipeline on the configured cameras',
  usage: `usage: edge-agent run --config CONFIG.json [--frames N] [--ndjson FILE|-] [--json]

Runs capture → detect → track → rules on every configured camera until end of stream (files),
--frames N frames per camera, or SIGINT/SIGTERM. --ndjson writes one line per frame (frame index,
pts, detections, tracks) and a summary line at the end; --json prints the summary on stdout.`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, { config: { type: 'string' }, frames: { type: 'string' }, ndjson: { type: 'string' } });
    const configPath = requireOption(values.config, 'config');
    const config = await loadAgentConfig(configPath);
    setConfiguredLogLevel(config.log.level);
    const frames = numberOption('--frames', values.frames, POSITIVE_INT);
    if (frames !== undefined) for (const c of config.cameras) c.source.maxFrames = frames;
    if (values.ndjson) config.output.ndjson = values.ndjson;
    const ac = new AbortController();
    // systemd: READY after the first frame, watchdog from frame progress, bounded SIGTERM/SIGINT stop.
    const service = new AgentService({ onStop: () => ac.abort() });
    // MQTT link (alerts via the outbox, telemetry), Prometheus metrics and the privacy gate.
    const fleet = config.link || config.telemetry.prometheusPort !== undefined ? new FleetAttachment({ config }) : undefined;
    let runner: AgentRunner | undefined;
    // SIGHUP (systemctl reload): live fields apply between frames; restart-only ones are reported.
    const reloader = new ConfigReloader({ schema: AgentConfig, current: config, notifier: service.notifier, applyLive: (next) => runner?.reconfigure(next) });
    service.onReload(async () => { await reloader.apply(await loadAgentConfig(configPath), 'SIGHUP'); }, { name: 'config' });
    service.start();
    let summary: RunSummary;
    try {
      // Model loads (a first TensorRT engine build takes minutes) keep systemd's start timeout extended.
      const started = await service.loading('loading models', async () => {
        await fleet?.start();
        // With OTA the pipeline runs the swappable detector, so installs swap between two frames.
        runner = new AgentRunner({
          config, sinks: service.sinks(fleet?.sinks()), detector: fleet?.detector, onStage: fleet?.telemetryFor(() => runner).onStage,
          // A camera down while others go on: the device's health in the fleet says so.
          onCameraDown: fleet?.cameraDown,
        });
        await runner.start();
        return runner;
      });
      summary = await started.run(ac.signal);
    } catch (err) {
      // The offline state published on the way out says why (E_INFER_TIMEOUT, a camera that cannot start).
      fleet?.link?.reportFailure(err);
      summary = (err as { summary?: RunSummary }).summary as RunSummary;
      if (summary && values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      throw err;
    } finally {
      await runner?.stop();
      await fleet?.stop();
      await service.stop();
    }
    if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else printSummary(summary);
    return 0;
  },
};

function printSummary(s: RunSummary): void {
  const lines = [
    `frames in ${s.framesIn}, processed ${s.processed} (detector on ${s.detected}), dropped ${s.dropped.capture}, alerts ${s.alerts}, ${s.fps} fps on ${s.provider}`,
    ...Object.entries(s.latencyMs).map(([stage, l]) => `  ${stage.padEnd(11)} p50 ${l.p50Ms.toFixed(1)} ms  p95 ${l.p95Ms.toFixed(1)} ms  p99 ${l.p99Ms.toFixed(1)} ms`),
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
}
