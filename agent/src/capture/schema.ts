/**
 * Camera source configuration, one form per `kind`. Pipelines for each kind are built in
 * pipelines.ts; board presets (configs/boards) may replace the decode step (e.g. nvv4l2decoder on Jetson).
 */
import { Type, type Static } from '@sinclair/typebox';
import { Discriminated } from '../util/schema.js';

const common = {
  id: Type.String({ minLength: 1, maxLength: 64, default: 'cam0', description: 'camera id used in alerts and telemetry (at most 64 characters, as the alert protocol allows)' }),
  /** Scale frames to this size in GStreamer (both or neither). */
  width: Type.Optional(Type.Integer({ minimum: 16 })),
  height: Type.Optional(Type.Integer({ minimum: 16 })),
  /** Stop after this many decoded frames (0 = no limit). */
  maxFrames: Type.Integer({ minimum: 0, default: 0 }),
  /** Capture → pipeline queue length; when full the oldest frame is dropped and counted. */
  queueSize: Type.Integer({ minimum: 1, maximum: 256, default: 4 }),
  reconnect: Type.Object({
    /** Restarts after a pipeline error before giving up (files default to 0 in code: a missing file is an error). */
    maxRetries: Type.Optional(Type.Integer({ minimum: 0 })),
    initialDelayMs: Type.Integer({ minimum: 1, default: 500 }),
    maxDelayMs: Type.Integer({ minimum: 1, default: 30_000 }),
  }, { additionalProperties: false, default: {} }),
};

export const FileSource = Type.Object({
  kind: Type.Literal('file'),
  path: Type.String({ minLength: 1, description: 'any container GStreamer decodes' }),
  /** true: play at the file's frame rate like a camera (frames may be dropped); false: every frame is processed. */
  realtime: Type.Boolean({ default: false }),
  ...common,
}, { additionalProperties: false });

export const RtspSource = Type.Object({
  kind: Type.Literal('rtsp'),
  /** Credentials may be written in the URL, percent-encoded (`rtsp://admin:p%40ss@host/…`), or below. */
  url: Type.String({ pattern: '^rtsps?://' }),
  /** The camera's user (rtspsrc user-id); takes the place of one in the URL. */
  username: Type.Optional(Type.String({ minLength: 1, description: "the camera's user (rtspsrc user-id); takes the place of one in the URL" })),
  /** The password as it is, any characters (rtspsrc user-pw); takes the place of one in the URL. */
  password: Type.Optional(Type.String({ minLength: 1, description: 'the password as it is, any characters (rtspsrc user-pw); takes the place of one in the URL' })),
  /** A file holding the password (its first line), read at start: keeps the secret out of the config. */
  passwordFile: Type.Optional(Type.String({ minLength: 1, description: 'a file holding the password (its first line), read at start, instead of password: keeps the secret out of the config' })),
  latencyMs: Type.Integer({ minimum: 0, default: 200 }),
  transport: Type.Union([Type.Literal('tcp'), Type.Literal('udp')], { default: 'tcp' }),
  ...common,
}, { additionalProperties: false });

export const V4l2Source = Type.Object({
  kind: Type.Literal('v4l2'),
  device: Type.String({ default: '/dev/video0' }),
  framerate: Type.Optional(Type.Integer({ minimum: 1 })),
  ...common,
}, { additionalProperties: false });

/** Jetson CSI camera through nvarguscamerasrc (JetPack's Argus); converted out of NVMM with nvvidconv. */
export const JetsonCsiSource = Type.Object({
  kind: Type.Literal('jetson-csi'),
  sensorId: Type.Integer({ minimum: 0, default: 0 }),
  captureWidth: Type.Integer({ minimum: 16, default: 1920 }),
  captureHeight: Type.Integer({ minimum: 16, default: 1080 }),
  framerate: Type.Integer({ minimum: 1, default: 30 }),
  ...common,
}, { additionalProperties: false });

export const TestSource = Type.Object({
  kind: Type.Literal('test'),
  pattern: Type.String({ default: 'ball' }),
  framerate: Type.Integer({ minimum: 1, default: 30 }),
  /** Frames before end of stream (0 = endless). */
  numFrames: Type.Integer({ minimum: 0, default: 0 }),
  live: Type.Boolean({ default: true }),
  ...common,
}, { additionalProperties: false });

/** A raw GStreamer pipeline producing decoded video; `appsink name=sink` is appended unless present. */
export const RawPipelineSource = Type.Object({
  kind: Type.Literal('pipeline'),
  pipeline: Type.String({ minLength: 1 }),
  live: Type.Boolean({ default: true }),
  ...common,
}, { additionalProperties: false });

export const SourceConfig = Discriminated('kind', [FileSource, RtspSource, V4l2Source, JetsonCsiSource, TestSource, RawPipelineSource]);
export type SourceConfig = Static<typeof SourceConfig>;
export type SourceKind = SourceConfig['kind'];
