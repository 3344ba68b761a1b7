import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { z } from 'zod';
import { settingSchemas } from '../lambdas/config.js';

/**
 * Every context value the stack reads (`-c key=value` or cdk.json), validated in one place. Values from the
 * command line arrive as strings, values from cdk.json as JSON, so numbers and flags accept both.
 */
const RETENTION_CHOICES = Object.values(RetentionDays).filter((v): v is number => typeof v === 'number');

/** `-c key=` (empty) means "not set", so it falls back to the default instead of failing. */
const unsetIfEmpty = (value: unknown) => (value === '' || value === null ? undefined : value);
const optional = <T extends z.ZodType>(schema: T) => z.preprocess(unsetIfEmpty, schema.optional());
const unsetOr = <T extends z.core.$ZodType>(schema: T) => z.preprocess(unsetIfEmpty, schema);

const flag = z
  .union([z.boolean(), z.enum(['true', 'false'])], { error: 'must be true or false' })
  .transform((v) => v === true || v === 'true');

const secretArn = z
  .string()
  .regex(
    /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/,
    'must be the complete ARN of a Secrets Manager secret (ending in its 6-character suffix)',
  );

/** An SNS platform application for APNs (token or certificate, sandbox or production) or FCM ("GCM"). */
const platformArn = (platforms: string) =>
  z
    .string()
    .regex(new RegExp(`^arn:aws[a-z-]*:sns:[a-z0-9-]+:\\d{12}:app/(${platforms})/[A-Za-z0-9_.-]+$`), `must be the ARN of an SNS platform application (${platforms.replace('|', ' or ')})`);

