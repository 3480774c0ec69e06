/**
 * Puts the default models in place under assets/models with their metadata files
 * (configs/models/NAME.meta.json → assets/models/NAME/model.meta.json). The COCO detector is imported
 * from the TF.js CenterNet (assets/tfjs/centernet) when its ONNX file is missing or was written by
 * another importer version (stamp file next to it). Fast when already done: the converter (most of
 * a second of module loading) is imported only when there is something to import.
 */
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const IMPORTS = [
  { name: 'coco-centernet', from: 'assets/tfjs/centernet/model.json' },
];

const CONVERTER = new URL('../fleet-server/src/convert/tfjs/convert.ts', import.meta.url);

/**
 * TFJS_IMPORTER_VERSION without loading the converter: read from its line in the source, or from
 * the module when that line is not found (a test checks that both agree).
 */
export async function importerVersion(): Promise<string> {
  const line = /^export const TFJS_IMPORTER_VERSION = '([^']+)';$/m.exec(readFileSync(CONVERTER, 'utf8'));
  if (line) return line[1];
  return (await import('../fleet-server/src/convert/tfjs/convert.js')).TFJS_IMPORTER_VERSION;
}

async function main(): Promise<void> {
  const version = await importerVersion();
  for (const imp of IMPORTS) {
    const dir = join('assets/models', imp.name);
    const out = join(dir, 'model.onnx');
    const stampFile = join(dir, 'import.stamp');
    const stamp = `tfjs-importer ${version} ${imp.from}`;
    if (existsSync(out) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) continue;
    if (!existsSync(imp.from)) {
      console.error(`prepare-models: ${imp.from} is missing; skipping ${imp.name} (fetch the sample assets first)`);
      continue;
    }
    const { importModel } = await import('../fleet-server/src/convert/import-model.js');
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
}

if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) await main();
