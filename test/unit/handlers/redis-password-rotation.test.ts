import { randomUUID } from 'node:crypto';
import { DescribeUsersCommand, ElastiCacheClient, ModifyUserCommand, type ModifyUserCommandInput } from '@aws-sdk/client-elasticache';
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
  type GetSecretValueCommandInput,
  type PutSecretValueCommandInput,
  type UpdateSecretVersionStageCommandInput,
} from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Scope } from '../../../lambdas/context/lazy.js';
import {
  PASSWORD_LENGTH,
  RotationError,
  generatePassword,
  route,
  type AuthProbe,
  type RotationStep,
  type RotationServices,
} from '../../../lambdas/handlers/redis-password-rotation.js';
import type { Log } from '../../../lambdas/ports.js';

/**
 * The rotation function against stateful stand-ins of the two services (aws-sdk-client-mock): a secret with
 * versions and staging labels that behave as Secrets Manager's do, and an ElastiCache user that holds up to two
 * passwords and is `modifying` for a few looks after each ModifyUser.
 */
const SECRET_ID = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:RedisAuthSecret-AbCdEf';
const USER_ID = 'relay-ws-dev-app';
const INITIAL = { username: 'relay-app', password: 'Q7rTz0KpL3vX9mWc2HbN5sYd8FgJ1aUe4RiO6tVyZqXwPlMkNjBhGfDsAzXcVbNm' };

const secretsMock = mockClient(SecretsManagerClient);
const elasticacheMock = mockClient(ElastiCacheClient);

class NamedError extends Error {
  constructor(
    override readonly name: string,
    message: string,
  ) {
    super(message);
  }
}

interface Version {
  value: string | undefined;
  stages: string[];
}

/** Secrets Manager, as far as rotation sees it. */
class FakeSecret {
  readonly versions = new Map<string, Version>();
  rotationEnabled = true;

  constructor(initial: string) {
    this.versions.set(randomUUID(), { value: initial, stages: ['AWSCURRENT'] });
  }

  /** What RotateSecret does before it invokes createSecret: a version with AWSPENDING and no value yet. */
  startRotation(): string {
    const token = randomUUID();
    this.versions.set(token, { value: undefined, stages: ['AWSPENDING'] });
    return token;
  }

  versionWith(stage: string): [string, Version] | undefined {
    return [...this.versions.entries()].find(([, version]) => version.stages.includes(stage));
  }

  valueOf(stage: string): { username: string; password: string } {
    const value = this.versionWith(stage)?.[1].value;
    if (value === undefined) throw new Error(`no ${stage} value`);
    return JSON.parse(value) as { username: string; password: string };
  }

  describe() {
    return {
      RotationEnabled: this.rotationEnabled,
      VersionIdsToStages: Object.fromEntries([...this.versions].filter(([, v]) => v.stages.length > 0).map(([id, v]) => [id, [...v.stages]])),
    };
  }

  get(input: GetSecretValueCommandInput) {
    const found =
      input.VersionId === undefined ? this.versionWith(input.VersionStage ?? 'AWSCURRENT') : ([input.VersionId, this.versions.get(input.VersionId)] as const);
    const version = found?.[1];
    if (version?.value === undefined || (input.VersionStage !== undefined && !version.stages.includes(input.VersionStage))) {
      throw new NamedError('ResourceNotFoundException', "Secrets Manager can't find the specified secret value");
    }
    return { SecretString: version.value, VersionId: found?.[0] };
  }

  put(input: PutSecretValueCommandInput) {
    const token = input.ClientRequestToken ?? '';
    const existing = this.versions.get(token);
    if (existing?.value !== undefined && existing.value !== input.SecretString) throw new NamedError('ResourceExistsException', 'version exists');
    for (const stage of input.VersionStages ?? []) this.detach(stage);
    this.versions.set(token, { value: input.SecretString, stages: [...(existing?.stages.filter((s) => !(input.VersionStages ?? []).includes(s)) ?? []), ...(input.VersionStages ?? [])] });
    return {};
  }

