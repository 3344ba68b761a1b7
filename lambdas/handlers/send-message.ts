import { randomUUID } from 'node:crypto';
import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { postersFor } from '../context/posters.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { messageLog } from '../context/store.js';
import { readAppKeys } from '../context/secrets.js';
import { deliverySettings, fanoutBudgetSettings, rateSettings, systemClock } from '../context/settings.js';
import { fanoutQueue, notifyQueue } from '../context/sqs.js';
import { sendMessage, type SendMessageServices } from '../domain/messaging.js';
import { MessageCipher } from '../encryption.js';
import { frameRoute, type FrameHandler, type FrameServices } from '../frame-route.js';
import { sendMessageFrameSchema } from '../protocol.js';
import { callbackEndpoint } from '../proxy-event.js';

export type SendMessageRouteServices = SendMessageServices & FrameServices & { callbackUrl: string | undefined };

/** Route `sendMessage`: write to the log, post `sent` to the sender, then deliver live. */
export const route: Route<SendMessageRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('sendMessage', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const metrics = given.metrics ?? metricsOf(config, log);
    const db = once(() => documentClient(config, scope, env));
    const redis = once(() => redisHelpers(config, scope, env, log));
    return {
      log,
      metrics,
      roster: given.roster ?? memberRoster(config, membershipStore(config, db())),
      callbackUrl: config.CALLBACK_URL,
      limits: given.limits ?? rateSettings(config),
      delivery: given.delivery ?? deliverySettings(config),
      clock: given.clock ?? systemClock,
      newMessageId: given.newMessageId ?? (() => randomUUID()),
      sealer: given.sealer ?? new MessageCipher((await readAppKeys(config, env)).masterKeys),
      registry: given.registry ?? connectionRegistry(config, db()),
      messages: given.messages ?? messageLog(config, db()),
      limiter: given.limiter ?? (await redis()).limiter,
      fanoutBudget: given.fanoutBudget ?? (await redis()).fanoutBudget(fanoutBudgetSettings(config)),
      presence: given.presence ?? presenceOf(await redis(), config),
      seqCache: given.seqCache ?? (await redis()).seqCache,
      fanout: given.fanout ?? fanoutQueue(config, scope, env),
      notify: given.notify ?? notifyQueue(config, scope, env),
      posterFor: given.posterFor ?? postersFor(config, scope, env, log, metrics),
    };
  },
  create: (services: ServiceSource<SendMessageRouteServices>) =>
    frameRoute('sendMessage', sendMessageFrameSchema, services, (built, binding, frame, event) =>
      sendMessage(built, binding, frame, callbackEndpoint({ CALLBACK_URL: built.callbackUrl }, event)),
    ),
};

export const handler = lambdaHandler(route);
