import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { devicePositions, messageLog } from '../context/store.js';
import { readAppKeys } from '../context/secrets.js';
import { rateSettings, systemClock } from '../context/settings.js';
import { getUnacked, type GetUnackedServices } from '../domain/messaging.js';
import { MessageCipher } from '../encryption.js';
import { frameRoute, type FrameHandler, type FrameServices } from '../frame-route.js';
import { getUnackedFrameSchema } from '../protocol.js';

export type GetUnackedRouteServices = GetUnackedServices & FrameServices;

/** Route `getUnacked`: this device's pending messages in seq order; answers `unacked`. */
export const route: Route<GetUnackedRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('getUnacked', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const db = once(() => documentClient(config, scope, env));
    const redis = once(() => redisHelpers(config, scope, env, log));
    const members = given.members ?? membershipStore(config, db());
    return {
      log,
      metrics: given.metrics ?? metricsOf(config, log),
      roster: given.roster ?? memberRoster(config, members),
      members,
      limits: given.limits ?? rateSettings(config),
      clock: given.clock ?? systemClock,
      sealer: given.sealer ?? new MessageCipher((await readAppKeys(config, env)).masterKeys),
      registry: given.registry ?? connectionRegistry(config, db()),
      messages: given.messages ?? messageLog(config, db()),
      positions: given.positions ?? devicePositions(config, db()),
      limiter: given.limiter ?? (await redis()).limiter,
      presence: given.presence ?? presenceOf(await redis(), config),
      seqCache: given.seqCache ?? (await redis()).seqCache,
    };
  },
  create: (services: ServiceSource<GetUnackedRouteServices>) =>
    frameRoute('getUnacked', getUnackedFrameSchema, services, (built, binding, frame) => getUnacked(built, binding, frame)),
};

export const handler = lambdaHandler(route);
