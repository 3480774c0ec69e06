import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketLengthTracker } from '../../fleet-server/src/broker/packet-guard.js';

/** An MQTT fixed header with the given Remaining Length (variable byte integer). */
function header(type: number, length: number): number[] {
  const out = [type];
  let x = length;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    out.push(b);
  } while (x > 0);
  return out;
}

function packet(type: number, body: number): Uint8Array {
  return Uint8Array.from([...header(type, body), ...new Array<number>(body).fill(0x61)]);
}

test('packets within the limit pass, however the stream is cut', () => {
  const stream = Buffer.concat([packet(0x10, 40), packet(0x30, 1000), packet(0xc0, 0), packet(0x30, 16383), packet(0x30, 200)]);
  for (const cut of [1, 2, 3, 7, 64, 4096, stream.length]) {
    const t = new PacketLengthTracker(20_000);
    for (let i = 0; i < stream.length; i += cut) assert.equal(t.feed(stream.subarray(i, i + cut)), undefined, `cut ${cut} at ${i}`);
  }
});

test('a packet over the limit is refused from its header, even when the header arrives byte by byte', () => {
  const t = new PacketLengthTracker(20_000);
  assert.equal(t.feed(packet(0x30, 100)), undefined);
  const big = header(0x10, 250 * 1024 * 1024);
  let verdict;
  for (const b of big) verdict ??= t.feed(Uint8Array.of(b));
  assert.match(verdict?.reason ?? '', /over the broker's limit of 20000/);
});

test('the limit is exact, and a fifth length byte is malformed', () => {
  assert.equal(new PacketLengthTracker(300).feed(Uint8Array.from(header(0x30, 300))), undefined);
  assert.ok(new PacketLengthTracker(300).feed(Uint8Array.from(header(0x30, 301))));
  assert.match(new PacketLengthTracker(2 ** 40).feed(Uint8Array.of(0x30, 0x80, 0x80, 0x80, 0x80, 0x01))?.reason ?? '', /malformed/);
});
