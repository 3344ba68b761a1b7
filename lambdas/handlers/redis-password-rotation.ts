import { randomInt } from 'node:crypto';
import { DescribeUsersCommand, ElastiCacheClient, ModifyUserCommand, type User } from '@aws-sdk/client-elasticache';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import { Redis } from 'ioredis';
import * as z from 'zod/mini';
import '../zod.js';
import { bootLog, createLog } from '../adapters/log.js';
import { loadConfig } from '../config.js';
import { credentialsOption } from '../context/credentials.js';
import { lambdaHandler, type Route, type ServiceSource } from '../context/lazy.js';
import { RelayError, SecretError } from '../errors.js';
import type { Log } from '../ports.js';

/**
 * Secrets Manager's rotation of the ElastiCache app user's password (`{"username", "password"}`, lib/redis.ts).
 *
 * ElastiCache users hold up to two passwords, so no step ever cuts anyone off:
 * - createSecret: a new random password, stored as the AWSPENDING version (same username).
 * - setSecret: the user's passwords become [current, pending]. This also drops the password before the current
 *   one, which the previous rotation had kept.
 * - testSecret: the user is `active` again with both passwords, and (when the cache is reachable) AUTH works
 *   with each of them.
 * - finishSecret: AWSCURRENT moves to the new version (AWSPREVIOUS to the old one). The user keeps both
 *   passwords: a warm container that read the old one keeps reconnecting with it until the next rotation, and one
 *   still holding it then is refused once (WRONGPASS), re-reads the secret and reconnects
 *   (adapters/redis-credentials.ts). Dropping the old password here instead would refuse every warm container's
 *   next connection at once.
 *
 * Every step may run more than once (Secrets Manager retries a rotation that failed): each one first looks at
 * what is already done. Logs name the secret, the version and the step, never any part of a password.
 */

const STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;
export type RotationStep = (typeof STEPS)[number];

export const rotationEventSchema = z.object({
  Step: z.enum(STEPS),
  SecretId: z.string().check(z.minLength(1), z.maxLength(2048)),
  ClientRequestToken: z.string().check(z.minLength(32), z.maxLength(64)),
  RotationToken: z.optional(z.string()),
});
export type RotationEvent = z.output<typeof rotationEventSchema>;

/** Other keys of the secret are kept as they are (a new version differs only in its password). */
const credentialsSchema = z.looseObject({
  username: z.string().check(z.minLength(1)),
  password: z.string().check(z.minLength(16), z.maxLength(128)),
});
type Credentials = z.output<typeof credentialsSchema>;

/** AUTH passwords are 16-128 printable characters; letters and digits only, so they need no escaping in a URL. */
export const PASSWORD_LENGTH = 64;
const PASSWORD_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `length` characters drawn uniformly (randomInt is unbiased) from letters and digits. */
export function generatePassword(length = PASSWORD_LENGTH): string {
  let password = '';
  for (let i = 0; i < length; i += 1) password += PASSWORD_ALPHABET.charAt(randomInt(PASSWORD_ALPHABET.length));
  return password;
}

/** A rotation that cannot go on: the secret or the user is not in the state this step expects. */
export class RotationError extends RelayError {
  override readonly name = 'RotationError';
}

/** How long a step waits for the user to be `active` again after a ModifyUser, and how often it looks. */
export interface UserWait {
  pollMs: number;
  maxMs: number;
}
export const USER_WAIT: UserWait = { pollMs: 5_000, maxMs: 150_000 };
/** Time left unused at the end of an invocation, so a step fails with its own error rather than a timeout. */
const MARGIN_MS = 10_000;

/** AUTH as `credentials` and PING; rejects when refused or unreachable. */
export type AuthProbe = (url: string, credentials: { username: string; password: string }) => Promise<void>;

export interface RotationServices {
  log: Log;
  secrets: SecretsManagerClient;
  elasticache: ElastiCacheClient;
  /** The ElastiCache user whose passwords are rotated (its id, not its name). */
  userId: string;
  /** The cache, for testSecret's AUTH; undefined: the user's status and password count only. */
  redisUrl: string | undefined;
  userWait: UserWait;
  probe: AuthProbe;
}

interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/** One connection, no retries, no offline queue: a refused AUTH or an unreachable cache fails at once. */
export const probeAuth: AuthProbe = async (url, credentials) => {
  const client = new Redis(url, {
    username: credentials.username,
    password: credentials.password,
    lazyConnect: true,
    connectTimeout: 5_000,
    commandTimeout: 5_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // A refused AUTH closes the connection: the rejection then says only that, the error event says why (WRONGPASS).
  let refusal: unknown;
  client.on('error', (error: unknown) => {
    refusal ??= error;
  });
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    throw refusal ?? error;
  } finally {
    client.disconnect();
  }
};

export const route: Route<RotationServices, (event: unknown, context?: InvocationContext) => Promise<void>> = {
  async build(env, _scope, given = {}) {
    const config = loadConfig('redisPasswordRotation', env);
    const clientConfig = { region: config.AWS_REGION, ...credentialsOption(env) };
    return {
      log: given.log ?? createLog(config.LOG_LEVEL, 'relay-ws-redis-rotation'),
      secrets:
        given.secrets ??
        new SecretsManagerClient({ ...clientConfig, ...(config.SECRETS_ENDPOINT === undefined ? {} : { endpoint: config.SECRETS_ENDPOINT }) }),
      elasticache: given.elasticache ?? new ElastiCacheClient(clientConfig),
      userId: given.userId ?? config.REDIS_USER_ID,
      redisUrl: 'redisUrl' in given ? given.redisUrl : config.REDIS_URL,
      userWait: given.userWait ?? USER_WAIT,
      probe: given.probe ?? probeAuth,
    };
  },
  create: (services: ServiceSource<RotationServices>) => async (event, context) => {
    const parsed = z.safeParse(rotationEventSchema, event);
    if (!parsed.success) {
      bootLog.error('not a rotation event', { issues: parsed.error.issues.map((issue) => issue.path.join('.')) });
      throw new RotationError('not a Secrets Manager rotation event');
    }
    const built = await services();
    const deadline = Date.now() + Math.min(built.userWait.maxMs, (context?.getRemainingTimeInMillis() ?? Number.POSITIVE_INFINITY) - MARGIN_MS);
    const step = new Rotation(built, parsed.data, deadline);
    const fields = { step: parsed.data.Step, secretId: parsed.data.SecretId, version: parsed.data.ClientRequestToken };
    try {
      const outcome = await step.run();
      built.log.info('rotation step done', { ...fields, outcome });
    } catch (error) {
      // The name only: an SDK error's message is the service's, and this log must never risk quoting a value.
      built.log.error('rotation step failed', { ...fields, error: error instanceof Error ? error.name : typeof error });
      throw error;
    }
  },
};

/** What a step did, for its log line. */
type Outcome = 'created' | 'already-created' | 'set' | 'tested' | 'finished' | 'already-current';

class Rotation {
  private readonly secretId: string;
  private readonly token: string;

  constructor(
    private readonly services: RotationServices,
    private readonly event: RotationEvent,
    private readonly deadline: number,
  ) {
    this.secretId = event.SecretId;
    this.token = event.ClientRequestToken;
  }

  async run(): Promise<Outcome> {
    // The contract of a rotation function: rotation is on, and this version is the one being rotated to.
    const metadata = await this.services.secrets.send(new DescribeSecretCommand({ SecretId: this.secretId }));
    if (metadata.RotationEnabled !== true) throw new RotationError('rotation is not enabled on this secret');
    const stages = metadata.VersionIdsToStages?.[this.token];
    if (stages === undefined) throw new RotationError('this version has no stage for rotation');
    if (stages.includes('AWSCURRENT')) {
      // Done already (a retried finishSecret, or a version made current by hand): only tidy a leftover AWSPENDING.
      if (this.event.Step === 'finishSecret' && stages.includes('AWSPENDING')) await this.removePendingStage();
      return 'already-current';
    }
    if (!stages.includes('AWSPENDING')) throw new RotationError('this version is not AWSPENDING');
    switch (this.event.Step) {
      case 'createSecret':
        return await this.createSecret();
      case 'setSecret':
        return await this.setSecret();
      case 'testSecret':
        return await this.testSecret();
      case 'finishSecret':
        return await this.finishSecret(metadata.VersionIdsToStages ?? {});
    }
  }

  private async createSecret(): Promise<Outcome> {
    const current = await this.read('AWSCURRENT');
    // A retry finds the version it stored the first time, and keeps it: setSecret may already have set it.
    if ((await this.readPendingIfAny()) !== undefined) return 'already-created';
    let password = generatePassword();
    while (password === current.password) password = generatePassword();
    await this.services.secrets.send(
      new PutSecretValueCommand({
        SecretId: this.secretId,
        ClientRequestToken: this.token,
        SecretString: JSON.stringify({ ...current, password }),
        VersionStages: ['AWSPENDING'],
      }),
    );
    return 'created';
  }

  private async setSecret(): Promise<Outcome> {
    const current = await this.read('AWSCURRENT');
    const pending = await this.read('AWSPENDING');
    const user = await this.activeUser();
    if (user.UserName !== pending.username) throw new RotationError('the secret\'s username is not the ElastiCache user\'s name');
    // Both: connections opened with the current password keep working while every container moves to the new one.
    await this.services.elasticache.send(
      new ModifyUserCommand({
        UserId: this.services.userId,
        AuthenticationMode: { Type: 'password', Passwords: [current.password, pending.password] },
      }),
    );
    return 'set';
  }

  private async testSecret(): Promise<Outcome> {
    const current = await this.read('AWSCURRENT');
    const pending = await this.read('AWSPENDING');
    const user = await this.activeUser();
    if (user.Authentication?.Type !== 'password' || user.Authentication.PasswordCount !== 2) {
      throw new RotationError('the ElastiCache user does not hold both passwords (setSecret did not take effect)');
    }
    const url = this.services.redisUrl;
    if (url !== undefined) {
      for (const [which, credentials] of [['pending', pending], ['current', current]] as const) {
        try {
          await this.services.probe(url, { username: credentials.username, password: credentials.password });
        } catch (error) {
          throw new RotationError(`AUTH with the ${which} password failed`, { cause: error });
        }
      }
    }
    return 'tested';
  }

  private async finishSecret(versions: Record<string, string[]>): Promise<Outcome> {
    const currentVersion = Object.entries(versions).find(([, stages]) => stages.includes('AWSCURRENT'))?.[0];
    await this.services.secrets.send(
      new UpdateSecretVersionStageCommand({
        SecretId: this.secretId,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: this.token,
        ...(currentVersion === undefined ? {} : { RemoveFromVersionId: currentVersion }),
      }),
    );
    await this.removePendingStage();
    return 'finished';
  }

  private async removePendingStage(): Promise<void> {
    await this.services.secrets.send(
      new UpdateSecretVersionStageCommand({ SecretId: this.secretId, VersionStage: 'AWSPENDING', RemoveFromVersionId: this.token }),
    );
  }

  private async read(stage: 'AWSCURRENT' | 'AWSPENDING'): Promise<Credentials> {
    const value = await this.services.secrets.send(
      new GetSecretValueCommand({ SecretId: this.secretId, VersionStage: stage, ...(stage === 'AWSPENDING' ? { VersionId: this.token } : {}) }),
    );
    return credentialsOf(value.SecretString, stage);
  }

  private async readPendingIfAny(): Promise<Credentials | undefined> {
    try {
      return await this.read('AWSPENDING');
    } catch (error) {
      if (error instanceof Error && error.name === 'ResourceNotFoundException') return undefined;
      throw error;
    }
  }

  /** The user, once it is `active` (a ModifyUser leaves it `modifying` for a while); throws at the deadline. */
  private async activeUser(): Promise<User> {
    const { pollMs } = this.services.userWait;
    for (;;) {
      const described = await this.services.elasticache.send(new DescribeUsersCommand({ UserId: this.services.userId }));
      const user = described.Users?.find((candidate) => candidate.UserId === this.services.userId);
      if (user === undefined) throw new RotationError('the ElastiCache user does not exist');
      if (user.Status === 'active') return user;
      if (Date.now() + pollMs > this.deadline) throw new RotationError(`the ElastiCache user is still ${user.Status ?? 'in an unknown state'}`);
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }
}

/** `{"username", "password"}` from a secret string; the error names the stage, never any of the value. */
function credentialsOf(secretString: string | undefined, stage: string): Credentials {
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString ?? '');
  } catch {
    throw new SecretError(`the ${stage} Redis credentials are not JSON`);
  }
  const credentials = z.safeParse(credentialsSchema, parsed);
  if (!credentials.success) throw new SecretError(`the ${stage} Redis credentials need a "username" and a 16-128 character "password"`);
  return credentials.data;
}

export const handler = lambdaHandler(route);