  update(input: UpdateSecretVersionStageCommandInput) {
    const stage = input.VersionStage ?? '';
    const holder = this.versionWith(stage);
    if (input.MoveToVersionId !== undefined && holder !== undefined && holder[0] !== input.MoveToVersionId && holder[0] !== input.RemoveFromVersionId) {
      throw new NamedError('InvalidParameterException', `${stage} is attached to another version: name it in RemoveFromVersionId`);
    }
    if (input.RemoveFromVersionId !== undefined) {
      const from = this.versions.get(input.RemoveFromVersionId);
      if (from === undefined || !from.stages.includes(stage)) throw new NamedError('InvalidParameterException', `${stage} is not on that version`);
      from.stages = from.stages.filter((s) => s !== stage);
      if (stage === 'AWSCURRENT') {
        this.detach('AWSPREVIOUS');
        from.stages.push('AWSPREVIOUS');
      }
    }
    if (input.MoveToVersionId !== undefined) {
      const to = this.versions.get(input.MoveToVersionId);
      if (to === undefined) throw new NamedError('ResourceNotFoundException', 'no such version');
      if (!to.stages.includes(stage)) to.stages.push(stage);
      if (stage === 'AWSCURRENT') to.stages = to.stages.filter((s) => s !== 'AWSPREVIOUS');
    }
    return {};
  }

  private detach(stage: string): void {
    for (const version of this.versions.values()) version.stages = version.stages.filter((s) => s !== stage);
  }
}

/** The ElastiCache user: up to two passwords, `modifying` for `settleLooks` DescribeUsers after a ModifyUser. */
class FakeUser {
  passwords: string[] = [INITIAL.password];
  status = 'active';
  settleLooks = 2;
  looksLeft = 0;
  userName = INITIAL.username;

  modify(input: ModifyUserCommandInput) {
    if (this.status !== 'active') throw new NamedError('InvalidUserStateFault', 'User is not in active state');
    const passwords = input.AuthenticationMode?.Passwords ?? [];
    if (passwords.length < 1 || passwords.length > 2) throw new NamedError('InvalidParameterValueException', 'one or two passwords');
    this.passwords = [...passwords];
    this.status = 'modifying';
    this.looksLeft = this.settleLooks;
    return { UserId: USER_ID, Status: 'modifying' };
  }

  describe() {
    if (this.status === 'modifying' && this.looksLeft-- <= 0) this.status = 'active';
    return {
      Users: [{ UserId: USER_ID, UserName: this.userName, Status: this.status, Authentication: { Type: 'password' as const, PasswordCount: this.passwords.length } }],
    };
  }

  accepts(password: string): boolean {
    return this.passwords.includes(password);
  }
}

let secret: FakeSecret;
let user: FakeUser;
let lines: string[];
let probes: { username: string; password: string }[];
let probeRefuses: (password: string) => boolean;

const log: Log = {
  debug: (message, fields) => lines.push(JSON.stringify({ message, ...fields })),
  info: (message, fields) => lines.push(JSON.stringify({ message, ...fields })),
  warn: (message, fields) => lines.push(JSON.stringify({ message, ...fields })),
  error: (message, fields) => lines.push(JSON.stringify({ message, ...fields })),
};

const probe: AuthProbe = async (_url, credentials) => {
  probes.push(credentials);
  // AUTH against the fake user: what ElastiCache would answer.
  if (probeRefuses(credentials.password) || !user.accepts(credentials.password)) throw new NamedError('ReplyError', 'WRONGPASS invalid username-password pair');
};

async function handlerWith(overrides: Partial<RotationServices> = {}) {
  const services = await route.build({ REDIS_USER_ID: USER_ID, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' }, new Scope(), {
    log,
    userWait: { pollMs: 1, maxMs: 2_000 },
    probe,
    redisUrl: 'rediss://cache.example:6379',
    ...overrides,
  });
  return route.create(() => Promise.resolve(services));
}

