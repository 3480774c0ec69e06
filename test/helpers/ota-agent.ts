/**
 * A test agent for OTA: a real AgentLink, the real OtaManager (store, chunks, verify, swap, health
 * window) and a frame loop that feeds the swappable detector like the camera pipeline does (one
 * frame at a time, awaited). Detectors are real (Detector.open) over the in-process adapter, so
 * many agents fit in one process.
 */
import { join } from 'node:path';
import { Detector } from '../../agent/src/infer/detector.js';
import { OtaManager, type OtaManagerOptions } from '../../agent/src/ota/ota-manager.js';
import type { AgentLink } from '../../agent/src/link/agent-link.js';
import type { TestDevice, TestFleet } from './fleet.js';
import { InProcessOrtAdapter, grayImage } from './ota-models.js';

export interface OtaTestAgent {
  link: AgentLink;
  manager: OtaManager;
  frames: { answered: number; errors: number };
  stop(): Promise<void>;
}

const adapter = new InProcessOrtAdapter();
export const openInProcess = (modelPath: string) => Detector.open({ modelPath, adapter });

export async function startOtaAgent(fleet: TestFleet, dev: TestDevice, o: {
  factoryDir: string; factoryVersion: string; stateDir?: string; frameIntervalMs?: number;
  /** The picture each frame carries (a gray one when absent), asked anew for each frame. */
  image?: () => ReturnType<typeof grayImage>;
} & Partial<Pick<OtaManagerOptions, 'gate' | 'requestTimeoutMs' | 'maxRetries' | 'atStep' | 'openDetector' | 'onProgress' | 'target' | 'retryDelayMs'>>): Promise<OtaTestAgent> {
  const link = fleet.agentLink(dev);
  const manager = new OtaManager({
    link, stateDir: o.stateDir ?? join(fleet.dir, 'agents', dev.id, 'state'), publicKeyPem: fleet.server.ota.key.publicKeyPem,
    factory: { modelPath: join(o.factoryDir, 'model.onnx'), version: o.factoryVersion },
    openDetector: o.openDetector ?? openInProcess, gate: o.gate, target: o.target, requestTimeoutMs: o.requestTimeoutMs ?? 1000, maxRetries: o.maxRetries, atStep: o.atStep, onProgress: o.onProgress, retryDelayMs: o.retryDelayMs,
    selfTestImage: grayImage(),
  });
  // The manager listens before the link connects, so the retained desired state is not missed.
  const detector = await manager.start();
  link.start();
  await link.waitConnected();
  const frames = { answered: 0, errors: 0 };
  let running = true;
  const gray = grayImage();
  const loop = (async () => {
    while (running) {
      try {
        await detector.detectTimed(o.image?.() ?? gray);
        frames.answered += 1;
      } catch {
        frames.errors += 1;
      }
      await new Promise((r) => setTimeout(r, o.frameIntervalMs ?? 20));
    }
  })();
  return {
    link, manager, frames,
    async stop() {
      running = false;
      await loop;
      await manager.stop();
      await link.stop();
    },
  };
}
