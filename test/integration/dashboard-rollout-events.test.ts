/**
 * A rollout's changes reach the dashboard's live stream: creating a rollout and aborting it through
 * the HTTP API each send a `rollout` event naming it on GET /api/events (the bus declared the event,
 * but the server never published one: the Rollouts page only polled).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { OPERATOR_PASSWORD, startFleet, type TestFleet } from '../helpers/fleet.js';
import { waitFor } from '../helpers/wait.js';
import { writeStandIn } from '../helpers/ota-models.js';
import { publishModelDir } from '../../fleet-server/src/registry/publish.js';

let fleet: TestFleet | undefined;
after(async () => { await fleet?.stop(); });

test('creating and aborting a rollout each send a rollout event on the dashboard stream', async () => {
  fleet = await startFleet({ broker: 'aedes' });
  const f = fleet;
  f.addDevice('ro-ev-01');
  const dir = writeStandIn(join(f.dir, 'src', '2.0.0'), { name: 'standin', version: '2.0.0' });
  await publishModelDir(f.server.ota.registry, f.server.ota.key.privateKey, { dir });

  const login = await fetch(`${f.httpUrl}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: OPERATOR_PASSWORD }) });
  const { token } = (await login.json()) as { token: string };
  const ac = new AbortController();
  const res = await fetch(`${f.httpUrl}/api/events`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal });
  assert.equal(res.status, 200);
  // The raw stream's text is enough: each event is `event: TYPE\ndata: JSON\n\n` (event-stream.ts).
  let text = '';
  const reading = (async () => {
    try {
      for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) text += chunk;
    } catch {
      // aborted at the end of the test
    }
  })();
  const rolloutEvents = () => [...text.matchAll(/^event: rollout\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]) as { type: string; rolloutId: string });
  try {
    await waitFor('hello event', () => text.includes('event: hello'));
    const created = await f.api<{ rollout: { id: string } }>('POST', '/api/rollouts', { model: 'standin', version: '2.0.0', target: 'devices:ro-ev-01', waves: [100] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.rollout.id;
    await waitFor('a rollout event for the new rollout', () => rolloutEvents().length >= 1);
    assert.deepEqual(rolloutEvents(), [{ type: 'rollout', rolloutId: id }]);
    assert.equal((await f.api('POST', `/api/rollouts/${id}/abort`)).status, 200);
    await waitFor('a rollout event for the abort', () => rolloutEvents().length >= 2);
    assert.deepEqual(rolloutEvents()[1], { type: 'rollout', rolloutId: id });
  } finally {
    ac.abort();
    await reading;
  }
});
