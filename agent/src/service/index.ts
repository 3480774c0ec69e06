/** The agent's systemd face: sd_notify (READY/WATCHDOG/STOPPING/RELOADING) and signal-driven lifecycle. */
export { ServiceNotifier, watchdogUsecFromEnv, type NotifierStats, type NotifierTimers, type ServiceNotifierOptions } from './notifier.js';
export { ServiceLifecycle, type ShutdownHandler, type ReloadHandler, type ShutdownReason, type ShutdownResult, type SignalSource } from './lifecycle.js';
export { createNotifyTransport, NotifyError, type NotifyTransport } from './notify-transport.js';
export { ConfigReloader, planReload, restartPointers, changedPointers, type ReloadPlan } from './config-reload.js';
export { AgentService, type AgentServiceOptions } from './agent-service.js';
