import { bootLog, createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry } from '../context/members.js';
import { lambdaHandler, type Route, type ServiceSource } from '../context/lazy.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { systemClock } from '../context/settings.js';
import { closeConnection, type CloseConnectionServices } from '../domain/connection.js';
import { errorSummary } from '../errors.js';
import { parseProxyEvent, type RouteResponse } from '../proxy-event.js';

export type DisconnectServices = CloseConnectionServices;

/**
 * Route `$disconnect`: remove the connection's rows (its record and subscriptions) and end its presence in each
 * conversation (its user goes offline after the grace). Best effort: a missed delete expires with the rows, a
 * missed `$disconnect` with the presence TTL.
 */
export const route: Route<DisconnectServices, (event: unknown) => Promise<RouteResponse>> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('disconnect', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    return {
      log,
      clock: given.clock ?? systemClock,
      registry: given.registry ?? connectionRegistry(config, documentClient(config, scope, env)),
      presence: given.presence ?? presenceOf(await redisHelpers(config, scope, env, log), config),
    };
  },
  create: (services: ServiceSource<DisconnectServices>) => async (event) => {
    const parsed = parseProxyEvent(event);
    if (parsed === undefined) {
      bootLog.warn('malformed disconnect event');
      return { statusCode: 200 };
    }
    const { connectionId } = parsed.requestContext;
    try {
      const built = await services();
      await closeConnection(built, connectionId);
      built.log.info('disconnected', { connectionId });
    } catch (error) {
      bootLog.error('disconnect failed', { connectionId, error: errorSummary(error) });
    }
    return { statusCode: 200 };
  },
};

export const handler = lambdaHandler(route);
