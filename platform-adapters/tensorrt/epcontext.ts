/**
 * The EPContext wrapper that lets ONNX Runtime's TensorRT EP load a prebuilt engine instead of
 * building one (onnxruntime.ai/docs/execution-providers/EP-Context-Design.html): one node of op
 * `EPContext` in domain `com.microsoft`, with the original graph's inputs and outputs, and
 * attributes main_context=1, embed_mode (0: ep_cache_context is a path relative to the wrapper,
 * 1: it holds the engine bytes), ep_cache_context, ep_sdk_version, hardware_architecture (the GPU's
 * compute capability, e.g. "87" for Orin) and source="TensorrtExecutionProvider".
 * Written with our own ONNX codec (fleet-server/src/convert/onnx).
 */
import { basename } from 'node:path';
import { encodeModel } from '../../fleet-server/src/convert/onnx/codec.js';
import type { OnnxModel, OnnxValueInfo } from '../../fleet-server/src/convert/onnx/model.js';
import { formatVersion, type TrtVersion } from './trtexec.js';

export interface EpContextOptions {
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  enginePath: string;
  version: TrtVersion;
  /** GPU compute capability, "87" for Jetson Orin, "72" for Xavier; empty when unknown. */
  computeCapability?: string;
}

export function epContextModel(o: EpContextOptions): OnnxModel {
  return {
    irVersion: 8,
    opsetImports: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    producerName: 'edge-fleet',
    metadataProps: {},
    graph: {
      name: 'trt_engine_wrapper',
      nodes: [{
        opType: 'EPContext',
        domain: 'com.microsoft',
        name: 'trt_engine',
        inputs: o.inputs.map((i) => i.name),
        outputs: o.outputs.map((x) => x.name),
        attributes: [
          { name: 'main_context', type: 'int', value: 1 },
          { name: 'embed_mode', type: 'int', value: 0 },
          // Relative to the wrapper's folder, so a cache entry can move as a whole.
          { name: 'ep_cache_context', type: 'string', value: basename(o.enginePath) },
          { name: 'ep_sdk_version', type: 'string', value: formatVersion(o.version) },
          { name: 'hardware_architecture', type: 'string', value: o.computeCapability ?? '' },
          { name: 'source', type: 'string', value: 'TensorrtExecutionProvider' },
        ],
      }],
      initializers: new Map(),
      inputs: o.inputs,
      outputs: o.outputs,
      valueInfo: [],
    },
  };
}

export function encodeEpContextModel(o: EpContextOptions): Uint8Array {
  return encodeModel(epContextModel(o));
}
