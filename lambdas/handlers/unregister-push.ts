import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { pushTargets } from '../context/store.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { connectionRegistry } from '../context/members.js';
import { redisHelpers } from '../context/redis.js';
import { rateSettings, systemClock } from '../context/settings.js';
import { unregisterPush, type UnregisterPushServices } from '../domain/push.js';
import { connectionRoute, type ConnectionFrameServices, type FrameHandler } from '../frame-route.js';
import { unregisterPushFrameSchema } from '../protocol.js';

export type UnregisterPushRouteServices = ConnectionFrameServices & UnregisterPushServices;

/** Route `unregisterPush`: this device is no longer woken by pushes; answers `pushUnregistered`. */
export const route: Route<UnregisterPushRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('unregisterPush', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const db = once(() => documentClient(config, scope, env));
    const redis = once(() => redisHelpers(config, scope, env, log));
    return {
      log,
      metrics: given.metrics ?? metricsOf(config, log),
      limits: given.limits ?? rateSettings(config),
      clock: given.clock ?? systemClock,
      registry: given.registry ?? connectionRegistry(config, db()),
      limiter: given.limiter ?? (await redis()).limiter,
      pushTargets: given.pushTargets ?? pushTargets(config, db()),
    };
  },
  create: (services: ServiceSource<UnregisterPushRouteServices>) =>
    connectionRoute('unregisterPush', unregisterPushFrameSchema, services, (built, connection, frame) => unregisterPush(built, connection, frame)),
};

export const handler = lambdaHandler(route);
