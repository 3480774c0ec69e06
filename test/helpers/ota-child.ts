/**
 * An agent process for the OTA SIGKILL test: AgentLink + OtaManager on the stand-in models, a frame
 * loop, and a kill switch: with `killAt` it SIGKILLs itself at the start of that install step
 * (`download-mid` = after a few chunks are on disk). Prints one JSON line per event:
 * `{"started": version}` when the committed (or factory) model is loaded, `{"committed": version}`
 * after a commit. Usage: node --import tsx test/helpers/ota-child.ts '<json options>'
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AgentLink } from '../../agent/src/link/agent-link.js';
import { OtaManager } from '../../agent/src/ota/ota-manager.js';
import { grayImage } from './ota-models.js';
import { openInProcess } from './ota-agent.js';

const o = JSON.parse(process.argv[2] ?? '{}') as {
  deviceId: string; secret: string; url: string; stateDir: string; factoryDir: string; publicKeyPath: string; killAt?: string;
};
const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
const die = () => process.kill(process.pid, 'SIGKILL');
const link = new AgentLink({ deviceId: o.deviceId, secret: o.secret, url: o.url, outbox: join(o.stateDir, 'outbox.sqlite'), backoff: { initialMs: 100, maxMs: 500 } });
const manager = new OtaManager({
  link, stateDir: o.stateDir, publicKeyPem: readFileSync(o.publicKeyPath, 'utf8'),
  factory: { modelPath: join(o.factoryDir, 'model.onnx'), version: '1.0.0' }, openDetector: openInProcess,
  gate: { minFrames: 3 }, requestTimeoutMs: 500, selfTestImage: grayImage(),
  atStep: (step, version) => {
    if (step === o.killAt) die();
    if (step === 'committed') out({ committed: version });
  },
  onProgress: (bytes) => { if (o.killAt === 'download-mid' && bytes >= 3 * 65536) die(); },
});
const detector = await manager.start();
out({ started: manager.runningVersion });
link.start();
const image = grayImage();
for (;;) {
  await detector.detectTimed(image);
  await new Promise((r) => setTimeout(r, 20));
}
