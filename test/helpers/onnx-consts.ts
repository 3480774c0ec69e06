import { DataType, tensorToFloat32, type OnnxGraph } from '../../fleet-server/src/convert/onnx/model.js';
import { halfBitsToFloat } from '../../fleet-server/src/quantize/qmath.js';

/**
 * The float values of a constant input: an initializer, or a Cast of a binary16 initializer (how a CPU
 * INT8 build stores its weight scales and biases, fleet-server/src/quantize/qdq.ts). Throws otherwise.
 */
export function constFloats(g: OnnxGraph, name: string): Float32Array {
  const init = g.initializers.get(name);
  if (init) return tensorToFloat32(init);
  const cast = g.nodes.find((n) => n.opType === 'Cast' && n.outputs[0] === name);
  const half = cast ? g.initializers.get(cast.inputs[0]) : undefined;
  if (half?.dataType !== DataType.FLOAT16) throw new Error(`${name} is neither a float initializer nor a Cast of a half one`);
  const bits = new Uint16Array(half.data.slice().buffer);
  return Float32Array.from(bits, halfBitsToFloat);
}
