/**
 * Writes configs/schema/agent.schema.json from the TypeBox schema (the single source). A unit test
 * fails when the committed file is out of date.
 *
 * TypeBox lists every non-Optional property as `required`, also those the agent fills in: a field
 * with a `default`, and a section whose own fields all have one (util/schema.ts withSectionDefaults).
 * Written that way, the file refused configs/agent.example.json in any editor or linter that reads
 * it without applying defaults; here only what a config must really give stays required.
 */
import { writeFileSync } from 'node:fs';
import { AgentConfig } from '../agent/src/config/schema.js';
import { withSectionDefaults } from '../agent/src/util/schema.js';

type Node = Record<string, unknown>;

/** Drops from `required` in `out` every property that `filled` (the same schema with section defaults) gives a default. */
function dropDefaulted(out: Node, filled: Node): void {
  for (const key of ['oneOf', 'anyOf', 'allOf'] as const) {
    const branches = out[key];
    if (Array.isArray(branches)) branches.forEach((b, i) => dropDefaulted(b as Node, (filled[key] as Node[])[i]));
  }
  if (out.items && typeof out.items === 'object') dropDefaulted(out.items as Node, filled.items as Node);
  const props = out.properties as Record<string, Node> | undefined;
  if (!props) return;
  const filledProps = filled.properties as Record<string, Node>;
  for (const [name, prop] of Object.entries(props)) dropDefaulted(prop, filledProps[name]);
  if (Array.isArray(out.required)) {
    const required = (out.required as string[]).filter((name) => !(filledProps[name] && 'default' in filledProps[name]));
    if (required.length) out.required = required;
    else delete out.required;
  }
}

export function agentJsonSchema(): string {
  const schema = JSON.parse(JSON.stringify(AgentConfig)) as Node;
  dropDefaulted(schema, withSectionDefaults(schema));
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...schema }, null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync('configs/schema/agent.schema.json', agentJsonSchema());
  process.stderr.write('wrote configs/schema/agent.schema.json\n');
}
