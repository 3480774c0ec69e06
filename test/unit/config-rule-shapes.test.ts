import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentConfigValidator } from '../../agent/src/config/schema.js';
import { crossFieldIssues } from '../../agent/src/config/cross-checks.js';
import { loadAgentConfig } from '../../agent/src/config/load.js';

type Pt = { x: number; y: number };
const square = (x0: number, y0: number, x1: number, y1: number): Pt[] => [{ x: x0, y: y0 }, { x: x1, y: y0 }, { x: x1, y: y1 }, { x: x0, y: y1 }];

function issuesFor(source: Record<string, unknown>, rules: Array<Record<string, unknown>>) {
  const cfg = agentConfigValidator.parse({ detector: { model: 'm.onnx' }, cameras: [{ source, rules: { rules } }] }, 'config');
  return crossFieldIssues(cfg);
}
const zone = (polygon: Pt[]) => ({ type: 'zone', id: 'z', polygon });
const file = { kind: 'file', path: 'v.avi' };
const sized = { kind: 'file', path: 'v.avi', width: 768, height: 576 };

test('a zone or line written as fractions of the frame is refused, saying rules take source pixels', () => {
  for (const rule of [
    zone([{ x: 0.1, y: 0.1 }, { x: 0.9, y: 0.1 }, { x: 0.9, y: 0.9 }]),
    { type: 'dwell', id: 'd', minDwellMs: 1000, polygon: square(0.2, 0.2, 0.8, 1) },
    { type: 'line', id: 'l', from: { x: 0, y: 0.5 }, to: { x: 1, y: 0.5 } },
  ]) {
    const issues = issuesFor(file, [rule]);
    assert.equal(issues.length, 1, JSON.stringify(issues));
    assert.equal(issues[0].path, `/cameras/0/rules/rules/0/${rule.type === 'line' ? 'from' : 'polygon'}`);
    assert.match(issues[0].expected, /source pixels.*fractions of the frame\? multiply x by the frame width/);
  }
  // Where the frame size is known the message gives it.
  assert.match(issuesFor(sized, [zone(square(0.1, 0.1, 0.9, 0.9))])[0].expected, /768×576/);
  // One coordinate past 1 is a (small) zone in pixels, not fractions.
  assert.deepEqual(issuesFor(file, [zone([{ x: 0, y: 0 }, { x: 2, y: 0 }, { x: 0, y: 1 }])]), []);
});

test('a zone wholly outside the camera\'s picture is refused where the frame size is known', () => {
  const outside = [square(5000, 5000, 6000, 6000), square(800, 0, 900, 576), square(-200, -200, -10, 600), [{ x: 700, y: 700 }, { x: 900, y: 700 }, { x: 900, y: 500 }]];
  for (const polygon of outside) {
    const issues = issuesFor(sized, [zone(polygon)]);
    assert.deepEqual(issues.map((i) => i.path), ['/cameras/0/rules/rules/0/polygon'], JSON.stringify(polygon));
    assert.match(issues[0].expected, /overlaps the camera's picture, 0\.\.768 × 0\.\.576.*wholly outside/);
    // Unknown frame size (no width/height on a file source): nothing to judge by.
    assert.deepEqual(issuesFor(file, [zone(polygon)]), []);
  }
  const overlapping = [
    square(250, 250, 520, 576), // inside
    square(700, 500, 900, 700), // partly outside
    square(-100, -100, 1000, 1000), // around the whole picture, every corner outside it
    [{ x: -100, y: 300 }, { x: 900, y: 290 }, { x: 900, y: 310 }], // a band across it, every corner outside
    square(768, 576, 900, 700), // touching its corner
  ];
  for (const polygon of overlapping) assert.deepEqual(issuesFor(sized, [zone(polygon)]), [], JSON.stringify(polygon));
});

test('the frame size comes from width/height, a CSI camera\'s capture size or the test source\'s 640×480', () => {
  const far = zone(square(1000, 700, 1200, 800));
  assert.equal(issuesFor({ kind: 'test' }, [far]).length, 1);
  assert.deepEqual(issuesFor({ kind: 'test', width: 1280, height: 720 }, [far]).length, 0);
  assert.deepEqual(issuesFor({ kind: 'jetson-csi' }, [far]), []);
  assert.equal(issuesFor({ kind: 'jetson-csi' }, [zone(square(2000, 0, 2100, 100))]).length, 1);
  assert.deepEqual(issuesFor({ kind: 'rtsp', url: 'rtsp://cam/1' }, [zone(square(5000, 5000, 6000, 6000))]), []);
});

test('check-config and run refuse the example config with a fractional zone; the example itself loads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ef-shapes-'));
  try {
    const example = JSON.parse(readFileSync('configs/agent.example.json', 'utf8')) as { cameras: Array<{ source: Record<string, unknown>; rules: { rules: Array<Record<string, unknown>> } }> };
    example.cameras[0].rules.rules[0].polygon = [{ x: 0.1, y: 0.1 }, { x: 0.9, y: 0.1 }, { x: 0.9, y: 0.9 }];
    writeFileSync(join(dir, 'agent.json'), JSON.stringify(example));
    await assert.rejects(loadAgentConfig(join(dir, 'agent.json')), (err: { issues?: Array<{ path: string }> }) => {
      assert.deepEqual(err.issues?.map((i) => i.path), ['/cameras/0/rules/rules/0/polygon']);
      return true;
    });
    assert.equal(crossFieldIssues(agentConfigValidator.parse(JSON.parse(readFileSync('configs/agent.example.json', 'utf8')), 'example')).length, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