const event = (step: RotationStep, token: string) => ({ Step: step, SecretId: SECRET_ID, ClientRequestToken: token, RotationToken: randomUUID() });

async function rotate(token: string, handler: Awaited<ReturnType<typeof handlerWith>>): Promise<void> {
  for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) await handler(event(step, token));
}

/** Every password the secret ever held, for the "never in a log" checks. */
const everyPassword = () => [...secret.versions.values()].flatMap((v) => (v.value === undefined ? [] : [(JSON.parse(v.value) as { password: string }).password]));

/** No 8 characters in a row of any password in `text`. */
function expectNoPasswordIn(text: string): void {
  for (const password of everyPassword()) {
    for (let i = 0; i + 8 <= password.length; i += 1) expect(text).not.toContain(password.slice(i, i + 8));
  }
}

beforeEach(() => {
  secret = new FakeSecret(JSON.stringify(INITIAL));
  user = new FakeUser();
  lines = [];
  probes = [];
  probeRefuses = () => false;
  secretsMock.on(DescribeSecretCommand).callsFake(() => secret.describe());
  secretsMock.on(GetSecretValueCommand).callsFake((input: GetSecretValueCommandInput) => secret.get(input));
  secretsMock.on(PutSecretValueCommand).callsFake((input: PutSecretValueCommandInput) => secret.put(input));
  secretsMock.on(UpdateSecretVersionStageCommand).callsFake((input: UpdateSecretVersionStageCommandInput) => secret.update(input));
  elasticacheMock.on(ModifyUserCommand).callsFake((input: ModifyUserCommandInput) => user.modify(input));
  elasticacheMock.on(DescribeUsersCommand).callsFake(() => user.describe());
});

afterEach(() => {
  secretsMock.reset();
  elasticacheMock.reset();
});

describe('generatePassword', () => {
  it('makes 64 letters and digits, different each time', () => {
    const passwords = new Set(Array.from({ length: 50 }, () => generatePassword()));
    expect(passwords.size).toBe(50);
    for (const password of passwords) expect(password).toMatch(new RegExp(`^[A-Za-z0-9]{${PASSWORD_LENGTH}}$`));
  });
});

describe('a whole rotation', () => {
  it('ends with the new password current, the old one previous, and the user holding both', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    await rotate(token, handler);

    const current = secret.valueOf('AWSCURRENT');
    expect(secret.versionWith('AWSCURRENT')?.[0]).toBe(token);
    expect(current.username).toBe('relay-app');
    expect(current.password).toMatch(/^[A-Za-z0-9]{64}$/);
    expect(current.password).not.toBe(INITIAL.password);
    expect(secret.valueOf('AWSPREVIOUS')).toEqual(INITIAL);
    expect(secret.versionWith('AWSPENDING')).toBeUndefined();
    // The overlap: a warm container with the old password still connects; a new one gets the new password.
    expect(user.passwords).toEqual([INITIAL.password, current.password]);
    // testSecret tried AUTH with both.
    expect(probes).toEqual([
      { username: 'relay-app', password: current.password },
      { username: 'relay-app', password: INITIAL.password },
    ]);
    expectNoPasswordIn(lines.join('\n'));
    expect(lines.filter((line) => line.includes('rotation step done'))).toHaveLength(4);
  });

  it('keeps the old password through one rotation and drops it in the next one\'s setSecret', async () => {
    const handler = await handlerWith();
    await rotate(secret.startRotation(), handler);
    const second = secret.valueOf('AWSCURRENT').password;

    const token = secret.startRotation();
    await handler(event('createSecret', token));
    await handler(event('setSecret', token));
    const third = secret.valueOf('AWSPENDING').password;
    expect(user.passwords).toEqual([second, third]);
    expect(user.accepts(INITIAL.password)).toBe(false);
    await handler(event('testSecret', token));
    await handler(event('finishSecret', token));
    expect(secret.valueOf('AWSCURRENT').password).toBe(third);
    expect(secret.valueOf('AWSPREVIOUS').password).toBe(second);
    expect(user.passwords).toEqual([second, third]);
    expectNoPasswordIn(lines.join('\n'));
  });

  it('works without a reachable cache: testSecret then checks the user only', async () => {
    const handler = await handlerWith({ redisUrl: undefined });
    await rotate(secret.startRotation(), handler);
    expect(probes).toEqual([]);
    expect(user.passwords).toHaveLength(2);
  });
});

