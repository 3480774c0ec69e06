/** The face tile grid: `auto` by default, chosen per frame size from the model input; explicit grids as given. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TiledDetector, resolveGrid, tileRects } from '../../agent/src/privacy/tiles.js';
import { parsePrivacyConfig } from '../../agent/src/privacy/schema.js';
import type { RgbImage } from '../../agent/src/types.js';

test('the default grid is auto: no tile longer than 2.5 model inputs, per frame size', () => {
  const { tiles } = parsePrivacyConfig({}).faces;
  const sides = (w: number, h: number) => { const g = resolveGrid(w, h, tiles, 256); return [g.cols, g.rows]; };
  assert.deepEqual(sides(1920, 1080), [4, 2]);
  assert.deepEqual(sides(1280, 720), [3, 2]);
  assert.deepEqual(sides(640, 480), [1, 1]);
  assert.deepEqual(sides(3840, 2160), [8, 4]);
  for (const [w, h] of [[1920, 1080], [1280, 720], [2592, 1944], [3840, 2160], [641, 641]]) {
    for (const r of tileRects(w, h, resolveGrid(w, h, tiles, 256))) assert.ok(Math.max(r.w, r.h) <= 640, `${w}x${h}: tile ${r.w}x${r.h}`);
  }
});

test('explicit grids are honoured; one auto side is chosen alone', () => {
  const explicit = parsePrivacyConfig({ faces: { tiles: { cols: 2, rows: 2 } } }).faces.tiles;
  assert.deepEqual(resolveGrid(1920, 1080, explicit, 256), { cols: 2, rows: 2, overlapFrac: 0.2 });
  const off = parsePrivacyConfig({ faces: { tiles: { cols: 1, rows: 1 } } }).faces.tiles;
  assert.deepEqual(resolveGrid(3840, 2160, off, 256), { cols: 1, rows: 1, overlapFrac: 0.2 });
  const mixed = parsePrivacyConfig({ faces: { tiles: { cols: 3 } } }).faces.tiles;
  assert.deepEqual(resolveGrid(1920, 1080, mixed, 256), { cols: 3, rows: 2, overlapFrac: 0.2 });
  assert.throws(() => parsePrivacyConfig({ faces: { tiles: { cols: 'many' } } }), /cols/);
});

test('the tiled detector runs the whole frame and each tile of the auto grid', async () => {
  const seen: string[] = [];
  const inner = { detect: async (img: RgbImage) => { seen.push(`${img.width}x${img.height}`); return []; } };
  const det = new TiledDetector(inner, parsePrivacyConfig({}).faces.tiles, undefined, 256);
  await det.detect({ width: 1280, height: 720, data: new Uint8Array(1280 * 720 * 3) });
  assert.equal(seen.length, 1 + 6);
  assert.equal(seen[0], '1280x720');
  seen.length = 0;
  await det.detect({ width: 640, height: 480, data: new Uint8Array(640 * 480 * 3) });
  assert.deepEqual(seen, ['640x480']);
  assert.throws(() => new TiledDetector(inner, { cols: 'auto', rows: 1, overlapFrac: 0.2 }), /model's input size/);
});
