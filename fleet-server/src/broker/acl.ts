/**
 * Device ACL, one rule for every broker: a device publishes only to its own device-direction topics
 * (state, telemetry, alert, reported, cmd/res, and its ota/... requests) and subscribes only to
 * filters inside its own subtree. A subscription filter with a wildcard at or above the device level
 * (`ef/v1/dev/+/...`, `ef/#`) would reach other devices and is refused.
 */
import { TOPIC_DIRECTION, deviceRoot, parseTopic, type TopicKind } from '../../../agent/src/protocol/index.js';

export function devicesMayPublish(deviceId: string, topic: string): boolean {
  const p = parseTopic(topic);
  if (!p || p.deviceId !== deviceId) return false;
  if (p.kind === 'ota') return true;
  if (p.kind === 'other') return false;
  return TOPIC_DIRECTION[p.kind as TopicKind] === 'device';
}

export function devicesMaySubscribe(deviceId: string, filter: string): boolean {
  if (filter.startsWith('$share/')) return false;
  const root = `${deviceRoot(deviceId)}/`;
  return filter.startsWith(root) && filter.length > root.length;
}

/** Service accounts (fleet-server replicas) may use the whole tree. */
export function servicesMayUse(topicOrFilter: string): boolean {
  const t = topicOrFilter.startsWith('$share/') ? topicOrFilter.split('/').slice(2).join('/') : topicOrFilter;
  return t.startsWith('ef/v1/');
}
