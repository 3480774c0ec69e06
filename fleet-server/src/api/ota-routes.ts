/**
 * HTTP routes for models and rollouts (operator token required, like every route but health/login):
 *
 *   GET  /api/models                       versions with their targets
 *   GET  /api/models/:name/:version        artifacts with manifests and signatures
 *   GET  /api/keys/signing.pub             the public key agents pin (PEM)
 *   GET  /api/rollouts[?deviceId=]         all rollouts (oldest first), or those that include a device
 *   POST /api/rollouts                     create (idempotent: 201 new, 200 existing)
 *   GET  /api/rollouts/:id                 status with per-device figures
 *   POST /api/rollouts/:id/{pause,resume,abort,rollback}
 *   PUT  /api/devices/:id/groups           {groups: [...]} for `--target group:G`
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { DEVICE_ID_PATTERN } from '../../../agent/src/protocol/index.js';
import { EdgeFleetError } from '../../../agent/src/util/errors.js';
import type { OtaService } from '../ota/ota-service.js';

const RolloutParams = Type.Object({ id: Type.String({ pattern: '^ro-[0-9a-f]{12}$' }) });
const ActionParams = Type.Object({ id: Type.String({ pattern: '^ro-[0-9a-f]{12}$' }), action: Type.Union([Type.Literal('pause'), Type.Literal('resume'), Type.Literal('abort'), Type.Literal('rollback')]) });
const ModelParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }), version: Type.String({ minLength: 1, maxLength: 64 }) });
const GroupsBody = Type.Object({ groups: Type.Array(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), { maxItems: 32 }) }, { additionalProperties: false });
const DeviceParams = Type.Object({ id: Type.String({ pattern: DEVICE_ID_PATTERN }) });
const RolloutQuery = Type.Object({ deviceId: Type.Optional(Type.String({ pattern: DEVICE_ID_PATTERN })) });

function statusOf(err: unknown): number {
  const code = err instanceof EdgeFleetError ? err.code : '';
  return code === 'E_NOT_FOUND' ? 404 : code === 'E_ROLLOUT_ACTIVE' || code === 'E_STATE' || code === 'E_GATE' ? 409 : 400;
}

export function registerOtaRoutes(app: FastifyInstance, auth: (req: FastifyRequest, reply: FastifyReply) => Promise<void>, ota: OtaService): void {
  const pre = { preHandler: [auth] };
  const guard = async <T>(reply: FastifyReply, fn: () => T) => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof EdgeFleetError)) throw err;
      return reply.code(statusOf(err)).send({ error: { code: err.code, message: err.message } });
    }
  };
  app.get('/api/models', pre, async () => ({ items: ota.registry.list() }));
  app.get<{ Params: Static<typeof ModelParams> }>('/api/models/:name/:version', { ...pre, schema: { params: ModelParams } }, async (req, reply) => {
    const items = ota.registry.artifacts(req.params.name, req.params.version).map(({ path: _p, ...a }) => a);
    if (items.length === 0) return reply.code(404).send({ error: { code: 'E_NOT_FOUND', message: `No model ${req.params.name}@${req.params.version}` } });
    return { items };
  });
  app.get('/api/keys/signing.pub', pre, async (_req, reply) => reply.type('application/x-pem-file').send(ota.key.publicKeyPem));
  app.get<{ Querystring: Static<typeof RolloutQuery> }>('/api/rollouts', { ...pre, schema: { querystring: RolloutQuery } }, async (req) => ({ items: ota.rollouts.list({ deviceId: req.query.deviceId }) }));
  app.post('/api/rollouts', pre, async (req, reply) => guard(reply, () => {
    const r = ota.rollouts.create(req.body);
    return reply.code(r.created ? 201 : 200).send({ created: r.created, rollout: r.rollout });
  }));
  app.get<{ Params: Static<typeof RolloutParams> }>('/api/rollouts/:id', { ...pre, schema: { params: RolloutParams } }, async (req, reply) => guard(reply, () => ota.rollouts.status(req.params.id)));
  app.post<{ Params: Static<typeof ActionParams> }>('/api/rollouts/:id/:action', { ...pre, schema: { params: ActionParams } }, async (req, reply) => guard(reply, () => {
    const e = ota.rollouts;
    const { id, action } = req.params;
    return { rollout: action === 'pause' ? e.pause(id) : action === 'resume' ? e.resume(id) : action === 'abort' ? e.abort(id) : e.rollback(id) };
  }));
  app.put<{ Params: Static<typeof DeviceParams>; Body: Static<typeof GroupsBody> }>('/api/devices/:id/groups', { ...pre, schema: { params: DeviceParams, body: GroupsBody } }, async (req, reply) => {
    // Groups of a device that does not exist (a typo) would sit in the table and catch a later device of that id.
    if (!ota.devices.get(req.params.id)) return reply.code(404).send({ error: { code: 'E_DEVICE_NOT_FOUND', message: `No device ${req.params.id}; add it first (fleetctl device add ${req.params.id}).` } });
    return { id: req.params.id, groups: ota.rolloutStore.setGroups(req.params.id, req.body.groups) };
  });
}
