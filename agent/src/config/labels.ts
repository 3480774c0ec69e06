/**
 * Class names in the config (detector.labels, each rule's classes) against the labels the model
 * gives its detections (its metadata). A name the model does not have matches nothing: a typo in
 * detector.labels kept no detection at all, one in a rule's classes silenced the rule, and the
 * config was reported valid (the example config with "persn": 30 frames, 0 alerts, no warning).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, describeError, type ConfigIssue } from '../util/errors.js';
import { loadModelMetadata, metadataPathFor, type ModelMetadata } from '../model/metadata.js';
import type { AgentConfig } from './schema.js';

/** The labels a config's names are checked against, and where they come from (for the message). */
export interface KnownLabels {
  labels: ReadonlySet<string>;
  /** E.g. `the model coco-centernet 1.0.0`. */
  source: string;
  /** Where an operator finds the full list. */
  listedIn: string;
}

/**
 * The labels of the configured model (its .meta.json), and with `ota` also those of every version
 * installed over the air, any of which the agent may run at start (ArtifactStore's layout:
 * `<stateDir>/models/detector/versions/<v>/model.meta.json`): a class that only a newer installed
 * model has is not refused. No labels when the configured model's metadata file is missing (check-config
 * names the missing file). A metadata file that is there but does not load (not JSON, not valid
 * metadata) is an issue at /detector/model naming the file: the class names could not be checked, and
 * check-config passed such a config while the agent then failed to load the model.
 */
export async function knownLabels(cfg: AgentConfig): Promise<{ known?: KnownLabels; issues: ConfigIssue[] }> {
  const metaPath = metadataPathFor(cfg.detector.model);
  if (!existsSync(metaPath)) return { issues: [] };
  let meta: ModelMetadata;
  try {
    meta = await loadModelMetadata(cfg.detector.model);
  } catch (err) {
    return { issues: [{ path: '/detector/model', expected: `model metadata that loads in ${metaPath} (the labels the config's class names are checked against)`, received: brokenMetadata(err) }] };
  }
  const labels = new Set(meta.labels);
  let installed = 0;
  if (cfg.ota) {
    const versions = join(cfg.stateDir, 'models', 'detector', 'versions');
    const dirs = existsSync(versions) ? readdirSync(versions).filter((d) => !d.startsWith('.')) : [];
    for (const dir of dirs) {
      const other = await loadModelMetadata(join(versions, dir, 'model.onnx')).catch(() => undefined);
      if (!other) continue;
      installed++;
      for (const l of other.labels) labels.add(l);
    }
  }
  const more = installed === 0 ? '' : installed === 1 ? ' or the version installed over the air' : ` or one of the ${installed} versions installed over the air`;
  return { known: { labels, source: `the model ${meta.name} ${meta.version}${more}`, listedIn: metaPath }, issues: [] };
}

/** What is wrong with a metadata file, on one line: the syntax error with its line and column, or each invalid field. */
function brokenMetadata(err: unknown): string {
  if (err instanceof ConfigError && err.issues.length) {
    return `${err.issues.map((i) => `${i.path || '/'} expected ${i.expected} but received ${i.received}`).join('; ')}`;
  }
  return describeError(err).message.split('\n')[0];
}

/** Every name in detector.labels and in the rules' classes that `known` does not have, at its field. */
export function unknownLabelIssues(cfg: Pick<AgentConfig, 'detector' | 'cameras'>, known: KnownLabels): ConfigIssue[] {
  if (known.labels.size === 0) return [];
  const issues: ConfigIssue[] = [];
  const check = (path: string, name: string) => {
    if (known.labels.has(name)) return;
    const near = nearMatches(name, [...known.labels]);
    const hint = near.length
      ? `did you mean ${near.map((n) => JSON.stringify(n)).join(' or ')}?`
      : known.labels.size <= 12 ? `it has ${[...known.labels].map((n) => JSON.stringify(n)).join(', ')}` : `its ${known.labels.size} labels are listed in ${known.listedIn}`;
    issues.push({ path, expected: `a label of ${known.source} (${hint})`, received: JSON.stringify(name) });
  };
  cfg.detector.labels.forEach((name, i) => check(`/detector/labels/${i}`, name));
  cfg.cameras.forEach((cam, c) => cam.rules.rules.forEach((rule, r) => {
    (rule.classes ?? []).forEach((name, k) => check(`/cameras/${c}/rules/rules/${r}/classes/${k}`, name));
  }));
  return issues;
}

/**
 * Rule classes that detector.labels drops: that filter runs before tracking, so a rule for "car"
 * with detector.labels ["person"] never sees a car. A name the model does not have at all is left
 * to unknownLabelIssues (`known`), so a typo is reported once.
 */
export function droppedClassIssues(cfg: Pick<AgentConfig, 'detector' | 'cameras'>, known: KnownLabels | undefined): ConfigIssue[] {
  const kept = new Set(cfg.detector.labels);
  if (kept.size === 0) return [];
  const issues: ConfigIssue[] = [];
  cfg.cameras.forEach((cam, c) => cam.rules.rules.forEach((rule, r) => {
    (rule.classes ?? []).forEach((name, k) => {
      if (kept.has(name) || (known && known.labels.size > 0 && !known.labels.has(name))) return;
      issues.push({
        path: `/cameras/${c}/rules/rules/${r}/classes/${k}`,
        expected: `a class that detector.labels keeps (${[...kept].map((n) => JSON.stringify(n)).join(', ')}): detections of any other label are dropped before the rules; add ${JSON.stringify(name)} to detector.labels`,
        received: JSON.stringify(name),
      });
    });
  }));
  return issues;
}

/**
 * Labels close to `name`, closest first (at most 3): the same but for case, spaces, hyphens or
 * underscores; within 1 edit (names up to 4 characters) or 2 edits (longer), a swap of two
 * neighbouring letters counting as one; or one name a word of the other ("phone", "cell phone").
 * When a label differs only by case or separators, only such labels are given.
 */
export function nearMatches(name: string, labels: readonly string[]): string[] {
  const norm = (s: string) => s.toLowerCase().replace(/[\s_-]+/g, ' ').trim();
  const n = norm(name);
  const limit = n.length <= 4 ? 1 : 2;
  const words = (s: string) => s.split(' ');
  const near = labels
    .map((label, order) => {
      const l = norm(label);
      const d = editDistance(n, l);
      const contains = words(l).includes(n) || words(n).includes(l);
      return { label, order, d, ok: d <= limit || contains };
    })
    .filter((c) => c.ok)
    .sort((a, b) => a.d - b.d || a.order - b.order);
  // The same name but for case or separators is the one meant.
  return near.filter((c) => near[0].d > 0 || c.d === 0).slice(0, 3).map((c) => c.label);
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
