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

export const contextSchema = z
  .object({
    /** Names the stack (`RelayWs-{stage}`) and the API stage; `prod` retains data on destroy. */
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
    redis: unsetOr(z.enum(['serverless', 'external'], { error: 'must be serverless or external' }).default('serverless')),
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
    if (ctx.redis === 'serverless' && ctx.redisUrlSecretArn !== undefined) {
      issues.addIssue({ code: 'custom', path: ['redisUrlSecretArn'], message: 'is only used with redis=external' });
    }
    // A JWKS signs tokens for many apps: without both, a token minted for another app would pass.
    if (ctx.jwtJwksUrl !== undefined) {
      for (const key of ['jwtIssuer', 'jwtAudience'] as const) {
        if (ctx[key] === undefined) issues.addIssue({ code: 'custom', path: [key], message: 'is required with jwtJwksUrl' });
      }
    }
    if (ctx.throttleBurst < ctx.throttleRate) {
      issues.addIssue({ code: 'custom', path: ['throttleBurst'], message: 'must be at least throttleRate' });
    }
    if (ctx.rateLimitBurst < ctx.rateLimitPerSecond) {
      issues.addIssue({ code: 'custom', path: ['rateLimitBurst'], message: 'must be at least rateLimitPerSecond' });
    }
  });

export type StackSettings = z.output<typeof contextSchema>;
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
  if (parsed.success) return parsed.data;
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
