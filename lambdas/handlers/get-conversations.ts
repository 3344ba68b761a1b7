import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { redisHelpers } from '../context/redis.js';
import { rateSettings, systemClock } from '../context/settings.js';
import { messageLog } from '../context/store.js';
import { getConversations, type GetConversationsServices } from '../domain/reads.js';
import { connectionRoute, type ConnectionFrameServices, type FrameHandler } from '../frame-route.js';
import { getConversationsFrameSchema } from '../protocol.js';

export type GetConversationsRouteServices = GetConversationsServices & ConnectionFrameServices;

/** Route `getConversations`: pages the user's conversations with their unread counts; answers `conversations`. */
export const route: Route<GetConversationsRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('getConversations', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const db = once(() => documentClient(config, scope, env));
    return {
      log,
      metrics: given.metrics ?? metricsOf(config, log),
      limits: given.limits ?? rateSettings(config),
      registry: given.registry ?? connectionRegistry(config, db()),
      members: given.members ?? membershipStore(config, db()),
      messages: given.messages ?? messageLog(config, db()),
      limiter: given.limiter ?? (await redisHelpers(config, scope, env, log)).limiter,
      clock: given.clock ?? systemClock,
    };
  },
  create: (services: ServiceSource<GetConversationsRouteServices>) =>
    connectionRoute('getConversations', getConversationsFrameSchema, services, (built, connection, frame) => getConversations(built, connection, frame)),
};

export const handler = lambdaHandler(route);
