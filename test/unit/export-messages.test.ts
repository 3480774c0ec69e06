/**
 * Refusals say which export refused and what to look for: the builtin op's name and the ONNX node it
 * came from, and "Core ML" for a Core ML export (built from the TFLite graph, whose messages it used
 * to pass on: "TFLite op 41 has no Core ML layer here", "can be exported to TFLite").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exportCoreml } from '../../fleet-server/src/export/coreml/export.js';
import { exportTflite } from '../../fleet-server/src/export/tflite/export.js';
import { encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import { emptyGraph, floatTensor, type OnnxDim, type OnnxNode } from '../../fleet-server/src/convert/onnx/model.js';
import { ModelError } from '../../agent/src/util/errors.js';

function model(inShape: OnnxDim[], nodes: OnnxNode[], inits: Record<string, number[]> = {}): Uint8Array {
  const g = emptyGraph('net');
  g.inputs.push({ name: 'x', elemType: 1, shape: inShape });
  g.outputs.push({ name: 'y', elemType: 1 });
  for (const [k, v] of Object.entries(inits)) g.initializers.set(k, floatTensor(v.length === 1 ? [] : [v.length], v));
  g.nodes.push(...nodes);
  return encodeModel({ irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {}, graph: g });
}

const refused = (pattern: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof ModelError, String(e));
  assert.match(e.message, pattern);
  assert.doesNotMatch(e.message, /TFLite op \d+/);
  return true;
};

test('a Core ML refusal names the builtin op and its ONNX node, not a TFLite op number', () => {
  const sub = model([1, 4, 4, 3], [{ opType: 'Sub', name: 'center', inputs: ['x', 'half'], outputs: ['y'], attributes: [] }], { half: [0.5] });
  assert.throws(() => exportCoreml(sub, { precision: 'fp32' }), refused(/^Core ML export: SUB \(ONNX node center\) has no Core ML layer here/));
});

test('a Core ML export says Core ML where the graph conversion refuses; TFLite keeps saying TFLite', () => {
  const hs = model([1, 4, 4, 3], [{ opType: 'HardSigmoid', name: 'hs', inputs: ['x'], outputs: ['y'], attributes: [] }]);
  assert.throws(() => exportCoreml(hs, { precision: 'fp32' }), refused(/^No output of net can be exported to Core ML: y: HardSigmoid \(hs\) has no Core ML mapping/));
  assert.throws(() => exportTflite(hs, { precision: 'fp32' }), refused(/^No output of net can be exported to TFLite: y: HardSigmoid \(hs\) has no TFLite mapping/));
  const dyn = model(['N', 'H', 'W', 3], [{ opType: 'Relu', name: 'r', inputs: ['x'], outputs: ['y'], attributes: [] }]);
  assert.throws(() => exportCoreml(dyn, { precision: 'fp32' }), refused(/^Core ML export: input x has the dynamic size "H".*Core ML needs fixed sizes/));
});

test('a dilated Conv is refused by the Core ML export (its conv layers carry no dilation), not written as an undilated one', () => {
  const g = emptyGraph('net');
  g.inputs.push({ name: 'x', elemType: 1, shape: [1, 8, 8, 3] });
  g.outputs.push({ name: 'y', elemType: 1 });
  g.initializers.set('w', floatTensor([2, 3, 3, 3], Array.from({ length: 54 }, (_, i) => (i % 7) / 7 - 0.4)));
  g.initializers.set('b', floatTensor([2], [0.1, -0.1]));
  g.nodes.push(
    { opType: 'Transpose', name: 'nchw', inputs: ['x'], outputs: ['xc'], attributes: [{ name: 'perm', type: 'ints', value: [0, 3, 1, 2] }] },
    { opType: 'Conv', name: 'dil', inputs: ['xc', 'w', 'b'], outputs: ['yc'], attributes: [{ name: 'dilations', type: 'ints', value: [2, 2] }, { name: 'pads', type: 'ints', value: [2, 2, 2, 2] }] },
    { opType: 'Transpose', name: 'nhwc', inputs: ['yc'], outputs: ['y'], attributes: [{ name: 'perm', type: 'ints', value: [0, 2, 3, 1] }] },
  );
  const bytes = encodeModel({ irVersion: 8, opsetImports: [{ domain: '', version: 17 }], metadataProps: {}, graph: g });
  assert.throws(() => exportCoreml(bytes, { precision: 'fp32' }), refused(/^Core ML export: CONV_2D \S+ has dilation \[2, 2\], which this exporter does not write/));
  assert.doesNotThrow(() => exportTflite(bytes, { precision: 'fp32' }), 'TFLite writes the dilation factors');
});
