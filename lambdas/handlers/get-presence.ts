import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { conversationSizeSettings, rateSettings, systemClock } from '../context/settings.js';
import { getPresence } from '../domain/presence.js';
import { frameRoute, type FrameHandler, type FrameServices } from '../frame-route.js';
import type { Services } from '../ports.js';
import { getPresenceFrameSchema } from '../protocol.js';

export type GetPresenceRouteServices = FrameServices & Pick<Services, 'presence' | 'conversationSize'>;

/** Route `getPresence`: the members online in the conversation (or its occupancy above the size limit). */
export const route: Route<GetPresenceRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('getPresence', env);
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
      limiter: given.limiter ?? (await redis()).limiter,
      presence: given.presence ?? presenceOf(await redis(), config),
      conversationSize: given.conversationSize ?? conversationSizeSettings(config),
    };
  },
  create: (services: ServiceSource<GetPresenceRouteServices>) =>
    frameRoute('getPresence', getPresenceFrameSchema, services, (built, binding, frame) => getPresence(built, binding, frame)),
};

export const handler = lambdaHandler(route);
