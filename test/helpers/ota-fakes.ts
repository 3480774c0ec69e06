import { EventEmitter } from 'node:events';
import type { ReportedPayload } from '../../agent/src/protocol/index.js';
import type { OtaReport } from '../../agent/src/protocol/ota.js';
import type { DetectorLike } from '../../agent/src/ota/swappable-detector.js';
import type { DetectResult } from '../../agent/src/infer/detector.js';

/** A detector that always finds one person in 1 ms: stands in for a model where only the OTA logic is tested. */
export function fakeDetector(): DetectorLike {
  return {
    async detectTimed(): Promise<DetectResult> {
      return { detections: [{ box: { x: 0, y: 0, w: 1, h: 1 }, score: 0.9, classId: 0, label: 'person' }] as DetectResult['detections'], timings: { preprocessMs: 0, inferMs: 1, decodeMs: 0 } };
    },
    async close() {},
  };
}

/** A link stand-in for the OTA manager: desired states are emitted on it, OTA reports collected in `reports`. */
export function fakeOtaLink(reports: OtaReport[]): EventEmitter & { deviceId: string; publishRaw: () => boolean; publishReported: (r: ReportedPayload) => boolean } {
  return Object.assign(new EventEmitter(), {
    deviceId: 'cam-01',
    publishRaw: () => true,
    publishReported: (r: ReportedPayload) => { reports.push((r as unknown as { ota: OtaReport }).ota); return true; },
  });
}
