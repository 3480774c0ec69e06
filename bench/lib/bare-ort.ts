/**
 * The ceiling for the pipeline bench: onnxruntime-node `session.run` alone, in a process of its
 * own, with the session options the agent's worker uses (graph optimisation "all", intra-op
 * threads, 1 inter-op thread) on a fixed input of the model's size. Prints one JSON line.
 *
 *   node --import tsx bench/lib/bare-ort.ts --model M --threads T --frames N
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import sharp from 'sharp';

const { values } = parseArgs({ options: { model: { type: 'string' }, threads: { type: 'string' }, frames: { type: 'string' }, image: { type: 'string', default: 'assets/images/faces/sample1.jpg' } } });
const session = await ort.InferenceSession.create(String(values.model), {
  executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: Number(values.threads), interOpNumThreads: 1,
});
const meta = session.inputMetadata[0];
if (!meta.isTensor) throw new Error(`input ${meta.name} is not a tensor`);
const dims = meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
if (dims.length !== 4 || dims[3] !== 3) throw new Error(`expected an NHWC RGB input, got [${dims.join(', ')}]`);
// A real photo (people in it) resized to the input, 0–255 floats like the CenterNet metadata asks,
// so that the data-dependent part of the graph (top-k of the heat map) does comparable work.
const rgb = await sharp(String(values.image)).resize(dims[2], dims[1], { fit: 'fill' }).removeAlpha().raw().toBuffer();
const data = Float32Array.from(rgb);
const feeds = { [meta.name]: new ort.Tensor('float32', data, dims) };
await session.run(feeds);
const frames = Number(values.frames);
const t0 = performance.now();
for (let i = 0; i < frames; i++) await session.run(feeds);
const elapsedMs = performance.now() - t0;
process.stdout.write(`${JSON.stringify({ frames, elapsedMs, fps: (frames * 1000) / elapsedMs, dims })}\n`);
await session.release();
