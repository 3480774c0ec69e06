/**
 * Adapter registry by name. Adapters are created lazily so that loading the registry does not load
 * every runtime (LiteRT.js wasm, onnxruntime-node) on boards that use only one.
 */
import type { PlatformAdapter } from './contract.js';
import { OrtAdapter } from './onnxruntime/adapter.js';
import { TfliteAdapter } from './tflite/adapter.js';
import { TensorRtAdapter } from './tensorrt/adapter.js';
import { CoreMlAdapter } from './coreml/adapter.js';
import { ConfigError } from '../agent/src/util/errors.js';

export const ADAPTERS = {
  onnxruntime: () => new OrtAdapter(),
  tflite: () => new TfliteAdapter(),
  tensorrt: () => new TensorRtAdapter(),
  coreml: () => new CoreMlAdapter(),
} as const satisfies Record<string, () => PlatformAdapter>;

export type AdapterName = keyof typeof ADAPTERS;

export function adapterNames(): AdapterName[] {
  return Object.keys(ADAPTERS) as AdapterName[];
}

export function createAdapter(name: string): PlatformAdapter {
  const make = (ADAPTERS as Record<string, () => PlatformAdapter>)[name];
  if (!make) throw new ConfigError(`Expected an adapter name from ${adapterNames().join(', ')} but received "${name}"`);
  return make();
}

/** Probes every adapter; what is missing comes back as each one's reason. */
export async function probeAll(): Promise<Array<{ name: AdapterName; available: boolean; reason?: string }>> {
  return Promise.all(adapterNames().map(async (name) => ({ name, ...(await createAdapter(name).probe()) })));
}
