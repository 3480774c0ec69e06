/**
 * Maps a rules-engine AlertEvent to the `alert` MQTT payload of the shared protocol
 * (agent/src/protocol/payloads.ts AlertSchema), so the publisher needs no knowledge of rules.
 * `ts` is the wall time the alert was raised (integer ms, as the protocol requires).
 */
import type { AlertPayload } from '../protocol/payloads.js';
import type { AlertEvent, AlertKind } from './events.js';

const RULE_KIND: Record<AlertKind, string> = {
  'zone-enter': 'zone', 'zone-exit': 'zone', 'zone-occupancy': 'zone', 'line-cross': 'line', dwell: 'dwell',
};

export function toAlertPayload(e: AlertEvent): AlertPayload {
  const details: Record<string, string | number | boolean> = { event: e.kind, frameIndex: e.frameIndex, ptsNs: e.ptsNs };
  if (e.direction !== undefined) details.direction = e.direction;
  if (e.count !== undefined) details.count = e.count;
  if (e.dwellMs !== undefined) details.dwellMs = Math.round(e.dwellMs);
  return {
    v: 1,
    id: e.id,
    ts: Math.max(0, Math.round(e.timeMs)),
    camera: e.cameraId,
    rule: e.ruleId,
    ruleKind: RULE_KIND[e.kind],
    trackId: e.trackId,
    class: e.label,
    classId: e.classId,
    score: Math.min(1, Math.max(0, e.score)),
    box: { x: e.box.x, y: e.box.y, w: Math.max(0, e.box.w), h: Math.max(0, e.box.h) },
    ...(e.zone !== undefined ? { zone: e.zone } : {}),
    details,
  };
}
