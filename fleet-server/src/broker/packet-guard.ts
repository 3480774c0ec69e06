/**
 * A cap on the size of every MQTT packet a socket sends to the embedded broker, checked from the
 * packet's fixed header, before the packet's body is read.
 *
 * aedes 1.x has no maximum packet size: its parser buffers a packet until the length its header
 * declares has arrived, and the broker's own limits (acl.ts) see a PUBLISH only once it is whole and
 * its sender logged in. Anyone who can reach the port could therefore make the server hold up to
 * 256 MiB per socket (measured: four sockets declaring 250 MiB CONNECTs took the fleet server from
 * 135 to 1135 MiB), and the server also runs ingest, the API and SQLite.
 *
 * Fixed header (MQTT 3.1.1 §2.2, MQTT 5 §2.1.1): one byte of type and flags, then the Remaining Length
 * as a variable byte integer of 1 to 4 bytes, 7 bits each, least significant first; a fifth
 * continuation byte is malformed.
 */
import type { Socket } from 'node:net';

export interface PacketGuardVerdict {
  /** Why the socket was refused. */
  reason: string;
}

/** Walks a byte stream packet by packet; `feed` returns a refusal once a packet is over the limit. */
export class PacketLengthTracker {
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private left = 0;

  constructor(private readonly maxRemainingLength: number) {}

  feed(chunk: Uint8Array): PacketGuardVerdict | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'body') {
        const take = Math.min(this.left, chunk.length - i);
        this.left -= take;
        i += take;
        if (this.left === 0) this.state = 'type';
        continue;
      }
      const byte = chunk[i++];
      if (this.state === 'type') {
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes += 1;
      if (this.length > this.maxRemainingLength) return { reason: `packet of ${this.length}+ bytes over the broker's limit of ${this.maxRemainingLength}` };
      if (byte & 0x80) {
        if (this.lengthBytes === 4) return { reason: 'malformed packet length (more than 4 bytes)' };
        continue;
      }
      this.left = this.length;
      this.state = this.left > 0 ? 'body' : 'type';
    }
    return undefined;
  }
}

/**
 * Checks every byte aedes reads from `socket` (it reads with `read()` on 'readable', so the check
 * sits on that call and copies nothing) and destroys the socket at the first packet over the limit.
 */
export function guardPacketSize(socket: Socket, maxRemainingLength: number, onRefused: (v: PacketGuardVerdict) => void): void {
  const tracker = new PacketLengthTracker(maxRemainingLength);
  const read = socket.read.bind(socket);
  socket.read = (size?: number) => {
    const chunk = read(size) as Buffer | string | null;
    if (chunk === null || socket.destroyed) return chunk;
    const verdict = tracker.feed(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    if (!verdict) return chunk;
    onRefused(verdict);
    socket.destroy();
    return null;
  };
}
