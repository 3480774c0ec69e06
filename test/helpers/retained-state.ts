/** Reading a device's retained MQTT messages from the broker, as the device itself. */
import mqtt from 'mqtt';
import type { StatePayload } from '../../agent/src/protocol/index.js';
import type { TestDevice, TestFleet } from './fleet.js';

/** The retained state on the broker, read as the device (its ACL lets it read its own subtree). */
export async function retainedState(fleet: TestFleet, dev: TestDevice): Promise<StatePayload> {
  const c = mqtt.connect(fleet.mqttUrl, { username: dev.id, password: dev.secret, protocolVersion: 4, reconnectPeriod: 0, clientId: `${dev.id}-reader` });
  try {
    await new Promise<void>((resolve, reject) => { c.once('connect', () => resolve()); c.once('error', reject); });
    let timer: NodeJS.Timeout | undefined;
    const got = new Promise<StatePayload>((resolve, reject) => {
      c.on('message', (_t, payload) => resolve(JSON.parse(payload.toString()) as StatePayload));
      timer = setTimeout(() => reject(new Error('no retained state within 5 s')), 5000);
    });
    c.subscribe(`ef/v1/dev/${dev.id}/state`, { qos: 1 });
    return await got.finally(() => clearTimeout(timer));
  } finally {
    c.end(true);
  }
}

