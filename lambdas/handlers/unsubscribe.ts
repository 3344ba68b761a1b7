import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { connectionRegistry } from '../context/members.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { rateSettings, systemClock } from '../context/settings.js';
import { unsubscribe } from '../domain/connection.js';
import { connectionRoute, type ConnectionFrameServices, type FrameHandler } from '../frame-route.js';
import type { ConnectionRegistry, Services } from '../ports.js';
import { unsubscribeFrameSchema } from '../protocol.js';

export type UnsubscribeRouteServices = ConnectionFrameServices &
  Pick<Services, 'presence' | 'clock'> & { registry: Pick<ConnectionRegistry, 'connection' | 'unsubscribe'> };

/**
 * Route `unsubscribe`: the connection stops receiving these conversations (and is no longer live in them for
 * presence); answers `unsubscribed`.
 */
export const route: Route<UnsubscribeRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('unsubscribe', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const redis = once(() => redisHelpers(config, scope, env, log));
    return {
      log,
      metrics: given.metrics ?? metricsOf(config, log),
      limits: given.limits ?? rateSettings(config),
      clock: given.clock ?? systemClock,
      registry: given.registry ?? connectionRegistry(config, documentClient(config, scope, env)),
      limiter: given.limiter ?? (await redis()).limiter,
      presence: given.presence ?? presenceOf(await redis(), config),
    };
  },
  create: (services: ServiceSource<UnsubscribeRouteServices>) =>
    connectionRoute('unsubscribe', unsubscribeFrameSchema, services, (built, connection, frame) => unsubscribe(built, connection, frame)),
};

export const handler = lambdaHandler(route);
