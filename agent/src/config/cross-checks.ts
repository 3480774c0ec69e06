/**
 * What the schema cannot say about one field alone: ids that must be unique, ranges whose two ends
 * must be in order, fields that only make sense together. Each problem is a ConfigIssue naming the
 * field and the fix; check-config lists them all, and `run` refuses the config (it started with two
 * cameras reporting as "cam0", or failed later on a duplicate rule id). A rule whose shape can never
 * fire (fractions for pixels, a zone off the picture: rule-geometry.ts) is refused the same way.
 */
import type { ConfigIssue } from '../util/errors.js';
import type { AgentConfig } from './schema.js';
import { configuredFrameSize, ruleShapeProblem } from './rule-geometry.js';
import { rtspUrlProblem } from '../capture/pipelines.js';

export function crossFieldIssues(cfg: AgentConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (path: string, expected: string, received: unknown): void => {
    issues.push({ path, expected, received: received === undefined ? 'nothing' : JSON.stringify(received) });
  };
  const cameraIds = new Map<string, number>();
  cfg.cameras.forEach((cam, i) => {
    const src = cam.source;
    const at = `/cameras/${i}`;
    const first = cameraIds.get(src.id);
    if (first !== undefined) add(`${at}/source/id`, `a camera id unique in the config (camera ${first} is also "${src.id}"; give each source an "id")`, src.id);
    else cameraIds.set(src.id, i);
    const size = src as { width?: number; height?: number };
    if ((size.width === undefined) !== (size.height === undefined)) {
      add(`${at}/source/${size.width === undefined ? 'width' : 'height'}`, 'width and height together (one alone is ignored)', undefined);
    }
    const urlProblem = src.kind === 'rtsp' ? rtspUrlProblem(src.url) : undefined;
    // Not the URL itself: it holds the password.
    if (urlProblem) issues.push({ path: `${at}/source/url`, expected: urlProblem, received: '(not shown: it holds a password)' });
    if (src.kind === 'rtsp' && src.password !== undefined && src.passwordFile !== undefined) {
      add(`${at}/source/passwordFile`, 'password or passwordFile, not both (which one is the camera\'s?)', src.passwordFile);
    }
    if (src.reconnect.initialDelayMs > src.reconnect.maxDelayMs) {
      add(`${at}/source/reconnect/initialDelayMs`, `at most maxDelayMs (${src.reconnect.maxDelayMs})`, src.reconnect.initialDelayMs);
    }
    const frame = configuredFrameSize(src);
    const ruleIds = new Map<string, number>();
    cam.rules.rules.forEach((r, j) => {
      const seen = ruleIds.get(r.id);
      if (seen !== undefined) add(`${at}/rules/rules/${j}/id`, `a rule id unique per camera (rule ${seen} is also "${r.id}")`, r.id);
      else ruleIds.set(r.id, j);
      if (r.type === 'line' && r.from.x === r.to.x && r.from.y === r.to.y) add(`${at}/rules/rules/${j}/to`, 'a point other than "from" (a line of length 0 is never crossed)', r.to);
      else if (r.type !== 'line' && new Set(r.polygon.map((p) => `${p.x},${p.y}`)).size < 3) {
        add(`${at}/rules/rules/${j}/polygon`, 'at least 3 distinct points (an area)', r.polygon);
      } else {
        const shape = ruleShapeProblem(r, frame);
        if (shape) add(`${at}/rules/rules/${j}/${shape.field}`, shape.expected, r.type === 'line' ? r.from : r.polygon);
      }
    });
  });
  const s = cfg.schedule;
  if (s.minInterval > s.maxInterval) add('/schedule/minInterval', `at most maxInterval (${s.maxInterval})`, s.minInterval);
  const t = cfg.tracker;
  if (t.lowScore > t.highScore) add('/tracker/lowScore', `at most highScore (${t.highScore})`, t.lowScore);
  return issues;
}
