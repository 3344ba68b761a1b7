import { bootLog, createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry } from '../context/members.js';
import { lambdaHandler, type Route, type ServiceSource } from '../context/lazy.js';
import { closeConnection } from '../domain/connection.js';
import { errorSummary } from '../errors.js';
import { parseProxyEvent, type RouteResponse } from '../proxy-event.js';
import type { Services } from '../ports.js';

export type DisconnectServices = Pick<Services, 'registry' | 'log'>;

/** Route `$disconnect`: remove the connection's rows (its record and subscriptions). Best effort: a missed delete expires with the rows. */
export const route: Route<DisconnectServices, (event: unknown) => Promise<RouteResponse>> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('disconnect', env);
    return {
      log: given.log ?? createLog(config.LOG_LEVEL),
      registry: given.registry ?? connectionRegistry(config, documentClient(config, scope, env)),
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
