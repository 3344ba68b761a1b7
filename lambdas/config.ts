import * as z from 'zod/mini';
import './zod.js';
import { ConfigError } from './errors.js';

/**
 * The environment of each function, as zod schemas. A function's schema names only the variables that
 * function reads (the stack gives it exactly those); `loadConfig` names each missing or invalid variable, so a
 * half-configured function fails loudly when its services are built instead of at some later event.
 */
const blankAsUnset = (value: string | undefined) => (value === undefined || value.trim() === '' ? undefined : value.trim());
const positiveInt = (fallback: number) => z._default(z.coerce.number().check(z.int(), z.positive()), fallback);
const optionalText = z.pipe(z.optional(z.string()), z.transform(blankAsUnset));
const optionalUrl = z.pipe(optionalText, z.optional(z.url()));
const logLevel = z.pipe(
  z._default(z.string(), 'INFO'),
  z.pipe(
    z.transform((v: string) => v.toUpperCase()),
    z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT']),
  ),
);
const csv = z.pipe(
  z._default(z.string(), ''),
  z.transform((v: string) =>
    v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  ),
);

/**
 * Counters (EMF metrics, see adapters/metrics.ts): `emf` writes them to stdout once per invocation, where
 * CloudWatch turns them into metrics of namespace RelayWs with dimension `stage`; `off` (local) counts nothing.
 */
const metrics = {
  METRICS: z._default(z.enum(['off', 'emf']), 'off'),
  METRICS_STAGE: z._default(z.string().check(z.minLength(1), z.maxLength(64)), 'local'),
};
/** What every function reads. */
const base = {
  LOG_LEVEL: logLevel,
  AWS_REGION: z._default(z.string().check(z.minLength(1)), 'us-east-1'),
  ...metrics,
};
/** DynamoDB (the endpoint is set only for a local DynamoDB). */
const dynamo = { DYNAMODB_ENDPOINT: optionalUrl };
const connections = { CONNECTIONS_TABLE: z.string().check(z.minLength(1)) };
const members = { MEMBERS_TABLE: z.string().check(z.minLength(1)) };
const queue = { FANOUT_QUEUE_URL: z.url(), SQS_ENDPOINT: optionalUrl };
/** Secrets Manager (the endpoint is set only for a local stand-in). */
const secrets = { SECRETS_ENDPOINT: optionalUrl };
const redis = {
  /** Plain Redis URL (ElastiCache endpoint, local server). Exactly one of REDIS_URL / REDIS_URL_SECRET_ID. */
  REDIS_URL: optionalText,
  /** Secrets Manager id of a secret whose value is the Redis URL (external Redis with a password). */
  REDIS_URL_SECRET_ID: optionalText,
  /** With REDIS_URL: Secrets Manager id of `{"username", "password"}` to AUTH with (the ElastiCache app user). */
  REDIS_AUTH_SECRET_ID: optionalText,
  /** `cluster` for ElastiCache Serverless / cluster-mode Redis, `standalone` otherwise. */
  REDIS_MODE: z._default(z.enum(['standalone', 'cluster']), 'standalone'),
  ...secrets,
};
/** The message log and its idempotency records (DynamoDB). */
const messages = {
  MESSAGES_TABLE: z.string().check(z.minLength(1)),
  IDEMPOTENCY_TABLE: z.string().check(z.minLength(1)),
  /** How long messages stay readable; unset = forever (no TTL attribute is written). */
  HISTORY_RETENTION_SECONDS: z.pipe(
    optionalText,
    z.pipe(
      z.transform((v: string | undefined) => (v === undefined ? undefined : Number(v))),
      z.optional(z.number().check(z.int(), z.positive())),
    ),
  ),
  /** How long a clientMessageId is remembered (never longer than the history retention). */
  IDEMPOTENCY_WINDOW_SECONDS: positiveInt(7 * 24 * 3600),
};
/** Device positions (DynamoDB). */
const positions = {
  POSITIONS_TABLE: z.string().check(z.minLength(1)),
  /** A device not seen for this long stops counting (it starts again from its next connect). */
  DEVICE_TTL_SECONDS: positiveInt(30 * 24 * 3600),
  /** Devices a user keeps per conversation; one more drops the least recently seen. */
  MAX_DEVICES_PER_USER: positiveInt(10),
};
const appSecret = {
  /** Secrets Manager id of the app secret (see secret.ts). Exactly one of APP_SECRET_ID / APP_SECRET_JSON. */
  APP_SECRET_ID: optionalText,
  /** The same JSON inline, for local development only. */
  APP_SECRET_JSON: optionalText,
  ...secrets,
};
/**
 * Connection tokens: HS256 with the stage's JWT secret (Secrets Manager JWT_SECRET_ID; locally the inline
 * APP_SECRET_JSON), or a JWKS (then issuer and audience are required: a token minted for another app must not
 * pass). A token may live at most MAX_TOKEN_AGE_SECONDS (exp - iat).
 */
