/**
 * The fleet server stamps each desired message with `epoch`, the identity of its rev counter: made once
 * per database file and kept with it, so a reset (new) database shows as a new counter and its devices
 * follow its revs from 1 at once (they took them for stale retained messages for 10 minutes).
 * Real SQLite files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openDatabase } from '../../fleet-server/src/db/database.js';
import { DeviceStore } from '../../fleet-server/src/db/devices.js';
import { DesiredStore } from '../../fleet-server/src/ota/desired-store.js';
import { decodePayload, topics, type DesiredPayload } from '../../agent/src/protocol/index.js';
import { withTempDir } from '../helpers/temp-dir.js';

/** A fleet server's desired store on the database file `path`, with what it published (decoded as the agent does). */
function serverOn(path: string) {
  const db = openDatabase(path);
  const published: DesiredPayload[] = [];
  const store = new DesiredStore(db, (topic, payload) => {
    assert.equal(topic, topics.desired('cam-01'));
    const d = decodePayload('desired', payload);
    assert.ok(d.ok, d.ok ? '' : d.detail);
    published.push(d.value);
  });
  return { db, store, published, devices: new DeviceStore(db) };
}

const withDir = (fn: (dir: string) => Promise<void> | void) => withTempDir('ef-desired-epoch-', fn);

test('desired messages carry the epoch of the database, the same across restarts on one file, another on a new file', async () => {
  await withDir((dir) => {
    const path = join(dir, 'fleet.db');
    const first = serverOn(path);
    first.devices.add('cam-01');
    first.store.set('cam-01', 'detector', { version: '2.0.0' });
    first.store.set('cam-01', 'detector', { version: '3.0.0' });
    const [a, b] = first.published;
    assert.equal(typeof a?.epoch, 'string');
    assert.equal(b?.epoch, a?.epoch);
    assert.deepEqual([a?.rev, b?.rev], [1, 2]);
    first.db.close();

    // The same file again (a restart): the same counter, its revs go on.
    const again = serverOn(path);
    assert.equal(again.store.republishAll(), 1);
    again.store.set('cam-01', 'detector', { version: '4.0.0' });
    assert.deepEqual(again.published.map((p) => [p.epoch, p.rev]), [[a?.epoch, 2], [a?.epoch, 3]]);
    again.db.close();

    // The database was reset (a new file): revs start at 1 again, under another epoch.
    const reset = serverOn(join(dir, 'reset', 'fleet.db'));
    reset.devices.add('cam-01');
    reset.store.set('cam-01', 'detector', { version: '4.0.0' });
    const [c] = reset.published;
    assert.equal(c?.rev, 1);
    assert.equal(typeof c?.epoch, 'string');
    assert.notEqual(c?.epoch, a?.epoch);
    reset.db.close();
  });
});
