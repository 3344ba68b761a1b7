import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { readAppKeys } from '../context/secrets.js';
import { rateSettings, systemClock } from '../context/settings.js';
import { messageLog } from '../context/store.js';
import { getHistory, type GetHistoryServices } from '../domain/messaging.js';
import { MessageCipher } from '../encryption.js';
import { frameRoute, type FrameHandler, type FrameServices } from '../frame-route.js';
import { getHistoryFrameSchema } from '../protocol.js';

export type GetHistoryRouteServices = GetHistoryServices & FrameServices;

/** Route `getHistory`: pages of the conversation's messages for any current member; answers `history`. */
export const route: Route<GetHistoryRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('getHistory', env);
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
      limiter: given.limiter ?? (await redis()).limiter,
      presence: given.presence ?? presenceOf(await redis(), config),
    };
  },
  create: (services: ServiceSource<GetHistoryRouteServices>) =>
    frameRoute('getHistory', getHistoryFrameSchema, services, (built, binding, frame) => getHistory(built, binding, frame)),
};

export const handler = lambdaHandler(route);
