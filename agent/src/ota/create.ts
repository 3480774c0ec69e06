/**
 * Builds the OTA manager for a running agent from its config. Call `start()` on the result BEFORE
 * `link.start()` (the retained desired state arrives right after connecting) and hand the returned
 * SwappableDetector to AgentRunner (`detector`), so model swaps happen between frames.
 */
import { readFileSync } from 'node:fs';
import { Detector } from '../infer/detector.js';
import { loadModelMetadata } from '../model/metadata.js';
import type { AgentLink } from '../link/agent-link.js';
import type { DetectorConfig } from '../config/schema.js';
import { OtaManager } from './ota-manager.js';
import type { OtaConfig } from './schema.js';

export async function createOtaManager(o: { ota: OtaConfig; detector: DetectorConfig; stateDir: string; link: AgentLink }): Promise<OtaManager> {
  const factoryVersion = o.ota.factoryVersion ?? (await loadModelMetadata(o.detector.model)).version;
  return new OtaManager({
    link: o.link,
    stateDir: o.stateDir,
    publicKeyPem: readFileSync(o.ota.publicKeyFile, 'utf8'),
    publicKeyFile: o.ota.publicKeyFile,
    target: o.ota.target,
    factory: { modelPath: o.detector.model, version: factoryVersion },
    gate: o.ota.health,
    keepVersions: o.ota.keepVersions,
    openDetector: (modelPath, { signal } = {}) => Detector.open({
      modelPath, providers: o.detector.providers, intraOpThreads: o.detector.threads, scoreThreshold: o.detector.scoreThreshold,
      runTimeoutMs: o.detector.runTimeoutMs, signal,
    }),
    loadTimeoutMs: o.detector.loadTimeoutMs,
  });
}
