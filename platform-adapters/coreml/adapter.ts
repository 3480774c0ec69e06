/**
 * Core ML adapter placeholder for Node: Core ML runs only on Apple platforms (iOS/macOS), where the
 * app's native bridge (docs/ios-bridge.md) owns the MLModel. Off Apple this adapter probes as
 * unavailable with the reason, and the exported `.mlmodel` files are verified by the protobuf
 * round trip and the reference evaluator in fleet-server/src/export/coreml instead.
 */
import type { AdapterCapabilities, AdapterSession, CreateSessionOptions, PlatformAdapter, ProbeResult } from '../contract.js';
import { ModelError } from '../../agent/src/util/errors.js';

export class CoreMlAdapter implements PlatformAdapter {
  readonly name = 'coreml';

  constructor(private readonly platform: NodeJS.Platform = process.platform) {}

  async probe(): Promise<ProbeResult> {
    if (this.platform !== 'darwin') {
      return { available: false, reason: `Core ML runs only on Apple platforms (this is ${this.platform}); on iOS the app runs .mlmodel files through the bridge in docs/ios-bridge.md` };
    }
    return { available: false, reason: 'no Core ML binding for Node is bundled; on macOS/iOS run the .mlmodel through the native bridge (docs/ios-bridge.md)' };
  }

  capabilities(): AdapterCapabilities {
    return { providers: ['coreml'], precisions: ['fp32', 'fp16', 'int8'], formats: ['mlmodel'] };
  }

  async createSession(opts: CreateSessionOptions): Promise<AdapterSession> {
    const p = await this.probe();
    throw new ModelError(`Cannot open ${opts.modelPath} with Core ML: ${p.reason}`);
  }
}
