import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { postersFor } from '../context/posters.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { deliverySettings, rateSettings, systemClock } from '../context/settings.js';
import { fanoutQueue } from '../context/sqs.js';
import { messageLog } from '../context/store.js';
import { markRead, type MarkReadServices } from '../domain/reads.js';
import { frameRoute, type FrameHandler, type FrameServices } from '../frame-route.js';
import { markReadFrameSchema } from '../protocol.js';
import { callbackEndpoint } from '../proxy-event.js';

export type MarkReadRouteServices = MarkReadServices & FrameServices & { callbackUrl: string | undefined };

/** Route `markRead`: raises the user's read position; answers `read`, and posts it to the others when it moved. */
export const route: Route<MarkReadRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('markRead', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const metrics = given.metrics ?? metricsOf(config, log);
    const db = once(() => documentClient(config, scope, env));
    const redis = once(() => redisHelpers(config, scope, env, log));
    const members = given.members ?? membershipStore(config, db());
    return {
      log,
      metrics,
      members,
      roster: given.roster ?? memberRoster(config, members),
      callbackUrl: config.CALLBACK_URL,
      limits: given.limits ?? rateSettings(config),
      delivery: given.delivery ?? deliverySettings(config),
      clock: given.clock ?? systemClock,
      registry: given.registry ?? connectionRegistry(config, db()),
      messages: given.messages ?? messageLog(config, db()),
      limiter: given.limiter ?? (await redis()).limiter,
      presence: given.presence ?? presenceOf(await redis(), config),
      seqCache: given.seqCache ?? (await redis()).seqCache,
      fanout: given.fanout ?? fanoutQueue(config, scope, env),
      posterFor: given.posterFor ?? postersFor(config, scope, env, log, metrics),
    };
  },
  create: (services: ServiceSource<MarkReadRouteServices>) =>
    frameRoute('markRead', markReadFrameSchema, services, (built, binding, frame, event) =>
      markRead(built, binding, frame, callbackEndpoint({ CALLBACK_URL: built.callbackUrl }, event)),
    ),
};

export const handler = lambdaHandler(route);
