/**
 * Runs one GstFrameSource on real GStreamer until it ends, and prints one JSON line: `{"frames": n,
 * "error": {code, message} | null, "stats": {...}, "delays": [ms...]}`. Restart delays are recorded
 * and not waited for. Then ends on its own (no process.exit), so a bus poll or appsink pull left
 * waiting would keep it alive. Usage: node --import tsx test/helpers/gst-source-child.ts '<source JSON>' ['<board capture JSON>']
 */
import { GstFrameSource } from '../../agent/src/capture/gst-source.js';
import { SourceConfig } from '../../agent/src/capture/schema.js';
import { compileSchema } from '../../agent/src/util/schema.js';
import { describeError } from '../../agent/src/util/errors.js';

const config = compileSchema(SourceConfig).parse(JSON.parse(process.argv[2] ?? '{}'), 'source');
const delays: number[] = [];
const board = process.argv[3] ? JSON.parse(process.argv[3]) as { decode?: string } : undefined;
const source = new GstFrameSource({ config, board, sleep: async (ms) => { delays.push(ms); } });
let frames = 0;
let error: { code: string; message: string } | null = null;
try {
  for await (const _frame of source.frames()) frames++;
} catch (err) {
  error = describeError(err);
}
process.stdout.write(`${JSON.stringify({ frames, error, stats: source.stats, delays })}\n`);
