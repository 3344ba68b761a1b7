import { DynamoConnectionRegistry } from '../adapters/dynamo-registry.js';
import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { lambdaHandler, type Route, type ServiceSource } from '../context/lazy.js';
import { messageStore } from '../context/redis.js';
import { readAppKeys } from '../context/secrets.js';
import { rateSettings, systemClock } from '../context/settings.js';
import { getUnacked, type GetUnackedServices } from '../domain/messaging.js';
import { MessageCipher } from '../encryption.js';
import { frameRoute, type FrameHandler, type FrameServices } from '../frame-route.js';
import { getUnackedFrameSchema } from '../protocol.js';

export type GetUnackedRouteServices = GetUnackedServices & FrameServices;

/** Route `getUnacked`: this device's pending messages in seq order; answers `unacked`. */
export const route: Route<GetUnackedRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('getUnacked', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    return {
      log,
      limits: given.limits ?? rateSettings(config),
      sealer: given.sealer ?? new MessageCipher((await readAppKeys(config, env)).masterKey),
      registry: given.registry ?? new DynamoConnectionRegistry(documentClient(config, scope, env), config.CONNECTIONS_TABLE, systemClock),
      store: given.store ?? (await messageStore(config, scope, env, log)),
    };
  },
  create: (services: ServiceSource<GetUnackedRouteServices>) =>
    frameRoute('getUnacked', getUnackedFrameSchema, services, (built, binding, frame) => getUnacked(built, binding, frame)),
};

export const handler = lambdaHandler(route);