describe('retries (Secrets Manager may call each step more than once)', () => {
  it('createSecret twice stores one new password, not two', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    await handler(event('createSecret', token));
    const first = secret.valueOf('AWSPENDING').password;
    await handler(event('createSecret', token));
    expect(secret.valueOf('AWSPENDING').password).toBe(first);
    expect(secretsMock.commandCalls(PutSecretValueCommand)).toHaveLength(1);
    expect(lines.some((line) => line.includes('already-created'))).toBe(true);
  });

  it('setSecret twice, the second while the user is still modifying: waits, then sets the same two passwords', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    await handler(event('createSecret', token));
    user.settleLooks = 5;
    await handler(event('setSecret', token));
    expect(user.status).toBe('modifying');
    await handler(event('setSecret', token));
    const pending = secret.valueOf('AWSPENDING').password;
    expect(user.passwords).toEqual([INITIAL.password, pending]);
    expect(elasticacheMock.commandCalls(ModifyUserCommand).map((call) => call.args[0].input)).toEqual([
      { UserId: USER_ID, AuthenticationMode: { Type: 'password', Passwords: [INITIAL.password, pending] } },
      { UserId: USER_ID, AuthenticationMode: { Type: 'password', Passwords: [INITIAL.password, pending] } },
    ]);
  });

  it('testSecret twice checks twice and changes nothing', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    await handler(event('createSecret', token));
    await handler(event('setSecret', token));
    await handler(event('testSecret', token));
    await handler(event('testSecret', token));
    expect(probes).toHaveLength(4);
    expect(secret.versionWith('AWSCURRENT')?.[0]).not.toBe(token);
  });

  it('finishSecret twice moves AWSCURRENT once; a finish cut off between its two calls is tidied by the retry', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    for (const step of ['createSecret', 'setSecret', 'testSecret'] as const) await handler(event(step, token));
    // The first finish moves AWSCURRENT, then fails before AWSPENDING is removed.
    secretsMock
      .on(UpdateSecretVersionStageCommand, { VersionStage: 'AWSPENDING' })
      .rejectsOnce(new NamedError('InternalServiceError', 'try again'))
      .callsFake((input: UpdateSecretVersionStageCommandInput) => secret.update(input));
    await expect(handler(event('finishSecret', token))).rejects.toThrow('try again');
    expect(secret.describe().VersionIdsToStages[token]).toEqual(['AWSPENDING', 'AWSCURRENT']);
    await handler(event('finishSecret', token));
    expect(secret.describe().VersionIdsToStages[token]).toEqual(['AWSCURRENT']);
    await handler(event('finishSecret', token));
    const moves = secretsMock.commandCalls(UpdateSecretVersionStageCommand).filter((call) => call.args[0].input.VersionStage === 'AWSCURRENT');
    expect(moves).toHaveLength(1);
    expect(secret.valueOf('AWSPREVIOUS')).toEqual(INITIAL);
  });

  it('a rotation that failed at testSecret and is retried from createSecret keeps its password and completes', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    probeRefuses = () => true;
    await handler(event('createSecret', token));
    await handler(event('setSecret', token));
    await expect(handler(event('testSecret', token))).rejects.toThrow(RotationError);
    const pending = secret.valueOf('AWSPENDING').password;
    probeRefuses = () => false;
    await rotate(token, handler);
    expect(secret.valueOf('AWSCURRENT').password).toBe(pending);
    expect(user.passwords).toEqual([INITIAL.password, pending]);
    expectNoPasswordIn(lines.join('\n'));
  });
});

