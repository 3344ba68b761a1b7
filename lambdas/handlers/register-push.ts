import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { connectionRegistry, membershipStore } from '../context/members.js';
import { devicePositions, pushTargets } from '../context/store.js';
import { redisHelpers } from '../context/redis.js';
import { rateSettings, systemClock } from '../context/settings.js';
import { registerPush, type RegisterPushServices } from '../domain/push.js';
import { connectionRoute, type ConnectionFrameServices, type FrameHandler } from '../frame-route.js';
import { registerPushFrameSchema } from '../protocol.js';

export type RegisterPushRouteServices = ConnectionFrameServices & RegisterPushServices;

/** Route `registerPush`: stores this device's push target (Web Push subscription, APNs or FCM token); answers `pushRegistered`. */
export const route: Route<RegisterPushRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('registerPush', env);
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
      members: given.members ?? membershipStore(config, db()),
      pushMarks: given.pushMarks ?? devicePositions(config, db()),
      push: {
        maxTargetsPerUser: config.MAX_PUSH_TARGETS_PER_USER,
        webAllowedHosts: config.PUSH_WEB_ALLOWED_HOSTS,
        allowLoopback: config.PUSH_ALLOW_LOOPBACK,
        apns: config.PUSH_APNS_PLATFORM_ARN !== undefined,
        fcm: config.PUSH_FCM_PLATFORM_ARN !== undefined,
      },
    };
  },
  create: (services: ServiceSource<RegisterPushRouteServices>) =>
    connectionRoute('registerPush', registerPushFrameSchema, services, (built, connection, frame) => registerPush(built, connection, frame)),
};

export const handler = lambdaHandler(route);
