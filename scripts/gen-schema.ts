/**
 * Writes configs/schema/agent.schema.json from the TypeBox schema (the single source). A unit test
 * fails when the committed file is out of date.
 */
import { writeFileSync } from 'node:fs';
import { AgentConfig } from '../agent/src/config/schema.js';

export function agentJsonSchema(): string {
  return `${JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...JSON.parse(JSON.stringify(AgentConfig)) }, null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync('configs/schema/agent.schema.json', agentJsonSchema());
  process.stderr.write('wrote configs/schema/agent.schema.json\n');
}
