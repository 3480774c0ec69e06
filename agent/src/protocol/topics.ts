/**
 * The MQTT topic tree, one builder and one parser shared by the agent and the fleet server
 * (docs/protocol.md is the prose version). Every device owns the subtree `ef/v1/dev/{deviceId}/#`;
 * broker ACLs confine it there. Device ids are restricted to a topic-safe alphabet so that an id can
 * never carry MQTT wildcards (`+`, `#`) or level separators (MQTT 5 §4.7.1).
 */
import { InputError, received } from '../util/errors.js';

export const TOPIC_ROOT = 'ef/v1/dev';
/** Share group used by fleet-server replicas (MQTT 5 §4.8.2 shared subscriptions). */
export const SHARE_GROUP = 'fleet';

/** Letters, digits, `_` and `-`, 1–64 characters: safe as an MQTT level, a file name and a username. */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
const deviceIdRe = new RegExp(DEVICE_ID_PATTERN);

/** Kinds of message under a device subtree. OTA kinds (`ota/...`) are added by the OTA module. */
export type TopicKind = 'state' | 'telemetry' | 'alert' | 'ack' | 'desired' | 'reported' | 'cmd' | 'cmd/res';
/** Who publishes each kind. The device may only publish `device` kinds; it subscribes to `server` kinds. */
export const TOPIC_DIRECTION: Record<TopicKind, 'device' | 'server'> = {
  state: 'device',
  telemetry: 'device',
  alert: 'device',
  reported: 'device',
  'cmd/res': 'device',
  /** End-to-end receipt: the server has stored these alert ids; the agent may forget them. */
  ack: 'server',
  desired: 'server',
  cmd: 'server',
};

/** A device's MQTT client id is `ef-{deviceId}` (docs/protocol.md); brokers refuse it to any other device. */
export const DEVICE_CLIENT_PREFIX = 'ef-';
export function deviceClientId(deviceId: string): string {
  return `${DEVICE_CLIENT_PREFIX}${deviceId}`;
}

export function isDeviceId(id: unknown): id is string {
  return typeof id === 'string' && deviceIdRe.test(id);
}

export function assertDeviceId(id: unknown): string {
  if (!isDeviceId(id)) {
    throw new InputError(`Expected a device id of 1-64 letters, digits, '_' or '-' but received ${received(id)}; pick an id without spaces, '/', '+' or '#'.`);
  }
  return id;
}

export function deviceRoot(deviceId: string): string {
  return `${TOPIC_ROOT}/${assertDeviceId(deviceId)}`;
}

export function topicFor(deviceId: string, kind: TopicKind | `ota/${string}`): string {
  return `${deviceRoot(deviceId)}/${kind}`;
}

export const topics = {
  state: (id: string) => topicFor(id, 'state'),
  telemetry: (id: string) => topicFor(id, 'telemetry'),
  alert: (id: string) => topicFor(id, 'alert'),
  ack: (id: string) => topicFor(id, 'ack'),
  desired: (id: string) => topicFor(id, 'desired'),
  reported: (id: string) => topicFor(id, 'reported'),
  cmd: (id: string) => topicFor(id, 'cmd'),
  cmdRes: (id: string) => topicFor(id, 'cmd/res'),
  /** The whole subtree of one device, for ACLs. */
  subtree: (id: string) => `${deviceRoot(id)}/#`,
};

/**
 * Filter the fleet server subscribes with for one kind across all devices; with `shared` it is the
 * MQTT 5 shared form `$share/{group}/...` so that replicas split the messages between them.
 */
export function serverFilter(kind: TopicKind, shared: boolean): string {
  const f = `${TOPIC_ROOT}/+/${kind}`;
  return shared ? `$share/${SHARE_GROUP}/${f}` : f;
}

export interface ParsedTopic {
  deviceId: string;
  /** `state`, `telemetry`, ..., or `ota/...` for OTA sub-topics; `other` for anything unknown. */
  kind: TopicKind | 'ota' | 'other';
  /** Levels after the device id, joined with '/'. */
  rest: string;
}

/** Parses `ef/v1/dev/{id}/...`; returns undefined for topics outside the tree or with a bad id. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const prefix = `${TOPIC_ROOT}/`;
  if (!topic.startsWith(prefix)) return undefined;
  const parts = topic.slice(prefix.length).split('/');
  const deviceId = parts[0];
  if (!isDeviceId(deviceId) || parts.length < 2) return undefined;
  const rest = parts.slice(1).join('/');
  let kind: ParsedTopic['kind'] = 'other';
  if (rest in TOPIC_DIRECTION) kind = rest as TopicKind;
  else if (parts[1] === 'ota') kind = 'ota';
  return { deviceId, kind, rest };
}
