import { DynamoConnectionRegistry } from '../adapters/dynamo-registry.js';
import { createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { lambdaHandler, type Route, type ServiceSource } from '../context/lazy.js';
import { messageStore } from '../context/redis.js';
import { rateSettings, systemClock } from '../context/settings.js';
import { ack, type AckServices } from '../domain/messaging.js';
import { frameRoute, type FrameHandler, type FrameServices } from '../frame-route.js';
import { ackFrameSchema } from '../protocol.js';

export type AckRouteServices = AckServices & FrameServices;

/** Route `ack`: this device no longer needs these messages; answers `acked`. */
export const route: Route<AckRouteServices, FrameHandler> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('ack', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    return {
      log,
      limits: given.limits ?? rateSettings(config),
      registry: given.registry ?? new DynamoConnectionRegistry(documentClient(config, scope, env), config.CONNECTIONS_TABLE, systemClock),
      store: given.store ?? (await messageStore(config, scope, env, log)),
    };
  },
  create: (services: ServiceSource<AckRouteServices>) =>
    frameRoute('ack', ackFrameSchema, services, (built, binding, frame) => ack(built, binding, frame)),
};

export const handler = lambdaHandler(route);
