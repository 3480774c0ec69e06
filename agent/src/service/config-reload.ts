/**
 * Live config reload: which changed fields can be applied to the running agent and which need a
 * restart. The schema is the single source of that knowledge: a property marked `"x-restart": true`
 * (agent/src/config/schema.ts) needs a restart, together with everything below it; every other
 * field reloads live. A reload is triggered by SIGHUP (`systemctl reload edge-agent`) or by a
 * config revision pushed in the desired state; both go through `ConfigReloader.apply`.
 */
import { moduleLogger, type Logger } from '../util/log.js';
import type { ServiceNotifier } from './notifier.js';

type JsonSchema = Record<string, unknown>;

/** JSON pointers (with `*` for array items) of every property marked `x-restart`. */
export function restartPointers(schema: unknown, at = ''): string[] {
  if (schema === null || typeof schema !== 'object') return [];
  const s = schema as JsonSchema;
  const out: string[] = [];
  if (s['x-restart'] === true && at !== '') return [at];
  const props = s.properties as Record<string, unknown> | undefined;
  if (props) for (const [k, v] of Object.entries(props)) out.push(...restartPointers(v, `${at}/${escapePointer(k)}`));
  if (s.items) out.push(...restartPointers(s.items, `${at}/*`));
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const branches = s[key];
    if (Array.isArray(branches)) for (const b of branches) out.push(...restartPointers(b, at));
  }
  return [...new Set(out)];
}

/** Pointers of the leaves that differ between two JSON values (added, removed or changed). */
export function changedPointers(a: unknown, b: unknown, at = ''): string[] {
  if (Object.is(a, b)) return [];
  const bothObjects = a !== null && b !== null && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b);
  if (!bothObjects) return [at || '/'];
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  const out: string[] = [];
  for (const k of keys) out.push(...changedPointers(ao[k], bo[k], `${at}/${escapePointer(k)}`));
  return out;
}

export interface ReloadPlan {
  /** Every changed leaf. */
  changed: string[];
  /** Changed leaves that the running agent takes without a restart. */
  live: string[];
  /** Changed leaves under an `x-restart` field: reported, not applied, until the next restart. */
  restartRequired: string[];
}

export function planReload(schema: unknown, current: unknown, next: unknown): ReloadPlan {
  const restart = restartPointers(schema).map((p) => p.split('/'));
  const changed = changedPointers(current, next);
  const needsRestart = (pointer: string): boolean => {
    const segs = pointer.split('/');
    return restart.some((r) => r.length <= segs.length && r.every((seg, i) => seg === '*' || seg === segs[i]));
  };
  const restartRequired = changed.filter(needsRestart);
  return { changed, live: changed.filter((p) => !needsRestart(p)), restartRequired };
}

export interface ConfigReloaderOptions<C> {
  schema: unknown;
  /** The config in force now. */
  current: C;
  /** Applies the live part: called with the new config and the plan; throws to refuse. */
  applyLive: (next: C, plan: ReloadPlan) => Promise<void> | void;
  notifier?: ServiceNotifier;
  log?: Logger;
}

export class ConfigReloader<C> {
  private current: C;
  private readonly opts: ConfigReloaderOptions<C>;
  private readonly log: Logger;
  /** Fields changed on disk or by the server that wait for a restart. */
  pendingRestart: string[] = [];

  constructor(opts: ConfigReloaderOptions<C>) {
    this.opts = opts;
    this.current = opts.current;
    this.log = opts.log ?? moduleLogger('config');
  }

  get config(): C {
    return this.current;
  }

  /**
   * Takes an already validated config (from the file on SIGHUP, or a pushed revision). Applies the
   * live fields; restart-only fields keep their running values and are reported.
   */
  async apply(next: C, source: string): Promise<ReloadPlan> {
    const plan = planReload(this.opts.schema, this.current, next);
    if (plan.changed.length === 0) {
      this.log.info({ source }, 'config reload: nothing changed');
      return plan;
    }
    if (plan.live.length > 0) await this.opts.applyLive(next, plan);
    // Restart-only fields keep their running values: the running config is "next" with those
    // pointers restored from "current", so a later diff still sees them as pending.
    this.current = plan.restartRequired.length === 0 ? next : mergeRestartFields(this.current, next, plan.restartRequired);
    this.pendingRestart = plan.restartRequired;
    this.log.info({ source, live: plan.live, restartRequired: plan.restartRequired }, 'config reloaded');
    if (plan.restartRequired.length > 0) {
      await this.opts.notifier?.status(`config: ${plan.live.length} field(s) applied; restart needed for ${plan.restartRequired.slice(0, 5).join(', ')}${plan.restartRequired.length > 5 ? ', ...' : ''}`);
    }
    return plan;
  }
}

/** `next` with the values at `pointers` taken from `current` (deep copies). */
function mergeRestartFields<C>(current: C, next: C, pointers: string[]): C {
  const out = structuredClone(next) as Record<string, unknown>;
  for (const p of pointers) {
    const segs = p.split('/').slice(1).map(unescapePointer);
    let src: unknown = current;
    for (const s of segs) src = src === undefined || src === null ? undefined : (src as Record<string, unknown>)[s];
    let dst: Record<string, unknown> = out;
    for (const s of segs.slice(0, -1)) {
      dst[s] ??= {};
      dst = dst[s] as Record<string, unknown>;
    }
    const last = segs.at(-1);
    if (last === undefined) continue;
    if (src === undefined) delete dst[last];
    else dst[last] = structuredClone(src);
  }
  return out as C;
}

function escapePointer(k: string): string {
  return k.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(k: string): string {
  return k.replace(/~1/g, '/').replace(/~0/g, '~');
}
