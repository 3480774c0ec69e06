/**
 * Puts the default models in place under assets/models with their metadata files
 * (configs/models/NAME.meta.json → assets/models/NAME/model.meta.json). Fast when already done.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

for (const file of readdirSync('configs/models').filter((f) => f.endsWith('.meta.json'))) {
  const name = file.replace(/\.meta\.json$/, '');
  const dir = join('assets/models', name);
  const target = join(dir, 'model.meta.json');
  if (!existsSync(join(dir, 'model.onnx'))) continue;
  const src = join('configs/models', file);
  if (existsSync(target) && readFileSync(target, 'utf8') === readFileSync(src, 'utf8')) continue;
  copyFileSync(src, target);
}
