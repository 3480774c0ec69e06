/**
 * Real TensorRT check for a machine with JetPack / TensorRT (run it on the Jetson or a GPU box):
 *   npx tsx platform-adapters/tensorrt/selftest.ts [model.onnx] [fp16|int8|fp32]
 * Probes the adapter (prints what is missing and exits 2 if anything is), builds the engine with the
 * real trtexec (timed; the second call must hit the cache), loads the EPContext wrapper through
 * ONNX Runtime's TensorRT EP, and compares its outputs with ORT CPU on a deterministic input.
 */
import { TensorRtAdapter } from './adapter.js';
import { OrtAdapter } from '../onnxruntime/adapter.js';
import type { TensorData } from '../contract.js';

const modelPath = process.argv[2] ?? 'assets/models/blazeface-back/model.onnx';
const precision = (process.argv[3] ?? 'fp16') as 'fp32' | 'fp16' | 'int8';
const trt = new TensorRtAdapter();
const probe = await trt.probe();
console.log('probe:', probe);
if (!probe.available) process.exit(2);
console.log('TensorRT', await trt.trtVersion());
let t0 = performance.now();
const first = await trt.ensureEngine(modelPath, precision);
console.log(`engine ${first.built ? 'built' : 'found in cache'} in ${(performance.now() - t0).toFixed(0)} ms: ${first.entry.enginePath}`);
t0 = performance.now();
const again = await trt.ensureEngine(modelPath, precision);
console.log(`second lookup: ${again.built ? 'REBUILT (cache miss!)' : 'cache hit'} in ${(performance.now() - t0).toFixed(0)} ms`);
const session = await trt.createSession({ modelPath, precision });
const cpu = await new OrtAdapter().createSession({ modelPath, providers: ['cpu'] });
console.log('trt session:', session.info.provider, session.info.requestedProviders, session.info.fallbacks);
const feeds = (): Record<string, TensorData> => Object.fromEntries(cpu.info.inputs.map((i) => {
  const dims = i.dims.map((d) => (d > 0 ? d : 1));
  const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, k) => ((k * 2654435761) % 1000) / 1000);
  return [i.name, { type: 'float32' as const, dims, data }];
}));
const a = await cpu.run(feeds());
const b = await session.run(feeds());
let worst = 0;
for (const [name, t] of Object.entries(a.outputs)) {
  const x = t.data as Float32Array, y = b.outputs[name].data as Float32Array;
  let md = 0, lo = Infinity, hi = -Infinity;
  for (let i = 0; i < x.length; i++) { md = Math.max(md, Math.abs(x[i] - y[i])); lo = Math.min(lo, x[i]); hi = Math.max(hi, x[i]); }
  worst = Math.max(worst, md / Math.max(hi - lo, 1e-12));
  console.log(`${name}: max abs diff ${md.toExponential(2)} over range ${(hi - lo).toFixed(3)}; cpu ${a.inferMs.toFixed(1)} ms, trt ${b.inferMs.toFixed(1)} ms`);
}
await session.dispose();
await cpu.dispose();
const ok = worst <= (precision === 'fp32' ? 1e-3 : 2e-2);
console.log(ok ? 'SELFTEST OK' : `SELFTEST FAILED: worst relative diff ${worst}`);
process.exitCode = ok ? 0 : 1;
