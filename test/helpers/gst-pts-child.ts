/**
 * Runs one GstFrameSource on real GStreamer until it ends and prints one JSON line: each frame's
 * `[index, ptsNs, capturedAtNs]`. Usage: node --import tsx test/helpers/gst-pts-child.ts '<source JSON>'
 */
import { GstFrameSource } from '../../agent/src/capture/gst-source.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { compileSchema } from '../../agent/src/util/schema.js';

const config = compileSchema(SourceConfig).parse(JSON.parse(process.argv[2] ?? '{}'), 'source');
const frames: Array<[number, number, number]> = [];
for await (const f of new GstFrameSource({ config }).frames()) frames.push([f.index, f.ptsNs, f.capturedAtNs]);
process.stdout.write(`${JSON.stringify({ frames })}\n`);
