/**
 * Maps the rules engine's AlertEvent (agent/src/rules/events.ts) onto the wire payload
 * (protocol/payloads.ts AlertSchema). The snapshot must already be redacted: the redactor fails
 * closed and only a redacted JPEG may reach this function.
 */
import type { AlertEvent } from '../rules/events.js';
import type { AlertPayload } from '../protocol/payloads.js';

export interface RedactedJpeg {
  jpeg: Buffer;
  width: number;
  height: number;
}

export function alertPayloadFromEvent(ev: AlertEvent, snapshot?: RedactedJpeg): AlertPayload {
  const details: Record<string, string | number | boolean> = { frameIndex: ev.frameIndex };
  if (ev.direction !== undefined) details.direction = ev.direction;
  if (ev.count !== undefined) details.count = ev.count;
  if (ev.dwellMs !== undefined) details.dwellMs = Math.round(ev.dwellMs);
  return {
    v: 1,
    id: ev.id,
    ts: Math.round(ev.timeMs),
    camera: ev.cameraId,
    rule: ev.ruleId,
    ruleKind: ev.kind,
    trackId: ev.trackId,
    class: ev.label,
    classId: ev.classId,
    score: Math.min(1, Math.max(0, ev.score)),
    box: ev.box,
    ...(ev.zone !== undefined ? { zone: ev.zone } : {}),
    details,
    ...(snapshot ? { snapshot: { contentType: 'image/jpeg' as const, redacted: true as const, width: snapshot.width, height: snapshot.height, dataBase64: snapshot.jpeg.toString('base64') } } : {}),
  };
}