describe('the rotation contract', () => {
  it('refuses a secret without rotation enabled', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    secret.rotationEnabled = false;
    await expect(handler(event('createSecret', token))).rejects.toThrow(/not enabled/);
    expect(secretsMock.commandCalls(PutSecretValueCommand)).toHaveLength(0);
  });

  it('refuses a version the secret does not have, or one that is not AWSPENDING', async () => {
    const handler = await handlerWith();
    await expect(handler(event('setSecret', randomUUID()))).rejects.toThrow(/no stage for rotation/);
    await rotate(secret.startRotation(), handler);
    const [previous] = secret.versionWith('AWSPREVIOUS') ?? [''];
    await expect(handler(event('setSecret', previous))).rejects.toThrow(/not AWSPENDING/);
    expect(elasticacheMock.commandCalls(ModifyUserCommand)).toHaveLength(1);
  });

  it('does nothing for a version that is already AWSCURRENT', async () => {
    const handler = await handlerWith();
    const [current] = secret.versionWith('AWSCURRENT') ?? [''];
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) await handler(event(step, current));
    expect(secretsMock.commandCalls(PutSecretValueCommand)).toHaveLength(0);
    expect(secretsMock.commandCalls(UpdateSecretVersionStageCommand)).toHaveLength(0);
    expect(elasticacheMock.commandCalls(ModifyUserCommand)).toHaveLength(0);
  });

  it('refuses what is not a rotation event', async () => {
    const handler = await handlerWith();
    await expect(handler({ Step: 'dropUser', SecretId: SECRET_ID, ClientRequestToken: randomUUID() })).rejects.toThrow(RotationError);
    await expect(handler({ Records: [] })).rejects.toThrow(RotationError);
    expect(secretsMock.calls()).toHaveLength(0);
  });
});

describe('testSecret and setSecret refuse to go on', () => {
  it('when the user does not hold both passwords (setSecret did not take effect)', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    await handler(event('createSecret', token));
    await expect(handler(event('testSecret', token))).rejects.toThrow(/both passwords/);
  });

  it('when the user stays modifying past the wait', async () => {
    const handler = await handlerWith({ userWait: { pollMs: 1, maxMs: 30 } });
    const token = secret.startRotation();
    await handler(event('createSecret', token));
    await handler(event('setSecret', token));
    user.looksLeft = Number.POSITIVE_INFINITY;
    user.status = 'modifying';
    await expect(handler(event('testSecret', token))).rejects.toThrow(/still modifying/);
  });

  it('when AUTH with the new password is refused, naming which password and none of it', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    await handler(event('createSecret', token));
    await handler(event('setSecret', token));
    const pending = secret.valueOf('AWSPENDING').password;
    probeRefuses = (password) => password === pending;
    const failure = await handler(event('testSecret', token)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(RotationError);
    expect(failure instanceof Error ? failure.message : '').toBe('AUTH with the pending password failed');
    expectNoPasswordIn(`${String(failure)}\n${lines.join('\n')}`);
    expect(secret.versionWith('AWSCURRENT')?.[0]).not.toBe(token);
  });

  it('when the secret\'s username is not the ElastiCache user\'s', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    await handler(event('createSecret', token));
    user.userName = 'someone-else';
    await expect(handler(event('setSecret', token))).rejects.toThrow(/username/);
    expect(elasticacheMock.commandCalls(ModifyUserCommand)).toHaveLength(0);
  });

  it('when a stored value is malformed, without quoting it', async () => {
    const handler = await handlerWith();
    const token = secret.startRotation();
    const [currentId, current] = secret.versionWith('AWSCURRENT') ?? ['', { value: '', stages: [] }];
    secret.versions.set(currentId, { ...current, value: JSON.stringify({ username: 'relay-app', password: 'short-leaky' }) });
    const failure = await handler(event('createSecret', token)).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(String(failure)).toMatch(/AWSCURRENT Redis credentials need/);
    expect(`${String(failure)}${lines.join('')}`).not.toContain('leaky');
  });
});
