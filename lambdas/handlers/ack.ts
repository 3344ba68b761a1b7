import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { devicePositions, messageLog } from '../context/store.js';
import { rateSettings, systemClock } from '../context/settings.js';
import { ack, type AckServices } from '../domain/messaging.js';
import { frameRoute, type FrameHandler, type FrameServices } from '../frame-route.js';
import { ackFrameSchema } from '../protocol.js';

export type AckRouteServices = AckServices & FrameServices;

/** Route `ack`: this device no longer needs these messages; answers `acked`. */
export const route: Route<AckRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('ack', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const db = once(() => documentClient(config, scope, env));
    const redis = once(() => redisHelpers(config, scope, env, log));
    return {
      log,
      metrics: given.metrics ?? metricsOf(config, log),
      roster: given.roster ?? memberRoster(config, membershipStore(config, db())),
      limits: given.limits ?? rateSettings(config),
      clock: given.clock ?? systemClock,
      registry: given.registry ?? connectionRegistry(config, db()),
      messages: given.messages ?? messageLog(config, db()),
      positions: given.positions ?? devicePositions(config, db()),
      limiter: given.limiter ?? (await redis()).limiter,
      presence: given.presence ?? presenceOf(await redis(), config),
      seqCache: given.seqCache ?? (await redis()).seqCache,
    };
  },
  create: (services: ServiceSource<AckRouteServices>) =>
    frameRoute('ack', ackFrameSchema, services, (built, binding, frame) => ack(built, binding, frame)),
};

export const handler = lambdaHandler(route);