const tokens = {
  JWT_SECRET_ID: optionalText,
  APP_SECRET_JSON: optionalText,
  ...secrets,
  JWT_JWKS_URL: optionalUrl,
  JWT_ISSUER: optionalText,
  JWT_AUDIENCE: optionalText,
  MAX_TOKEN_AGE_SECONDS: positiveInt(24 * 3600),
};
/** API Gateway closes a WebSocket connection after 2 hours whatever happens on it. */
export const MAX_CONNECTION_SECONDS = 2 * 3600;
const handshake = {
  /** Comma-separated allowed `Origin` values for $connect; empty = any origin (native apps send none). */
  ORIGIN_ALLOW_LIST: csv,
  /**
   * Connections older than this are treated as gone even if TTL has not removed their row yet: at most API
   * Gateway's own limit, 2 hours, after which it closes every WebSocket connection.
   */
  CONNECTION_TTL_SECONDS: z._default(z.coerce.number().check(z.int(), z.positive(), z.maximum(MAX_CONNECTION_SECONDS)), MAX_CONNECTION_SECONDS),
  /** Open connections a user may have at once; one more is refused with 429. */
  MAX_CONNECTIONS_PER_USER: positiveInt(10),
};
/** The membership as each frame sees it: a removal shows within this many seconds (at most 30). */
const roster = {
  ...members,
  MEMBERSHIP_CACHE_SECONDS: z._default(z.coerce.number().check(z.int(), z.positive(), z.maximum(30)), 10),
};
const subscriptions = {
  /** Conversations one connection may be subscribed to at once. */
  MAX_SUBSCRIPTIONS_PER_CONNECTION: positiveInt(100),
};
/** Above this many members typing is not fanned out and presence is sent as an occupancy count. */
const conversationSize = { LARGE_CONVERSATION_MEMBERS: positiveInt(100) };
/**
 * Typing: a user's repeated state goes out at most once per TYPING_COALESCE_MS (0: every frame); a start expires
 * on the receivers TYPING_EXPIRES_MS after it (more than the window, so a refreshed start never lapses).
 */
const typingTimes = {
  TYPING_COALESCE_MS: z._default(z.coerce.number().check(z.int(), z.nonnegative()), 2000),
  TYPING_EXPIRES_MS: positiveInt(6000),
};
const limits = {
  /** Frames per second (and burst) of one connection. */
  RATE_LIMIT_PER_SECOND: positiveInt(20),
  RATE_LIMIT_BURST: positiveInt(40),
  /** Frames per second (and burst) of one user, across all of their connections. */
  RATE_LIMIT_USER_PER_SECOND: positiveInt(40),
  RATE_LIMIT_USER_BURST: positiveInt(80),
};
/**
 * Fan-out budgets: the Management API posts per second one conversation (whoever sends) and one sender (in all of
 * their conversations) may cause; a message to N live connections costs N. A send is refused (`rate_limited`,
 * with `retryAfterMs`) while either is in debt. Defaults: 5% and 10% of the account's 10,000 requests per second
 * (docs/deploy.md, "Quotas and fan-out budgets").
 */
const budgets = {
  FANOUT_BUDGET_CONVERSATION_PER_SECOND: positiveInt(500),
  FANOUT_BUDGET_SENDER_PER_SECOND: positiveInt(1000),
};
/** Members a conversation may have: an add beyond it is refused (the admin tool and the local tools add members). */
const membership = { MAX_CONVERSATION_MEMBERS: positiveInt(1000) };
const posting = {
  /** Management API base URL for custom domains or the local gateway; else https://{domainName}/{stage}. */
  CALLBACK_URL: optionalUrl,
  POST_CONCURRENCY: positiveInt(32),
  /**
   * A 410 for a connection younger than this is not taken as gone (API Gateway answers 410 until `$connect` has
   * returned): it is not pruned then. 0 prunes at once (tests).
   */
  PRUNE_GRACE_SECONDS: z._default(z.coerce.number().check(z.int(), z.minimum(0), z.maximum(3600)), 30),
};
const delivery = {
  ...posting,
  FANOUT_THRESHOLD: positiveInt(100),
  FANOUT_BATCH_SIZE: positiveInt(100),
  ...queue,
};
/**
 * Presence (Redis; in process without one): a touch keeps a connection live for the TTL (clients ping every
 * ~25 s); a user goes offline once their last connection lapsed more than the grace ago; above the size limit an
 * occupancy count goes out at most once per interval per conversation.
 */
