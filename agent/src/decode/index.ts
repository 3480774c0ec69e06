/**
 * The one place that turns a decoder description from a model's metadata into a decoder function.
 * The decoder is chosen by `spec.type`, never guessed from the model's file name.
 */
import type { DecoderSpec } from './spec.js';
import type { Decoder } from './types.js';
import { createYoloDecoder } from './yolo.js';
import { createCenterNetDecoder, createCenterNetHeadsDecoder } from './centernet.js';
import { createBlazeFaceDecoder } from './blazeface.js';
import { createDbDecoder } from './db.js';
import { ModelError } from '../util/errors.js';

export function createDecoder(spec: DecoderSpec): Decoder {
  switch (spec.type) {
    case 'yolo': return createYoloDecoder(spec);
    case 'centernet': return createCenterNetDecoder(spec);
    case 'centernet-heads': return createCenterNetHeadsDecoder(spec);
    case 'blazeface': return createBlazeFaceDecoder(spec);
    case 'db': return createDbDecoder(spec);
    default: {
      const never: never = spec;
      throw new ModelError(`Expected decoder.type to be one of yolo, centernet, centernet-heads, blazeface, db but received ${JSON.stringify((never as { type?: unknown }).type)}`);
    }
  }
}

export type { Decoder, DecodeContext, OutputMap, OutputTensor } from './types.js';
export { nms, iou } from './nms.js';
