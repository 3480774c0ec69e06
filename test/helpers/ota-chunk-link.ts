import { deviceRoot } from '../../agent/src/protocol/index.js';
import { otaTopics, type OtaReport, type OtaRequest } from '../../agent/src/protocol/ota.js';
import { fakeOtaLink } from './ota-fakes.js';

/**
 * fakeOtaLink that also answers the agent's chunk requests, as the fleet server's chunk server would,
 * with the bytes of stand-in model `version` (the text `model <version>`, as standInManifest describes).
 */
export function chunkServingLink(reports: OtaReport[]): ReturnType<typeof fakeOtaLink> {
  const link = fakeOtaLink(reports);
  return Object.assign(link, {
    publishRaw: (_topic: string, payload: string) => {
      const req = JSON.parse(payload) as OtaRequest;
      const bytes = Buffer.from(`model ${req.version}`);
      const data = bytes.subarray(req.offset, req.offset + req.length);
      const chunk = { v: 1, reqId: req.reqId, offset: req.offset, total: bytes.length, dataBase64: data.toString('base64'), eof: req.offset + data.length >= bytes.length };
      setImmediate(() => link.emit('ota', { topic: otaTopics.chunk(deviceRoot(link.deviceId)), payload: Buffer.from(JSON.stringify(chunk)) }));
      return true;
    },
  });
}
