/**
 * Engine-build progress on a diagnostics channel (node:diagnostics_channel): whoever waits for a model
 * to load can say what is happening and ask for more time, without the adapter knowing who listens.
 * The agent's systemd start-up does (agent/src/service/startup-keepalive.ts): a first start on a
 * Jetson builds the engine with trtexec for minutes, far past the unit's TimeoutStartSec.
 * Publishing with no subscriber costs nothing.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

export type EngineBuildEvent =
  | { kind: 'start'; modelPath: string; precision: string; timeoutMs: number }
  | { kind: 'end'; modelPath: string; precision: string; durationMs: number; ok: boolean };

export const ENGINE_BUILD_CHANNEL = 'edge-fleet:tensorrt:engine-build';

// Held here so the channel object lives as long as the module (subscribers are kept by name anyway).
const channel = diagnosticsChannel.channel(ENGINE_BUILD_CHANNEL);

export function publishEngineBuild(event: EngineBuildEvent): void {
  if (channel.hasSubscribers) channel.publish(event);
}

/** Calls `fn` for every build start and end until the returned function is called. */
export function subscribeEngineBuild(fn: (event: EngineBuildEvent) => void): () => void {
  const handler = (message: unknown): void => fn(message as EngineBuildEvent);
  diagnosticsChannel.subscribe(ENGINE_BUILD_CHANNEL, handler);
  return () => { diagnosticsChannel.unsubscribe(ENGINE_BUILD_CHANNEL, handler); };
}
