import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { postersFor } from '../context/posters.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { conversationSizeSettings, deliverySettings, rateSettings, systemClock } from '../context/settings.js';
import { fanoutQueue } from '../context/sqs.js';
import { ping, type PresenceAnnouncing } from '../domain/presence.js';
import { connectionRoute, type ConnectionFrameServices, type FrameHandler } from '../frame-route.js';
import type { ConnectionRegistry } from '../ports.js';
import { pingFrameSchema } from '../protocol.js';
import { callbackEndpoint } from '../proxy-event.js';

export type PingRouteServices = ConnectionFrameServices &
  PresenceAnnouncing & {
    registry: Pick<ConnectionRegistry, 'connection' | 'subscriptionsOf' | 'listByConversation' | 'unsubscribe' | 'remove'>;
    callbackUrl: string | undefined;
  };

/**
 * Route `ping`: answers `pong` (keeps an idle connection open: API Gateway closes one after 10 minutes without a
 * client frame) and keeps the connection live for presence in every conversation it is subscribed to.
 */
export const route: Route<PingRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('ping', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const metrics = given.metrics ?? metricsOf(config, log);
    const db = once(() => documentClient(config, scope, env));
    const redis = once(() => redisHelpers(config, scope, env, log));
    return {
      log,
      metrics,
      callbackUrl: config.CALLBACK_URL,
      limits: given.limits ?? rateSettings(config),
      clock: given.clock ?? systemClock,
      registry: given.registry ?? connectionRegistry(config, db()),
      roster: given.roster ?? memberRoster(config, membershipStore(config, db())),
      limiter: given.limiter ?? (await redis()).limiter,
      presence: given.presence ?? presenceOf(await redis(), config),
      delivery: given.delivery ?? deliverySettings(config),
      conversationSize: given.conversationSize ?? conversationSizeSettings(config),
      fanout: given.fanout ?? fanoutQueue(config, scope, env),
      posterFor: given.posterFor ?? postersFor(config, scope, env, log, metrics),
    };
  },
  create: (services: ServiceSource<PingRouteServices>) =>
    connectionRoute('ping', pingFrameSchema, services, (built, connection, frame, event) =>
      ping(built, connection, frame, callbackEndpoint({ CALLBACK_URL: built.callbackUrl }, event)),
    ),
};

export const handler = lambdaHandler(route);