const presence = {
  PRESENCE_TTL_SECONDS: positiveInt(60),
  PRESENCE_GRACE_SECONDS: positiveInt(15),
  PRESENCE_OCCUPANCY_INTERVAL_MS: positiveInt(5000),
};
/**
 * The Redis password rotation (Secrets Manager invokes it with the secret's id): the ElastiCache user whose
 * passwords it sets, and the cache to AUTH against with the new password before it becomes current (optional:
 * without it, testSecret checks only that the user is active with both passwords).
 */
const passwordRotation = {
  REDIS_USER_ID: z.string().check(z.minLength(1)),
  REDIS_URL: redis.REDIS_URL,
  ...secrets,
};

/**
 * Push notifications. The notify queue is optional for sendMessage: without it nothing is pushed. Web Push
 * endpoints must be https on PUSH_WEB_ALLOWED_HOSTS (`*.` matches any subdomain); PUSH_ALLOW_LOOPBACK (the local
 * backend only) also allows http://127.0.0.1 and http://localhost. APNs and FCM go through the SNS platform
 * applications whose ARNs are given (a stage without one refuses that kind of target).
 */
export const DEFAULT_PUSH_WEB_HOSTS = 'fcm.googleapis.com,updates.push.services.mozilla.com,*.push.apple.com,*.notify.windows.com';
const flag = (fallback: boolean) =>
  z.pipe(
    z._default(z.enum(['true', 'false']), fallback ? 'true' : 'false'),
    z.transform((v: 'true' | 'false') => v === 'true'),
  );
const notifyQueue = { NOTIFY_QUEUE_URL: optionalUrl, SQS_ENDPOINT: optionalUrl };
const pushPlatforms = { PUSH_APNS_PLATFORM_ARN: optionalText, PUSH_FCM_PLATFORM_ARN: optionalText };
const pushRegistration = {
  ...pushPlatforms,
  MAX_PUSH_TARGETS_PER_USER: positiveInt(10),
  PUSH_WEB_ALLOWED_HOSTS: z.pipe(
    z._default(z.string(), DEFAULT_PUSH_WEB_HOSTS),
    z.transform((v: string) =>
      v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    ),
  ),
  PUSH_ALLOW_LOOPBACK: flag(false),
  PUSH_TARGETS_TABLE: z.string().check(z.minLength(1)),
};
/** Where `subscribe` and `$connect` look up a device's push target, to flag its new positions for push. */
const pushFlags = { PUSH_TARGETS_TABLE: z.string().check(z.minLength(1)) };
/** The VAPID key pair `{publicKey, privateKey, subject}`: a Secrets Manager secret, or inline JSON locally. */
const vapid = { PUSH_VAPID_SECRET_ID: optionalText, PUSH_VAPID_JSON: optionalText, ...secrets };
const notifier = {
  ...pushPlatforms,
  ...vapid,
  PUSH_TARGETS_TABLE: z.string().check(z.minLength(1)),
  /** Web Push only: the push carries the first 100 characters of the body (RFC 8291 end-to-end encrypted). */
  PUSH_PREVIEW: flag(false),
  /** How long a push service keeps an undelivered push (Web Push `TTL`, seconds). */
  PUSH_TTL_SECONDS: z._default(z.coerce.number().check(z.int(), z.minimum(0), z.maximum(28 * 24 * 3600)), 24 * 3600),
  PUSH_CONCURRENCY: positiveInt(8),
};

/** The stage's own Management API, for functions no request names it to (the sweeper, the fan-out worker). */
const ownCallback = { CALLBACK_URL: z.url() };
/** The presence sweeper: how often it sweeps, and the Management API it announces through (the stage's). */
const presenceSweep = { PRESENCE_SWEEP_SECONDS: positiveInt(5), ...ownCallback };

type Env = Record<string, unknown>;

