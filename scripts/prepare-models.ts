/**
 * Puts the default models in place under assets/models with their metadata files
 * (configs/models/NAME.meta.json → assets/models/NAME/model.meta.json). The COCO detector is imported
 * from the TF.js CenterNet (assets/tfjs/centernet) when its ONNX file is missing or was written by
 * another importer version (stamp file next to it). Fast when already done.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importModel } from '../fleet-server/src/convert/import-model.js';
import { TFJS_IMPORTER_VERSION } from '../fleet-server/src/convert/tfjs/convert.js';

const IMPORTS = [
  { name: 'coco-centernet', from: 'assets/tfjs/centernet/model.json' },
];

for (const imp of IMPORTS) {
  const dir = join('assets/models', imp.name);
  const out = join(dir, 'model.onnx');
  const stampFile = join(dir, 'import.stamp');
  const stamp = `tfjs-importer ${TFJS_IMPORTER_VERSION} ${imp.from}`;
  if (existsSync(out) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) continue;
  if (!existsSync(imp.from)) {
    console.error(`prepare-models: ${imp.from} is missing; skipping ${imp.name} (fetch the sample assets first)`);
    continue;
  }
  const metadata: unknown = JSON.parse(readFileSync(join('configs/models', `${imp.name}.meta.json`), 'utf8'));
  const r = await importModel({ from: 'tfjs', inputPath: imp.from, outputPath: out, metadata });
  writeFileSync(stampFile, stamp);
  console.log(`prepare-models: imported ${imp.from} → ${r.output} (${r.stats?.onnxNodes ?? 0} ONNX nodes)`);
}

for (const file of readdirSync('configs/models').filter((f) => f.endsWith('.meta.json'))) {
  const name = file.replace(/\.meta\.json$/, '');
  const dir = join('assets/models', name);
  const target = join(dir, 'model.meta.json');
  if (!existsSync(join(dir, 'model.onnx'))) continue;
  const src = join('configs/models', file);
  if (existsSync(target) && readFileSync(target, 'utf8') === readFileSync(src, 'utf8')) continue;
  copyFileSync(src, target);
}
