import { parseArgs } from 'node:util';
import type { CliCommand } from '../../../../agent/src/cli/dispatch.js';
import { loadFleetConfig, parseFleetConfig } from '../../config/schema.js';
import { UsageError } from '../../../../agent/src/cli/dispatch.js';
import { numberOption, TCP_PORT } from '../../../../agent/src/cli/args.js';
import { FleetServer } from '../fleet-server.js';
import { ServiceNotifier } from '../../../../agent/src/service/notifier.js';

export const command: CliCommand = {
  summary: 'Run the fleet server: MQTT broker (or external broker ingest), SQLite registry, HTTP API',
  usage: `usage: fleet-server serve [--config FILE] [--data-dir DIR] [--mqtt-port N] [--mqtt-engine aedes|mosquitto] [--http-port N] [--json]

  --config FILE    JSON config (see configs/fleet-server.example.json); defaults apply without one
  --data-dir DIR   overrides dataDir (SQLite database lives here)
  --mqtt-port N    overrides broker.embedded.port
  --mqtt-engine E  overrides broker.embedded.engine: aedes (in-process, MQTT 3.1.1) or mosquitto
                   (Debian's mosquitto run by the fleet server, MQTT 5)
  --http-port N    overrides http.port
  --json           print one JSON line with the listening ports when ready

Stops cleanly on SIGINT/SIGTERM.`,
  async run(argv) {
    const a = parseArgs({ args: argv, options: { config: { type: 'string' }, 'data-dir': { type: 'string' }, 'mqtt-port': { type: 'string' }, 'mqtt-engine': { type: 'string' }, 'http-port': { type: 'string' }, json: { type: 'boolean' } } }).values;
    const loaded = loadFleetConfig(a.config);
    if (a['data-dir']) loaded.dataDir = a['data-dir'];
    const mqttPort = numberOption('--mqtt-port', a['mqtt-port'], TCP_PORT), httpPort = numberOption('--http-port', a['http-port'], TCP_PORT);
    if (mqttPort !== undefined) loaded.broker.embedded.port = mqttPort;
    if (httpPort !== undefined) loaded.http.port = httpPort;
    if (a['mqtt-engine']) {
      if (a['mqtt-engine'] !== 'aedes' && a['mqtt-engine'] !== 'mosquitto') throw new UsageError(`Expected --mqtt-engine aedes or mosquitto but received ${JSON.stringify(a['mqtt-engine'])}`);
      loaded.broker.embedded.engine = a['mqtt-engine'];
    }
    // The command-line overrides are checked like the file (e.g. mosquitto cannot take port 0).
    const config = parseFleetConfig(loaded, a.config ?? 'fleet server config');
    const server = new FleetServer({ config });
    // systemd (configs/systemd/fleet-server.service, Type=notify): READY once broker and API listen.
    const notifier = ServiceNotifier.fromEnv({ watchdogMode: 'alive' });
    await server.start();
    await notifier.ready('broker and API listening');
    const ready = { ok: true, http: server.api.port, mqtt: server.mqttPort, mqtts: server.mqttsPort, engine: server.mosquitto ? 'mosquitto' : server.broker ? 'aedes' : undefined };
    process.stdout.write(a.json ? `${JSON.stringify(ready)}\n` : `fleet-server: http on ${config.http.host}:${ready.http}${ready.mqtt !== undefined ? `, mqtt on ${config.broker.embedded.plaintextHost ?? config.broker.embedded.host}:${ready.mqtt}` : ''}${ready.mqtts !== undefined ? `, mqtts on ${config.broker.embedded.host}:${ready.mqtts}` : ''}\n`);
    // SIGHUP's default action ends the process, with a status systemd's Restart=on-failure does not
    // restart: a stray `kill -HUP` (or an old unit's ExecReload) took the broker and API down for good.
    const onHup = (): void => { process.stderr.write('fleet-server: SIGHUP ignored; the config is read at start (restart the service to apply it)\n'); };
    process.on('SIGHUP', onHup);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    process.off('SIGHUP', onHup);
    await notifier.stopping();
    await server.stop();
    notifier.stop();
    return 0;
  },
};
