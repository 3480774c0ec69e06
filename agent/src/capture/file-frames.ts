/**
 * Every decoded frame of a video file, in order, through the agent's own capture (GstFrameSource:
 * appsink, back-pressure, clear errors) — for offline work on recordings: tracking evaluation,
 * calibration frames for quantization, tests.
 */
import { basename } from 'node:path';
import type { Frame } from '../types.js';
import { GstFrameSource } from './gst-source.js';
import { SourceConfig } from './schema.js';
import { compileSchema } from '../util/schema.js';

const sourceConfig = compileSchema(SourceConfig);

export function videoFileFrames(opts: { path: string; maxFrames?: number; signal?: AbortSignal }): AsyncGenerator<Frame> {
  const config = sourceConfig.parse({ kind: 'file', path: opts.path, id: basename(opts.path), maxFrames: opts.maxFrames ?? 0 }, 'video file source');
  return new GstFrameSource({ config }).frames(opts.signal);
}
