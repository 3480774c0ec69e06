/** The MQTT protocol shared by the agent and the fleet server: topics, payload schemas, codec. */
export * from './topics.js';
export * from './payloads.js';
export * from './codec.js';
export * from './manifest.js';
export * from './ota.js';
