import * as z from 'zod/mini';
import './zod.js';

/**
 * The environment every function reads, as one zod schema. `loadConfig` names each missing or invalid
 * variable, so a half-configured function fails loudly at context build instead of at its first event.
 */
const blankAsUnset = (value: string | undefined) => (value === undefined || value.trim() === '' ? undefined : value.trim());
const positiveInt = (fallback: number) => z._default(z.coerce.number().check(z.int(), z.positive()), fallback);
const optionalText = z.pipe(z.optional(z.string()), z.transform(blankAsUnset));
const optionalUrl = z.pipe(optionalText, z.optional(z.url()));
const flag = z.pipe(
  z._default(z.enum(['true', 'false', '1', '0', '']), 'false'),
  z.transform((v) => v === 'true' || v === '1'),
);
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

export const configSchema = z
  .object({
    CONNECTIONS_TABLE: z.string().check(z.minLength(1)),
    MEMBERS_TABLE: z.string().check(z.minLength(1)),
    FANOUT_QUEUE_URL: z.url(),
    /** Plain Redis URL (ElastiCache endpoint, local server). Exactly one of REDIS_URL / REDIS_URL_SECRET_ID. */
    REDIS_URL: optionalText,
    /** Secrets Manager id of a secret whose value is the Redis URL (external Redis with a password). */
    REDIS_URL_SECRET_ID: optionalText,
    /** `cluster` for ElastiCache Serverless / cluster-mode Redis, `standalone` otherwise. */
    REDIS_MODE: z._default(z.enum(['standalone', 'cluster']), 'standalone'),
    /** Secrets Manager id of the app secret (see secret.ts). Exactly one of APP_SECRET_ID / APP_SECRET_JSON. */
    APP_SECRET_ID: optionalText,
    /** The same JSON inline, for local development only. */
    APP_SECRET_JSON: optionalText,
    JWT_JWKS_URL: optionalUrl,
    JWT_ISSUER: optionalText,
    JWT_AUDIENCE: optionalText,
    /** Management API base URL for custom domains or the local gateway; else https://{domainName}/{stage}. */
    CALLBACK_URL: optionalUrl,
    /** Comma-separated allowed `Origin` values for $connect; empty = any origin (native apps send none). */
    ORIGIN_ALLOW_LIST: csv,
    RATE_LIMIT_PER_SECOND: positiveInt(20),
    RATE_LIMIT_BURST: positiveInt(40),
    RETENTION_SECONDS: positiveInt(7 * 24 * 3600),
    /** Connections older than this are treated as gone even if TTL has not removed their row yet. */
    CONNECTION_TTL_SECONDS: positiveInt(3 * 3600),
    FANOUT_THRESHOLD: positiveInt(100),
    FANOUT_BATCH_SIZE: positiveInt(100),
    POST_CONCURRENCY: positiveInt(32),
    MAX_PENDING_PER_DEVICE: positiveInt(10_000),
    LOG_LEVEL: logLevel,
    /** Local endpoints (dynalite, local SQS); unset in AWS. */
    DYNAMODB_ENDPOINT: optionalUrl,
    SQS_ENDPOINT: optionalUrl,
    SECRETS_ENDPOINT: optionalUrl,
    AWS_REGION: z._default(z.string().check(z.minLength(1)), 'us-east-1'),
    /** Set by the local backend; never needed in AWS. */
    LOCAL_MODE: flag,
  })
  .check(
    z.superRefine((env, ctx) => {
      const exactlyOne = (a: 'REDIS_URL' | 'APP_SECRET_ID', b: 'REDIS_URL_SECRET_ID' | 'APP_SECRET_JSON') => {
        const count = (env[a] === undefined ? 0 : 1) + (env[b] === undefined ? 0 : 1);
        if (count !== 1) {
          ctx.addIssue({
            code: 'custom',
            path: [a],
            message: count === 0 ? `set ${a} or ${b}` : `set only one of ${a} and ${b}`,
            input: undefined,
          });
        }
      };
      exactlyOne('REDIS_URL', 'REDIS_URL_SECRET_ID');
      exactlyOne('APP_SECRET_ID', 'APP_SECRET_JSON');
      if (env.RATE_LIMIT_BURST < env.RATE_LIMIT_PER_SECOND) {
        ctx.addIssue({ code: 'custom', path: ['RATE_LIMIT_BURST'], message: 'must be at least RATE_LIMIT_PER_SECOND', input: env.RATE_LIMIT_BURST });
      }
    }),
  );

export type Config = z.output<typeof configSchema>;

/** Variables with no default: every function that builds the context must have them set (the stack test reads this). */
export const requiredVariables: readonly string[] = Object.entries(configSchema.shape)
  .filter(([, schema]) => !z.safeParse(schema, undefined).success)
  .map(([name]) => name);

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly problems: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`invalid configuration: ${problems.join('; ')}`, options);
  }
}

/** Parses the environment; throws ConfigError naming every bad variable (never its value: it may be a secret). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const name = issue.path.map(String).join('.') || '(environment)';
    const missing = issue.code === 'invalid_type' && env[name] === undefined;
    return missing ? `${name} is missing` : `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems, { cause: parsed.error });
}
