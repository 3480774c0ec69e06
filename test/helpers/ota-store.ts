import { createHash, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { ArtifactStore } from '../../agent/src/ota/artifact-store.js';
import { signManifest, type Manifest } from '../../agent/src/protocol/manifest.js';

/** The manifest of stand-in model `version`, whose bytes are the text `model <version>`. */
export function standInManifest(version: string): Manifest {
  const bytes = `model ${version}`;
  return {
    name: 'standin', version, target: 'onnx-cpu', precision: 'fp32', sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length,
    inputs: [], outputs: [], preprocess: {}, decoder: {}, labels: [], metrics: {}, createdAt: '2026-01-01T00:00:00Z',
  };
}

/** Puts stand-in `version` into the store as a download would (staged, not committed), signed with `privateKey`. */
export function stageStandIn(store: ArtifactStore, version: string, privateKey: KeyObject): void {
  const m = standInManifest(version);
  writeFileSync(store.partPath(m), `model ${version}`);
  store.stage({ partPath: store.partPath(m), manifest: m, signature: signManifest(m, privateKey), meta: { name: 'standin' } });
}
