import { bootLog, createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { postersFor } from '../context/posters.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { conversationSizeSettings, deliverySettings, systemClock } from '../context/settings.js';
import { fanoutQueue } from '../context/sqs.js';
import { sweepPresence, type PresenceAnnouncing } from '../domain/presence.js';
import { causeSummary, errorSummary } from '../errors.js';

export type PresenceSweeperServices = PresenceAnnouncing & { callbackUrl: string; sweepIntervalMs: number };

/** Conversations one sweep claims at most (the rest stay due for the next). */
export const SWEEP_LIMIT = 500;
/** Time left unused at the end of an invocation, so the last sweep finishes well before the timeout. */
const MARGIN_MS = 5_000;

export interface SweepReport {
  sweeps: number;
  offline: number;
}

/** What the Lambda runtime passes: the invocation's deadline (absent when the local backend calls once). */
interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/**
 * The presence sweeper (EventBridge, every minute): announces `offline` for users whose last connection in a
 * conversation lapsed more than the grace ago. Sweeps every PRESENCE_SWEEP_SECONDS for the rest of its invocation
 * (once, when called without a Lambda context, as the local backend does on its own interval). Claims are
 * atomic, so overlapping invocations never announce a user twice.
 */
export const route: Route<PresenceSweeperServices, (event: unknown, context?: InvocationContext) => Promise<SweepReport>> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('presenceSweeper', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const metrics = given.metrics ?? metricsOf(config, log);
    const db = once(() => documentClient(config, scope, env));
    const redis = once(() => redisHelpers(config, scope, env, log));
    return {
      log,
      metrics,
      callbackUrl: config.CALLBACK_URL,
      sweepIntervalMs: config.PRESENCE_SWEEP_SECONDS * 1000,
      clock: given.clock ?? systemClock,
      registry: given.registry ?? connectionRegistry(config, db()),
      roster: given.roster ?? memberRoster(config, membershipStore(config, db())),
      presence: given.presence ?? presenceOf(await redis(), config),
      delivery: given.delivery ?? deliverySettings(config),
      conversationSize: given.conversationSize ?? conversationSizeSettings(config),
      fanout: given.fanout ?? fanoutQueue(config, scope, env),
      posterFor: given.posterFor ?? postersFor(config, scope, env, log, metrics),
    };
  },
  create: (services: ServiceSource<PresenceSweeperServices>) => async (_event, context) => {
    const report: SweepReport = { sweeps: 0, offline: 0 };
    let built: PresenceSweeperServices;
    try {
      built = await services();
    } catch (error) {
      bootLog.error('services build failed', { route: 'presenceSweeper', error: errorSummary(error), cause: causeSummary(error) });
      return report;
    }
    const endpoint = built.callbackUrl.replace(/\/+$/, '');
    for (;;) {
      const started = Date.now();
      try {
        report.offline += await sweepPresence(built, endpoint, SWEEP_LIMIT);
      } catch (error) {
        built.log.warn('presence sweep failed', { error: errorSummary(error) });
      }
      report.sweeps += 1;
      const wait = Math.max(0, built.sweepIntervalMs - (Date.now() - started));
      if (context === undefined || context.getRemainingTimeInMillis() < wait + built.sweepIntervalMs + MARGIN_MS) break;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    if (report.offline > 0) built.log.info('presence swept', { ...report });
    built.metrics.flush();
    return report;
  },
};

export const handler = lambdaHandler(route);
