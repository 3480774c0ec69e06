/**
 * End-to-end receipts for alerts (protocol `ack` topic): after an alert is stored (or found already
 * stored) its id is batched per device and published back, so the agent can drop it from its outbox.
 * Batches flush on the next timer tick (10 ms) or at 256 ids (AckSchema maxItems).
 */
import { topics, type AckPayload } from '../../../agent/src/protocol/index.js';

export type RawPublish = (topic: string, payload: Buffer) => void;

export class AckPublisher {
  private readonly pending = new Map<string, string[]>();
  private timer: NodeJS.Timeout | undefined;
  sent = 0;

  constructor(private readonly publish: RawPublish, private readonly flushDelayMs = 10) {}

  add(deviceId: string, alertId: string): void {
    let ids = this.pending.get(deviceId);
    if (!ids) { ids = []; this.pending.set(deviceId, ids); }
    ids.push(alertId);
    if (ids.length >= 256) this.flushDevice(deviceId);
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.flushDelayMs);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const id of [...this.pending.keys()]) this.flushDevice(id);
  }

  stop(): void {
    this.flush();
  }

  private flushDevice(deviceId: string): void {
    const ids = this.pending.get(deviceId);
    this.pending.delete(deviceId);
    if (!ids || ids.length === 0) return;
    const payload: AckPayload = { v: 1, ids };
    this.publish(topics.ack(deviceId), Buffer.from(JSON.stringify(payload)));
    this.sent += ids.length;
  }
}
