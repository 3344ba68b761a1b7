import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { postersFor } from '../context/posters.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { conversationSizeSettings, deliverySettings, fanoutBudgetSettings, rateSettings, systemClock, typingSettings } from '../context/settings.js';
import { fanoutQueue } from '../context/sqs.js';
import { typing, type TypingServices } from '../domain/messaging.js';
import { frameRoute, type FrameHandler, type FrameServices } from '../frame-route.js';
import { typingFrameSchema } from '../protocol.js';
import { callbackEndpoint } from '../proxy-event.js';

export type TypingRouteServices = TypingServices & FrameServices & { callbackUrl: string | undefined };

/** Route `typing`: tell every other user in the conversation (coalesced, not above the size limit). Answers only on error. */
export const route: Route<TypingRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('typing', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const metrics = given.metrics ?? metricsOf(config, log);
    const db = once(() => documentClient(config, scope, env));
    const redis = once(() => redisHelpers(config, scope, env, log));
    const typing = given.typing ?? typingSettings(config);
    return {
      log,
      metrics,
      roster: given.roster ?? memberRoster(config, membershipStore(config, db())),
      callbackUrl: config.CALLBACK_URL,
      limits: given.limits ?? rateSettings(config),
      delivery: given.delivery ?? deliverySettings(config),
      clock: given.clock ?? systemClock,
      registry: given.registry ?? connectionRegistry(config, db()),
      limiter: given.limiter ?? (await redis()).limiter,
      fanoutBudget: given.fanoutBudget ?? (await redis()).fanoutBudget(fanoutBudgetSettings(config)),
      conversationSize: given.conversationSize ?? conversationSizeSettings(config),
      typing,
      typingGate: given.typingGate ?? (await redis()).typingGate(typing),
      presence: given.presence ?? presenceOf(await redis(), config),
      fanout: given.fanout ?? fanoutQueue(config, scope, env),
      posterFor: given.posterFor ?? postersFor(config, scope, env, log, metrics),
    };
  },
  create: (services: ServiceSource<TypingRouteServices>) =>
    frameRoute('typing', typingFrameSchema, services, async (built, binding, frame, event) => {
      await typing(built, binding, frame, callbackEndpoint({ CALLBACK_URL: built.callbackUrl }, event));
      return undefined;
    }),
};

export const handler = lambdaHandler(route);
