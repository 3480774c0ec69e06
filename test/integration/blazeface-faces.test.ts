/**
 * BlazeFace (back model, 256×256) on the six group photos of @vladmandic/face-api. The table below
 * was checked by hand: each photo was viewed (downscaled, with candidate boxes drawn on) and every
 * clearly visible face counted, its centre and rough size noted in source pixels (all photos are
 * 1920 px wide; rounded to 5 px). No photo has a face that is only partly visible, so the count must
 * match exactly: a missed face or a false face both fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Detector } from '../../agent/src/infer/detector.js';
import { readImageFile } from '../../agent/src/preprocess/preprocess.js';

interface Face { cx: number; cy: number; sizePx: number; note: string }

const EXPECTED: Record<string, Face[]> = {
  sample1: [
    { cx: 510, cy: 500, sizePx: 180, note: 'left, clown make-up, hair bow' },
    { cx: 940, cy: 555, sizePx: 170, note: 'middle, head tilted down, dark hair' },
    { cx: 1570, cy: 345, sizePx: 150, note: 'right, long blonde hair, uniform' },
  ],
  sample2: [
    { cx: 455, cy: 290, sizePx: 210, note: 'left, profile facing right, hand at mouth' },
    { cx: 975, cy: 355, sizePx: 210, note: 'middle, looking down' },
    { cx: 1555, cy: 300, sizePx: 200, note: 'right, looking down, arm raised' },
  ],
  sample3: [
    { cx: 695, cy: 485, sizePx: 210, note: 'left, curly blonde hair' },
    { cx: 1190, cy: 380, sizePx: 245, note: 'middle, tallest' },
    { cx: 1570, cy: 460, sizePx: 210, note: 'right, dark hair, smiling' },
  ],
  sample4: [
    { cx: 325, cy: 335, sizePx: 180, note: 'far left, long dark hair' },
    { cx: 760, cy: 210, sizePx: 165, note: 'second, tallest, head tilted' },
    { cx: 1075, cy: 325, sizePx: 200, note: 'third, patterned dress' },
    { cx: 1375, cy: 290, sizePx: 190, note: 'right, blonde' },
  ],
  sample5: [
    { cx: 860, cy: 245, sizePx: 165, note: 'top middle, red top' },
    { cx: 1200, cy: 350, sizePx: 185, note: 'top right of centre, navy dress' },
    { cx: 670, cy: 560, sizePx: 200, note: 'middle left, black top' },
    { cx: 1520, cy: 545, sizePx: 215, note: 'right, orange top, leaning on wall' },
    { cx: 460, cy: 1045, sizePx: 205, note: 'bottom left, front row' },
  ],
  sample6: [
    { cx: 350, cy: 650, sizePx: 220, note: 'far left, green dress' },
    { cx: 775, cy: 495, sizePx: 240, note: 'second, red dress' },
    { cx: 1265, cy: 470, sizePx: 235, note: 'third, striped outfit' },
    { cx: 1590, cy: 435, sizePx: 250, note: 'right, green top' },
  ],
};

const MODEL = 'assets/models/blazeface-back/model.onnx';

test('BlazeFace finds every clearly visible face in the six group photos, and nothing else', async (t) => {
  if (!existsSync(MODEL) || !existsSync('assets/models/blazeface-back/model.meta.json')) {
    t.skip(`${MODEL} or its metadata is missing: run scripts/setup.sh, then npx tsx scripts/prepare-models.ts`);
    return;
  }
  const detector = await Detector.open({ modelPath: MODEL, intraOpThreads: 1 });
  try {
    for (const [name, faces] of Object.entries(EXPECTED)) {
      const file = `assets/images/faces/${name}.jpg`;
      if (!existsSync(file)) { t.skip(`${file} is missing: run scripts/setup.sh`); return; }
      const dets = await detector.detect(await readImageFile(file));
      const summary = dets.map((d) => `${d.score.toFixed(2)}@(${Math.round(d.box.x + d.box.w / 2)},${Math.round(d.box.y + d.box.h / 2)}) ${Math.round(d.box.w)}px`).join(' ');
      t.diagnostic(`${name}: ${dets.length} faces ${summary}`);
      assert.equal(dets.length, faces.length, `${name}: expected ${faces.length} faces, found ${dets.length}: ${summary}`);
      for (const f of faces) {
        const hit = dets.find((d) => Math.hypot(d.box.x + d.box.w / 2 - f.cx, d.box.y + d.box.h / 2 - f.cy) < 0.35 * f.sizePx
          && d.box.w > 0.6 * f.sizePx && d.box.w < 1.6 * f.sizePx);
        assert.ok(hit, `${name}: no detection for the face "${f.note}" near (${f.cx}, ${f.cy}); found ${summary}`);
        for (const k of hit.keypoints ?? []) {
          assert.ok(Math.abs(k.x - f.cx) < f.sizePx && Math.abs(k.y - f.cy) < f.sizePx, `${name}: key point (${k.x}, ${k.y}) far from its face`);
        }
      }
    }
  } finally {
    await detector.close();
  }
});

test('metadata listing the output pairs out of stride order is refused on the first frame, not decoded into misplaced boxes', async (t) => {
  if (!existsSync(MODEL) || !existsSync('assets/images/faces/sample1.jpg')) {
    t.skip(`${MODEL} or assets/images/faces is missing: run scripts/setup.sh, then npx tsx scripts/prepare-models.ts`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'blazeface-reversed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(MODEL, join(dir, 'model.onnx'));
  const meta = JSON.parse(readFileSync('assets/models/blazeface-back/model.meta.json', 'utf8')) as { decoder: { scoreOutputs: string[]; boxOutputs: string[] } };
  meta.decoder.scoreOutputs.reverse();
  meta.decoder.boxOutputs.reverse();
  writeFileSync(join(dir, 'model.meta.json'), JSON.stringify(meta));
  const detector = await Detector.open({ modelPath: join(dir, 'model.onnx'), intraOpThreads: 1 });
  try {
    await assert.rejects(detector.detect(await readImageFile('assets/images/faces/sample1.jpg')),
      (err: Error & { code?: string }) => err.code === 'E_MODEL' && err.message.includes(meta.decoder.scoreOutputs[0]) && /order of decoder\.anchors\.strides/.test(err.message));
  } finally {
    await detector.close();
  }
});
