/**
 * Whether an INT8 TFLite file keeps its float islands (int8.ts: Convs whose worst channel would turn
 * one input step into more than 32 output steps run float, with the producer of their input). The rule
 * was made before the model preparation (prepare.ts) and costs very different amounts per model: on
 * BlazeFace 8 small Convs, +8% of the file, and the worst output 12.2 → 15.2 dB; on the CenterNet 18
 * Convs, 0.35× → 0.62× of the FP32 file (larger than FP16) for 16.3 → 16.7 dB. So it is measured:
 * both files and the FP32 file run in LiteRT.js on a few calibration frames, and the islands stay only
 * where they lift the worst output's SNR by at least `minGainDb`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TfliteAdapter } from '../../../../platform-adapters/tflite/adapter.js';
import type { ModelInput } from '../../../../agent/src/preprocess/preprocess.js';
import { addToSnr, snrDb, type SnrSums } from '../../quantize/snr.js';

export interface IslandChoice {
  keep: boolean;
  /** Worst output SNR against the FP32 file, dB, with and without the islands. */
  worstWithDb: number;
  worstWithoutDb: number;
}

/** Per-output SNR of each candidate file against the reference file, over the frames. */
async function outputSnrs(files: Uint8Array[], frames: readonly ModelInput[], inputName: string): Promise<Array<Map<string, number>>> {
  const dir = mkdtempSync(join(tmpdir(), 'ef-islands-'));
  const sessions = [];
  try {
    for (const [k, bytes] of files.entries()) {
      const path = join(dir, `${k}.tflite`);
      writeFileSync(path, bytes);
      sessions.push(await new TfliteAdapter().createSession({ modelPath: path, warmUp: false }));
    }
    const acc = files.slice(1).map(() => new Map<string, SnrSums>());
    for (const f of frames) {
      // A fresh copy per run: the adapter hands the buffer to its worker (transferred, then detached).
      const feeds = () => ({ [inputName]: { type: 'float32' as const, dims: [...f.dims], data: Float32Array.from(f.data as Float32Array) } });
      const results = [];
      for (const s of sessions) results.push(await s.run(feeds()));
      const [ref, ...rest] = results;
      rest.forEach((r, k) => {
        for (const [name, t] of Object.entries(ref.outputs)) {
          const a = t.data as Float32Array, b = r.outputs[name].data as Float32Array;
          const e = acc[k].get(name) ?? { sig: 0, err: 0 };
          addToSnr(e, a, b);
          acc[k].set(name, e);
        }
      });
    }
    return acc.map((m) => new Map([...m].map(([name, e]) => [name, snrDb(e)])));
  } finally {
    await Promise.all(sessions.map((s) => s.dispose()));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function chooseFloatIslands(o: { fp32: Uint8Array; withIslands: Uint8Array; withoutIslands: Uint8Array; frames: readonly ModelInput[]; inputName: string; minGainDb?: number }): Promise<IslandChoice> {
  const [withI, without] = await outputSnrs([o.fp32, o.withIslands, o.withoutIslands], o.frames, o.inputName);
  const worst = (m: Map<string, number>): number => Math.min(...m.values());
  const worstWithDb = worst(withI), worstWithoutDb = worst(without);
  return { keep: worstWithDb - worstWithoutDb >= (o.minGainDb ?? 1), worstWithDb, worstWithoutDb };
}
