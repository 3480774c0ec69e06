/**
 * Device ACL, one rule for every broker: a device publishes only to its own device-direction topics
 * (state, telemetry, alert, reported, cmd/res, and its ota/... requests) and subscribes only to
 * filters inside its own subtree. A subscription filter with a wildcard at or above the device level
 * (`ef/v1/dev/+/...`, `ef/#`) would reach other devices and is refused.
 */
import { MAX_PAYLOAD_BYTES, OTA_MAX_PAYLOAD_BYTES, TOPIC_DIRECTION, deviceRoot, parseTopic, topicFor, type TopicKind } from '../../../agent/src/protocol/index.js';

/** Device topics whose messages the broker may retain: the device's liveness and its reported state. */
const RETAINED: ReadonlySet<string> = new Set(['state', 'reported']);
/** No device message is larger than the largest kind's limit (an alert with its snapshot). */
export const DEVICE_MESSAGE_CAP = Math.max(...Object.values(MAX_PAYLOAD_BYTES));
/**
 * The largest packet a broker reads from anyone, logged in or not: the largest device message plus room
 * for its topic, packet id and MQTT 5 properties (the Remaining Length of the fixed header, MQTT 3.1.1
 * §2.2.3). aedes refuses bigger ones from the header (packet-guard.ts), mosquitto by `max_packet_size`.
 */
export const MAX_PACKET_REMAINING_LENGTH = DEVICE_MESSAGE_CAP + 64 * 1024;

export function devicesMayPublish(deviceId: string, topic: string): boolean {
  const p = parseTopic(topic);
  if (!p || p.deviceId !== deviceId) return false;
  if (p.kind === 'ota') return topic === topicFor(deviceId, 'ota/req');
  if (p.kind === 'other') return false;
  return TOPIC_DIRECTION[p.kind as TopicKind] === 'device';
}

/**
 * What the broker itself must not take from a device, whatever ingest would make of it: a retained
 * message outside `state`/`reported` or over its kind's limit, and any message over the largest
 * kind's limit. The broker keeps retained messages in memory and hands them to every subscriber;
 * unbounded, one device could fill the server's memory (megabyte payloads, retained). A message
 * within the cap but over its kind's limit still reaches ingest, which counts and drops it.
 */
export function devicePublishRefusal(topic: string, bytes: number, retain: boolean): string | undefined {
  const kind = parseTopic(topic)?.kind;
  if (kind === 'ota') return retain ? 'retained ota/req; a chunk request is never retained' : bytes > OTA_MAX_PAYLOAD_BYTES.req ? `ota/req over ${OTA_MAX_PAYLOAD_BYTES.req} bytes` : undefined;
  if (bytes > DEVICE_MESSAGE_CAP) return `payload of ${bytes} bytes over ${DEVICE_MESSAGE_CAP}`;
  if (!retain) return undefined;
  if (!kind || !RETAINED.has(kind)) return `retained message on ${kind ?? topic}; only state and reported are retained`;
  const max = MAX_PAYLOAD_BYTES[kind as keyof typeof MAX_PAYLOAD_BYTES];
  return bytes > max ? `retained ${kind} of ${bytes} bytes over ${max}` : undefined;
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
