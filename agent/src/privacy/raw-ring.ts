/**
 * The only way a raw (unredacted) frame may touch disk: an explicit, off-by-default local ring for
 * debugging, bounded to `maxFrames` files (the oldest is deleted first). The privacy stage saves
 * each image submitted to its gate (the unredacted original of every snapshot, released or
 * withheld), so that an operator on the box can see what the gate was given. When disabled,
 * `save()` writes nothing and counts the frame it refused. Files are PNG (lossless) named by pts
 * and camera, mode 0600.
 */
import { mkdir, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { RgbImage } from '../types.js';
import type { RawRingSpec } from './schema.js';

export interface RawRingFs {
  mkdir(path: string): Promise<unknown>;
  readdir(path: string): Promise<string[]>;
  writeFile(path: string, data: Buffer, mode: number): Promise<void>;
  unlink(path: string): Promise<void>;
}

const nodeFs: RawRingFs = {
  mkdir: (p) => mkdir(p, { recursive: true, mode: 0o700 }),
  readdir: (p) => readdir(p),
  writeFile: (p, d, mode) => writeFile(p, d, { mode }),
  unlink: (p) => unlink(p),
};

export class RawFrameRing {
  private written: string[] | undefined;
  private refused = 0;
  private saved = 0;
  private evicted = 0;

  constructor(private readonly spec: RawRingSpec, private readonly fs: RawRingFs = nodeFs) {}

  get enabled(): boolean {
    return this.spec.enabled;
  }

  /**
   * Saves the frame when the ring is enabled; returns the file written, or undefined. Named by pts,
   * then camera (two cameras at one frame rate share their pts sequence).
   */
  async save(frame: RgbImage & { ptsNs: number; sourceId?: string }): Promise<string | undefined> {
    if (!this.spec.enabled) { this.refused++; return undefined; }
    if (!this.written) {
      await this.fs.mkdir(this.spec.dir);
      this.written = (await this.fs.readdir(this.spec.dir)).filter((f) => /^raw-\d+(-[\w.-]+)?\.png$/.test(f)).sort();
    }
    const camera = frame.sourceId ? `-${frame.sourceId.replace(/[^\w.-]/g, '_')}` : '';
    const name = `raw-${String(Math.max(0, Math.round(frame.ptsNs))).padStart(20, '0')}${camera}.png`;
    // The same frame saved again replaces its file; it is not counted twice against maxFrames.
    this.written = this.written.filter((f) => f !== name);
    const png = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 3 } }).png().toBuffer();
    await this.fs.writeFile(join(this.spec.dir, name), png, 0o600);
    this.written.push(name);
    this.saved++;
    while (this.written.length > this.spec.maxFrames) {
      const old = this.written.shift() as string;
      await this.fs.unlink(join(this.spec.dir, old));
      this.evicted++;
    }
    return join(this.spec.dir, name);
  }

  stats(): { saved: number; refused: number; evicted: number } {
    return { saved: this.saved, refused: this.refused, evicted: this.evicted };
  }
}