/** The rules that span variables, applied to whichever of them a function's schema has. */
const crossChecks = (variables: ReadonlySet<string>) => z.superRefine((env: Env, ctx) => {
  const exactlyOne = (a: string, b: string) => {
    if (!variables.has(a) || !variables.has(b)) return;
    const count = (env[a] === undefined ? 0 : 1) + (env[b] === undefined ? 0 : 1);
    if (count !== 1) {
      ctx.addIssue({ code: 'custom', path: [a], message: count === 0 ? `set ${a} or ${b}` : `set only one of ${a} and ${b}`, input: undefined });
    }
  };
  // Redis is optional (it only speeds things up): at most one source.
  if (variables.has('REDIS_URL') && env.REDIS_URL !== undefined && env.REDIS_URL_SECRET_ID !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_URL'], message: 'set only one of REDIS_URL and REDIS_URL_SECRET_ID', input: undefined });
  }
  if (variables.has('REDIS_AUTH_SECRET_ID') && env.REDIS_AUTH_SECRET_ID !== undefined && env.REDIS_URL === undefined) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_AUTH_SECRET_ID'], message: 'needs REDIS_URL (the credentials are for that Redis)', input: undefined });
  }
  exactlyOne('APP_SECRET_ID', 'APP_SECRET_JSON');
  exactlyOne('JWT_SECRET_ID', 'APP_SECRET_JSON');
  exactlyOne('PUSH_VAPID_SECRET_ID', 'PUSH_VAPID_JSON');
  if (variables.has('JWT_JWKS_URL') && env.JWT_JWKS_URL !== undefined) {
    for (const name of ['JWT_ISSUER', 'JWT_AUDIENCE']) {
      if (env[name] === undefined) ctx.addIssue({ code: 'custom', path: [name], message: 'is required with JWT_JWKS_URL', input: undefined });
    }
  }
  for (const [rateName, burstName] of [
    ['RATE_LIMIT_PER_SECOND', 'RATE_LIMIT_BURST'],
    ['RATE_LIMIT_USER_PER_SECOND', 'RATE_LIMIT_USER_BURST'],
  ] as const) {
    const rate = env[rateName];
    const burst = env[burstName];
    if (typeof rate === 'number' && typeof burst === 'number' && burst < rate) {
      ctx.addIssue({ code: 'custom', path: [burstName], message: `must be at least ${rateName}`, input: burst });
    }
  }
  // A start must outlive the window: else a user typing steadily flickers on the receivers between refreshes.
  if (typeof env.TYPING_EXPIRES_MS === 'number' && typeof env.TYPING_COALESCE_MS === 'number' && env.TYPING_EXPIRES_MS <= env.TYPING_COALESCE_MS) {
    ctx.addIssue({ code: 'custom', path: ['TYPING_EXPIRES_MS'], message: 'must be greater than TYPING_COALESCE_MS', input: env.TYPING_EXPIRES_MS });
  }
});

function environment<T extends z.core.$ZodLooseShape>(shape: T) {
  return z.object(shape).check(crossChecks(new Set(Object.keys(shape))));
}

