/**
 * A minimal agent process for crash tests: queues N alerts into its outbox, starts the link, and
 * prints `first-delivered pending=<n>` once the first receipt arrives, then keeps running until it
 * is killed. Usage: node --import tsx test/helpers/agent-child.ts '<json AgentLinkOptions + count>'
 */
import { AgentLink } from '../../agent/src/link/agent-link.js';
import { Outbox } from '../../agent/src/outbox/outbox.js';
import { alertFixture } from './fleet.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as { deviceId: string; secret: string; url: string; outboxPath: string; count: number; prefix: string };
const outbox = new Outbox({ path: opts.outboxPath });
outbox.start();
const link = new AgentLink({ deviceId: opts.deviceId, secret: opts.secret, url: opts.url, outbox, inflightWindow: 1, backoff: { initialMs: 100, maxMs: 500 } });
for (let i = 0; i < opts.count; i++) link.publishAlert(alertFixture(`${opts.prefix}-${String(i).padStart(3, '0')}`));
process.stdout.write(`queued ${outbox.stats().pending}\n`);
link.once('delivered', () => process.stdout.write(`first-delivered pending=${outbox.stats().pending}\n`));
link.start();
setInterval(() => undefined, 1000);
