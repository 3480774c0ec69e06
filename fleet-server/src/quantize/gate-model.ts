/**
 * A model as the accuracy gate runs it: ONNX through onnxruntime-node, TFLite through LiteRT.js (the
 * runtime the agent itself uses for `.tflite` on Linux boxes). A Core ML model runs only on Apple
 * hardware; it is refused with what to do instead.
 */
import ort from 'onnxruntime-node';
import type { OutputMap } from '../../../agent/src/decode/index.js';
import { ModelError } from '../../../agent/src/util/errors.js';
import { TfliteAdapter } from '../../../platform-adapters/tflite/adapter.js';
import type { ModelInput } from '../../../agent/src/preprocess/preprocess.js';

export interface GateModel {
  readonly path: string;
  readonly format: 'onnx' | 'tflite';
  readonly inputNames: string[];
  readonly outputNames: string[];
  run(inputName: string, input: Pick<ModelInput, 'dtype' | 'data' | 'dims'>): Promise<OutputMap>;
  release(): Promise<void>;
}

const floats = (d: ArrayLike<number> | Float32Array): Float32Array => (d instanceof Float32Array ? d : Float32Array.from(d));

export async function openGateModel(path: string, threads: number): Promise<GateModel> {
  if (/\.mlmodelc?$/i.test(path)) {
    throw new ModelError(`${path} is a Core ML model, which runs only on Apple hardware, so the accuracy gate cannot run it here; ` +
      'gate the ONNX or TFLite INT8 build of the model, or publish the Core ML FP16 artifact');
  }
  if (/\.tflite$/i.test(path)) {
    const session = await new TfliteAdapter().createSession({ modelPath: path, warmUp: false });
    return {
      path, format: 'tflite', inputNames: session.info.inputs.map((i) => i.name), outputNames: session.info.outputs.map((o) => o.name),
      async run(inputName, input) {
        const { outputs } = await session.run({ [inputName]: { type: input.dtype, dims: input.dims, data: input.data } });
        return Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, { dims: t.dims, data: floats(t.data as ArrayLike<number>) }]));
      },
      release: () => session.dispose(),
    };
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(path, { intraOpNumThreads: threads, logSeverityLevel: 3 });
  } catch (err) {
    throw new ModelError(`onnxruntime could not load ${path}: ${(err as Error).message}`, { cause: err });
  }
  return {
    path, format: 'onnx', inputNames: [...session.inputNames], outputNames: [...session.outputNames],
    async run(inputName, input) {
      const out = await session.run({ [inputName]: new ort.Tensor(input.dtype, input.data, input.dims) });
      return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { dims: t.dims, data: floats(t.data as ArrayLike<number>) }]));
    },
    release: () => session.release(),
  };
}