/** The environment of each function, by its name in the deploy manifest (deploy/routes.ts). */
export const functionEnvironments = {
  connect: environment({ ...base, ...dynamo, ...connections, ...roster, ...messages, ...positions, ...redis, ...tokens, ...handshake, ...delivery, ...conversationSize, ...presence, ...pushFlags }),
  disconnect: environment({ ...base, ...dynamo, ...connections, ...redis, ...presence }),
  default: environment({ ...base }),
  subscribe: environment({ ...base, ...dynamo, ...connections, ...roster, ...messages, ...positions, ...redis, ...appSecret, ...limits, ...subscriptions, ...delivery, ...conversationSize, ...presence, ...pushFlags }),
  unsubscribe: environment({ ...base, ...dynamo, ...connections, ...redis, ...limits, ...presence }),
  typing: environment({ ...base, ...dynamo, ...connections, ...roster, ...redis, ...limits, ...delivery, ...conversationSize, ...typingTimes, ...presence, ...budgets }),
  sendMessage: environment({ ...base, ...dynamo, ...connections, ...roster, ...messages, ...redis, ...appSecret, ...limits, ...delivery, ...presence, ...budgets, ...notifyQueue }),
  editMessage: environment({ ...base, ...dynamo, ...connections, ...roster, ...messages, ...redis, ...appSecret, ...limits, ...delivery, ...presence, ...budgets }),
  deleteMessage: environment({ ...base, ...dynamo, ...connections, ...roster, ...messages, ...redis, ...limits, ...delivery, ...presence, ...budgets }),
  ack: environment({ ...base, ...dynamo, ...connections, ...roster, ...messages, ...positions, ...redis, ...limits, ...presence }),
  getUnacked: environment({ ...base, ...dynamo, ...connections, ...roster, ...messages, ...positions, ...redis, ...appSecret, ...limits, ...presence }),
  getHistory: environment({ ...base, ...dynamo, ...connections, ...roster, ...messages, ...redis, ...appSecret, ...limits, ...presence }),
  markRead: environment({ ...base, ...dynamo, ...connections, ...roster, ...messages, ...redis, ...limits, ...delivery, ...presence }),
  getConversations: environment({ ...base, ...dynamo, ...connections, ...members, ...messages, ...redis, ...limits }),
  fanoutWorker: environment({ ...base, ...dynamo, ...connections, ...messages, ...appSecret, ...posting, TYPING_EXPIRES_MS: typingTimes.TYPING_EXPIRES_MS, ...ownCallback }),
  ping: environment({ ...base, ...dynamo, ...connections, ...roster, ...redis, ...limits, ...delivery, ...conversationSize, ...presence }),
  getPresence: environment({ ...base, ...dynamo, ...connections, ...roster, ...redis, ...limits, ...conversationSize, ...presence }),
  registerPush: environment({ ...base, ...dynamo, ...connections, ...members, ...positions, ...redis, ...limits, ...pushRegistration }),
  unregisterPush: environment({ ...base, ...dynamo, ...connections, ...redis, ...limits, PUSH_TARGETS_TABLE: pushRegistration.PUSH_TARGETS_TABLE }),
  notifier: environment({ ...base, ...dynamo, ...connections, ...messages, ...positions, ...appSecret, ...notifier }),
  presenceSweeper: environment({ ...base, ...dynamo, ...connections, ...roster, ...redis, ...delivery, ...conversationSize, ...presence, ...presenceSweep }),
  redisPasswordRotation: environment({ ...base, ...passwordRotation }),
  /** The custom resources of push (VAPID keys, SNS platform applications): what they act on comes with each event. */
  pushSetup: environment({ ...base, ...secrets }),
} as const;

export type FunctionName = keyof typeof functionEnvironments;
export type ConfigOf<F extends FunctionName> = z.output<(typeof functionEnvironments)[F]>;
/** Every variable any function reads. */
export type ConfigVariable = { [F in FunctionName]: keyof z.input<(typeof functionEnvironments)[F]> }[FunctionName];

/** The variables a function reads. */
export function variablesOf(name: FunctionName): readonly string[] {
  return Object.keys(functionEnvironments[name].shape);
}

/** The variables with no default: the stack must set every one of them for that function. */
export function requiredVariablesOf(name: FunctionName): readonly string[] {
  return Object.entries(functionEnvironments[name].shape)
    .filter(([, schema]) => !z.safeParse(schema, undefined).success)
    .map(([variable]) => variable);
}

/** Parses a function's environment; throws ConfigError naming every bad variable (never its value: it may be a secret). */
export function loadConfig<F extends FunctionName>(name: F, env: Readonly<Record<string, string | undefined>>): ConfigOf<F> {
  const schema: (typeof functionEnvironments)[F] = functionEnvironments[name];
  const parsed = z.safeParse(schema, env);
  // The schema is indexed by a generic name, so TypeScript cannot follow its output type through safeParse.
  if (parsed.success) return parsed.data as ConfigOf<F>;
  const problems = parsed.error.issues.map((issue) => {
    const variable = issue.path.map(String).join('.') || '(environment)';
    const missing = issue.code === 'invalid_type' && env[variable] === undefined;
    return missing ? `${variable} is missing` : `${variable}: ${issue.message}`;
  });
  throw new ConfigError(problems, { cause: parsed.error });
}

/** Schemas of the settings the stack also accepts as context values, so it cannot accept what a function rejects. */
export const settingSchemas = { LOG_LEVEL: base.LOG_LEVEL, ...limits, ...budgets } as const;

/** The membership limit of the tools that add members (local/admin.ts, local/members.ts), from their environment. */
export function loadMembershipLimit(env: Readonly<Record<string, string | undefined>>): number {
  const parsed = z.safeParse(z.object(membership), env);
  if (!parsed.success) throw new ConfigError(['MAX_CONVERSATION_MEMBERS: must be a positive integer'], { cause: parsed.error });
  return parsed.data.MAX_CONVERSATION_MEMBERS;
}
