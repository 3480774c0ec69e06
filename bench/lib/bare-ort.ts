/**
 * The ceiling for the pipeline bench: onnxruntime-node `session.run` alone, in a process of its
 * own, with the session options the agent's worker uses (session-options.ts; --spinning turns
 * onnxruntime's intra-op spinning back on) on a fixed input of the model's size. Prints one JSON
 * line: wall and CPU time (this process's user + system) per run.
 *
 *   node --import tsx bench/lib/bare-ort.ts --model M --threads T --frames N [--spinning]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { workerSessionOptions } from '../../platform-adapters/onnxruntime/session-options.js';

const { values } = parseArgs({ options: { model: { type: 'string' }, threads: { type: 'string' }, frames: { type: 'string' }, image: { type: 'string', default: 'assets/images/faces/sample1.jpg' }, spinning: { type: 'boolean', default: false } } });
const session = await ort.InferenceSession.create(String(values.model), workerSessionOptions('cpu', Number(values.threads), { spinning: values.spinning }));
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
const cpu0 = process.cpuUsage();
for (let i = 0; i < frames; i++) await session.run(feeds);
const elapsedMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
process.stdout.write(`${JSON.stringify({ frames, elapsedMs, fps: (frames * 1000) / elapsedMs, cpuMsPerRun: cpuMs / frames, dims })}\n`);
await session.release();