export const contextSchema = z
  .object({
    /** Names the stack (`RelayWs-{stage}`) and the API stage. */
    stage: unsetOr(
      z
        .string()
        .regex(/^[a-z][a-z0-9-]{0,19}$/, 'must be 1-20 lowercase letters, digits or hyphens, starting with a letter')
        .default('dev'),
    ),
    logRetentionDays: unsetOr(
      z.coerce
        .number()
        .refine((days) => RETENTION_CHOICES.includes(days), `must be one of ${RETENTION_CHOICES.join(', ')}`)
        .default(30),
    ),
    /** Default route throttling of the stage (requests per second, steady and burst). */
    throttleRate: unsetOr(z.coerce.number().positive().max(10_000).default(500)),
    throttleBurst: unsetOr(z.coerce.number().int().positive().max(5_000).default(1_000)),
    /**
     * Keep the data (tables, app secret, logs; a final Redis snapshot) when the stack is destroyed. Unset: true
     * for the stage named `prod`, false for any other (see `parseSettings`).
     */
    retainData: optional(flag),
    redis: unsetOr(z.enum(['serverless', 'external'], { error: 'must be serverless or external' }).default('serverless')),
    /**
     * With `redis=serverless`: NAT gateways of the VPC, 1 (shared by both AZs: cheaper, but an AZ outage there
     * cuts the other AZ's functions off) or 2 (one per AZ). Unset: 1.
     */
    natGateways: optional(
      z.coerce
        .number()
        .refine((n) => n === 1 || n === 2, 'must be 1 (one shared NAT gateway) or 2 (one per Availability Zone)'),
    ),
    /** With `redis=external`: the secret whose value is the Redis URL (it may carry a password). */
    redisUrlSecretArn: optional(secretArn),
    /** Days messages stay readable (a TTL on the message log); unset = keep forever. */
    historyRetentionDays: optional(z.coerce.number().int().positive().max(36_500)),
    maxReceiveCount: unsetOr(z.coerce.number().int().min(1).max(1_000).default(5)),
    alarmEmail: optional(z.email({ error: 'must be an e-mail address' })),
    jwtJwksUrl: optional(z.url({ protocol: /^https$/, error: 'must be an https URL' })),
    jwtIssuer: optional(z.string().trim().min(1)),
    jwtAudience: optional(z.string().trim().min(1)),
    /** Comma-separated allowed Origin values for $connect (empty: any origin). */
    originAllowList: optional(z.string()),
    /** The functions' own settings reuse the function config schema, so the stack cannot accept what they reject. */
    logLevel: unsetOr(settingSchemas.LOG_LEVEL),
    rateLimitPerSecond: unsetOr(settingSchemas.RATE_LIMIT_PER_SECOND),
    rateLimitBurst: unsetOr(settingSchemas.RATE_LIMIT_BURST),
    tracing: unsetOr(flag.default(false)),
    /**
     * The account's API Gateway request quota (10,000 requests/s by default, shared by every API in the account and
     * region; each @connections post counts), and the share of it the fan-out worker may spend.
     */
    callbackQuotaPerSecond: unsetOr(z.coerce.number().int().positive().max(1_000_000).default(10_000)),
    callbackQuotaShare: unsetOr(z.coerce.number().positive().max(1).default(0.5)),
    /**
     * Posts per second one worker invocation can make: 1,938 is the poster's measured rate at 32 in flight with a
     * whole CPU (BENCHMARKS.md); a 512 MB Lambda has less, so the worker count derived from it errs low.
     */
    workerPostsPerSecond: unsetOr(z.coerce.number().positive().max(100_000).default(1_938)),
    /** ElastiCache Serverless usage limits: stored data (GB) and ECPUs per second, so cost cannot run away. */
    cacheMaxDataStorageGb: unsetOr(z.coerce.number().int().min(1).max(5_000).default(5)),
    cacheMaxEcpuPerSecond: unsetOr(z.coerce.number().int().min(1_000).max(15_000_000).default(50_000)),
    /**
     * With `redis=serverless`: days between rotations of the ElastiCache app user's password (Secrets Manager allows
     * 1-1000). The previous password stays valid until the next rotation, so this is also how long a leaked one lasts.
     */
    redisPasswordRotationDays: unsetOr(z.coerce.number().int().min(1).max(1_000).default(30)),
    /**
     * Push notifications (docs/deploy.md, "Push notifications"): the SNS platform applications APNs and FCM pushes
     * go through (made from their credentials in Secrets Manager; unset: that kind of target is refused), Web Push
     * previews (off: a push carries ids and a count only), and the Web Push hosts allowed (default: the big four).
     */
    pushApnsPlatformArn: optional(platformArn('APNS|APNS_SANDBOX')),
    pushFcmPlatformArn: optional(platformArn('GCM')),
    /**
     * Or: the stack makes the SNS platform applications itself from the operator's credentials secrets (JSON; see
     * docs/deploy.md), APNs in the sandbox with pushApnsSandbox; pushCredentialsVersion changed = re-read them.
     */
    pushApnsCredentialsSecretArn: optional(secretArn),
    pushApnsSandbox: unsetOr(flag.default(false)),
    pushFcmCredentialsSecretArn: optional(secretArn),
    pushCredentialsVersion: optional(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, dots, hyphens or underscores')),
    /** The VAPID subject push services may contact the sender at (`mailto:` or `https:`; Apple refuses localhost). */
    pushVapidSubject: unsetOr(
      z
        .string()
        .regex(/^(mailto:[^@\s]+@[^@\s]+|https:\/\/\S+)$/, 'must be a mailto: address or an https: URL')
        .default('mailto:webpush@example.com'),
    ),
    pushPreview: unsetOr(flag.default(false)),
    pushWebAllowedHosts: optional(z.string().regex(/^[A-Za-z0-9*.,-]+$/, 'must be comma-separated host names (*. for subdomains)')),
    /**
     * WebSocket access logs need API Gateway's account-level CloudWatch role; set false when the account
     * already has one managed elsewhere.
     */
    apiGatewayCloudWatchRole: unsetOr(flag.default(true)),
  })
  .superRefine((ctx, issues) => {
    if (ctx.redis === 'external' && ctx.redisUrlSecretArn === undefined) {
      issues.addIssue({
        code: 'custom',
        path: ['redisUrlSecretArn'],
        message:
          'is required with redis=external: create the secret (its value is the Redis URL) and pass its ARN',
      });
    }
    if (ctx.redis === 'external' && ctx.natGateways !== undefined) {
      issues.addIssue({ code: 'custom', path: ['natGateways'], message: 'is only used with redis=serverless (external Redis needs no VPC)' });
    }
    if (ctx.redis === 'serverless' && ctx.redisUrlSecretArn !== undefined) {
      issues.addIssue({ code: 'custom', path: ['redisUrlSecretArn'], message: 'is only used with redis=external' });
    }
    // A JWKS signs tokens for many apps: without both, a token minted for another app would pass.
    if (ctx.jwtJwksUrl !== undefined) {
      for (const key of ['jwtIssuer', 'jwtAudience'] as const) {
        if (ctx[key] === undefined) issues.addIssue({ code: 'custom', path: [key], message: 'is required with jwtJwksUrl' });
      }
    }
    // One source per platform: an application of the operator's, or one the stack makes from their credentials.
    for (const [arn, secret] of [
      ['pushApnsPlatformArn', 'pushApnsCredentialsSecretArn'],
      ['pushFcmPlatformArn', 'pushFcmCredentialsSecretArn'],
    ] as const) {
      if (ctx[arn] !== undefined && ctx[secret] !== undefined) {
        issues.addIssue({ code: 'custom', path: [secret], message: `give ${arn} (an existing platform application) or ${secret} (the stack makes one), not both` });
      }
    }
    if (ctx.pushApnsSandbox && ctx.pushApnsCredentialsSecretArn === undefined) {
      issues.addIssue({ code: 'custom', path: ['pushApnsSandbox'], message: 'is only used with pushApnsCredentialsSecretArn (an existing application says its own platform)' });
    }
    if (ctx.throttleBurst < ctx.throttleRate) {
      issues.addIssue({ code: 'custom', path: ['throttleBurst'], message: 'must be at least throttleRate' });
    }
    if (ctx.rateLimitBurst < ctx.rateLimitPerSecond) {
      issues.addIssue({ code: 'custom', path: ['rateLimitBurst'], message: 'must be at least rateLimitPerSecond' });
    }
  });

/** The settings, with the defaults that depend on other values resolved. */
export type StackSettings = Omit<z.output<typeof contextSchema>, 'retainData' | 'natGateways'> & {
  retainData: boolean;
  natGateways: 1 | 2;
};

/** The SQS event source's bounds on MaximumConcurrency. */
export const WORKER_CONCURRENCY_RANGE = { min: 2, max: 1_000 } as const;

/**
 * How many fan-out workers may run at once so their posts stay within the configured share of the callback
 * quota: floor(quota × share / posts per second of one worker), within the event source's bounds (at least 2).
 */
export function workerMaxConcurrency(settings: Pick<StackSettings, 'callbackQuotaPerSecond' | 'callbackQuotaShare' | 'workerPostsPerSecond'>): number {
  const fits = Math.floor((settings.callbackQuotaPerSecond * settings.callbackQuotaShare) / settings.workerPostsPerSecond);
  return Math.min(WORKER_CONCURRENCY_RANGE.max, Math.max(WORKER_CONCURRENCY_RANGE.min, fits));
}
export type ContextKey = keyof z.input<typeof contextSchema>;

export const CONTEXT_KEYS = Object.keys(contextSchema.shape) as ContextKey[];

export class ContextError extends Error {
  override readonly name = 'ContextError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid CDK context:\n  ${problems.join('\n  ')}\n(see docs/deploy.md, "Context values")`);
  }
}

/** Parses the context values from a plain object (tests) — the same rules as `readSettings`. */
export function parseSettings(context: Partial<Record<ContextKey, unknown>>): StackSettings {
  const parsed = contextSchema.safeParse(context);
  if (parsed.success) {
    const { retainData, natGateways, ...rest } = parsed.data;
    // Retention follows the stage name only when it is not said: a stage named otherwise can keep its data too.
    return { ...rest, retainData: retainData ?? rest.stage === 'prod', natGateways: natGateways === 2 ? 2 : 1 };
  }
  throw new ContextError(
    parsed.error.issues.map((issue) => {
      const key = issue.path.map(String).join('.');
      const given = key === '' ? undefined : context[key as ContextKey];
      const shown = given === undefined ? '' : `=${JSON.stringify(given)}`;
      return `-c ${key}${shown}: ${issue.message}`;
    }),
  );
}

/** Reads and validates every context value the stack uses; a bad one stops synthesis with a clear message. */
export function readSettings(scope: Construct): StackSettings {
  const context: Partial<Record<ContextKey, unknown>> = {};
  for (const key of CONTEXT_KEYS) context[key] = scope.node.tryGetContext(key);
  return parseSettings(context);
}

export { stackNameFor } from './outputs.js';
