import { bootLog, createLog } from '../adapters/log.js';
import { bootMetrics, countAnswer } from '../adapters/metrics.js';
import { TokenVerifier } from '../auth.js';
import { loadConfig } from '../config.js';
import { documentClient } from '../context/dynamo.js';
import { connectionRegistry, memberRoster, membershipStore } from '../context/members.js';
import { lambdaHandler, once, type Route, type ServiceSource } from '../context/lazy.js';
import { metricsOf } from '../context/metrics.js';
import { postersFor } from '../context/posters.js';
import { presenceOf } from '../context/presence.js';
import { redisHelpers } from '../context/redis.js';
import { devicePositions, messageLog, pushTargets } from '../context/store.js';
import { readJwtKeys } from '../context/secrets.js';
import { conversationSizeSettings, deliverySettings, handshakeSettings, systemClock } from '../context/settings.js';
import { fanoutQueue } from '../context/sqs.js';
import { openConnection, type OpenConnectionServices } from '../domain/connection.js';
import { touchPresence, type PresenceAnnouncing } from '../domain/presence.js';
import { HandshakeError, causeSummary, errorCodeOf, errorSummary, handshakeRefusalFor, type ErrorCode } from '../errors.js';
import { callbackEndpoint, header, parseProxyEvent, type RouteResponse } from '../proxy-event.js';
import type { Log } from '../ports.js';

export type ConnectServices = OpenConnectionServices & PresenceAnnouncing & { log: Log; callbackUrl: string | undefined };

/**
 * Route `$connect`: parameters, token, membership and the user's connection limit decide; a refusal
 * (400/401/403/429) writes nothing and the
 * status goes back on the handshake, so the socket never opens. With a `conversationId` (v1), the other members
 * learn that the user came online there.
 */
export const route: Route<ConnectServices, (event: unknown) => Promise<RouteResponse>> = {
  async build(env, scope, given = {}) {
    const config = loadConfig('connect', env);
    const log = given.log ?? createLog(config.LOG_LEVEL);
    const metrics = given.metrics ?? metricsOf(config, log);
    const db = once(() => documentClient(config, scope, env));
    const redis = once(() => redisHelpers(config, scope, env, log));
    const members = given.members ?? membershipStore(config, db());
    const store = once(() => devicePositions(config, db()));
    const auth =
      given.auth ??
      new TokenVerifier({
        // With a JWKS the HS256 secrets are not read at all.
        hmacSecrets: config.JWT_JWKS_URL === undefined ? (await readJwtKeys(config, env)).jwtSecrets : [],
        jwksUrl: config.JWT_JWKS_URL,
        issuer: config.JWT_ISSUER,
        audience: config.JWT_AUDIENCE,
        maxTokenAgeSeconds: config.MAX_TOKEN_AGE_SECONDS,
      });
    return {
      log,
      metrics,
      auth,
      handshake: given.handshake ?? handshakeSettings(config),
      clock: given.clock ?? systemClock,
      registry: given.registry ?? connectionRegistry(config, db()),
      members,
      roster: given.roster ?? memberRoster(config, members),
      messages: given.messages ?? messageLog(config, db()),
      positions: given.positions ?? store(),
      pushMarks: given.pushMarks ?? store(),
      pushTargets: given.pushTargets ?? pushTargets(config, db()),
      seqCache: given.seqCache ?? (await redis()).seqCache,
      presence: given.presence ?? presenceOf(await redis(), config),
      callbackUrl: config.CALLBACK_URL,
      delivery: given.delivery ?? deliverySettings(config),
      conversationSize: given.conversationSize ?? conversationSizeSettings(config),
      fanout: given.fanout ?? fanoutQueue(config, scope, env),
      posterFor: given.posterFor ?? postersFor(config, scope, env, log, metrics),
    };
  },
  create: (services: ServiceSource<ConnectServices>) => async (event) => {
    const parsed = parseProxyEvent(event);
    if (parsed === undefined) return refuse(new HandshakeError(400, 'malformed connect event'));
    const { connectionId, requestId } = parsed.requestContext;
    let built: ConnectServices;
    try {
      built = await services();
    } catch (error) {
      bootLog.error('services build failed', { route: '$connect', requestId, error: errorSummary(error), cause: causeSummary(error) });
      countAnswer(bootMetrics, errorCodeOf(error));
      return refuse(handshakeRefusalFor(error));
    }
    let status = 200;
    try {
      const record = await openConnection(built, {
        connectionId,
        query: parsed.queryStringParameters ?? {},
        origin: header(parsed, 'origin'),
      });
      built.log.info('connected', { connectionId, requestId, userId: record.userId, deviceId: record.deviceId });
      // Accepted with a conversationId: it is valid and the connection is subscribed to it.
      const conversationId = parsed.queryStringParameters?.conversationId;
      if (conversationId !== undefined) await touchPresence(built, record, [conversationId], callbackEndpoint({ CALLBACK_URL: built.callbackUrl }, parsed));
      return { statusCode: 200 };
    } catch (error) {
      const refusal = handshakeRefusalFor(error);
      const fields = { connectionId, requestId, status: refusal.statusCode, reason: refusal.message, cause: causeSummary(refusal) };
      if (refusal.statusCode >= 500) built.log.error('connect failed', fields);
      else built.log.info('connect refused', fields);
      status = refusal.statusCode;
      return refuse(refusal);
    } finally {
      countAnswer(built.metrics, ANSWER_OF_STATUS.get(status));
    }
  },
};

/** The refusals the alarms watch, as the frame codes they are counted under. */
const ANSWER_OF_STATUS = new Map<number, ErrorCode>([
  [429, 'rate_limited'],
  [503, 'unavailable'],
]);

function refuse(error: HandshakeError): RouteResponse {
  return { statusCode: error.statusCode, body: error.message };
}

export const handler = lambdaHandler(route);
