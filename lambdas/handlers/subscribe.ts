import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { postersFor } from '../context/posters.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { readAppKeys } from '../context/secrets.js';
import { conversationSizeSettings, deliverySettings, rateSettings, subscriptionSettings, systemClock } from '../context/settings.js';
import { fanoutQueue } from '../context/sqs.js';
import { devicePositions, messageLog, pushTargets } from '../context/store.js';
import { subscribe, type SubscribeServices } from '../domain/connection.js';
import { MessageCipher } from '../encryption.js';
import { connectionRoute, type ConnectionFrameServices, type FrameHandler } from '../frame-route.js';
import { subscribeFrameSchema } from '../protocol.js';
import { callbackEndpoint } from '../proxy-event.js';

export type SubscribeRouteServices = SubscribeServices & ConnectionFrameServices & { callbackUrl: string | undefined };

/**
 * Route `subscribe`: the connection receives these conversations (each `ok` or `forbidden`); with `afterSeq`,
 * the device's missed messages follow (resume). The other members learn that its user came online.
 */
export const route: Route<SubscribeRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('subscribe', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const metrics = given.metrics ?? metricsOf(config, log);
    const db = once(() => documentClient(config, scope, env));
    const redis = once(() => redisHelpers(config, scope, env, log));
    const members = given.members ?? membershipStore(config, db());
    const store = once(() => devicePositions(config, db()));
    return {
      log,
      metrics,
      callbackUrl: config.CALLBACK_URL,
      limits: given.limits ?? rateSettings(config),
      subscriptions: given.subscriptions ?? subscriptionSettings(config),
      clock: given.clock ?? systemClock,
      sealer: given.sealer ?? new MessageCipher((await readAppKeys(config, env)).masterKeys),
      registry: given.registry ?? connectionRegistry(config, db()),
      members,
      roster: given.roster ?? memberRoster(config, members),
      messages: given.messages ?? messageLog(config, db()),
      positions: given.positions ?? store(),
      pushMarks: given.pushMarks ?? store(),
      pushTargets: given.pushTargets ?? pushTargets(config, db()),
      limiter: given.limiter ?? (await redis()).limiter,
      seqCache: given.seqCache ?? (await redis()).seqCache,
      presence: given.presence ?? presenceOf(await redis(), config),
      delivery: given.delivery ?? deliverySettings(config),
      conversationSize: given.conversationSize ?? conversationSizeSettings(config),
      fanout: given.fanout ?? fanoutQueue(config, scope, env),
      posterFor: given.posterFor ?? postersFor(config, scope, env, log, metrics),
    };
  },
  create: (services: ServiceSource<SubscribeRouteServices>) =>
    connectionRoute('subscribe', subscribeFrameSchema, services, (built, connection, frame, event) =>
      subscribe(built, connection, frame, callbackEndpoint({ CALLBACK_URL: built.callbackUrl }, event)),
    ),
};

export const handler = lambdaHandler(route);
