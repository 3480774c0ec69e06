/** What the vtest.avi tests with the default COCO detector need, and why they skip without it. */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Detector } from '../../agent/src/infer/detector.js';

export const COCO_MODEL = 'assets/models/coco-centernet/model.onnx';
export const VTEST = 'assets/video/vtest.avi';

/** Why a vtest test cannot run here, or undefined when it can. */
export function vtestMissing(): string | undefined {
  if (!existsSync(VTEST)) return `${VTEST} is absent (run scripts/setup.sh)`;
  if (!existsSync(COCO_MODEL) || !existsSync(COCO_MODEL.replace(/\.onnx$/, '.meta.json'))) return `default COCO detector ${COCO_MODEL} (+ model.meta.json) is absent: scripts/setup.sh imports it from TF.js`;
  if (spawnSync('gst-launch-1.0', ['--version']).status !== 0) return 'gst-launch-1.0 is not installed (gstreamer1.0-tools)';
  return undefined;
}

export function openCocoDetector(): Promise<Detector> {
  return Detector.open({ modelPath: COCO_MODEL });
}
