import { appKeysFrom } from '../../lambdas/secret.js';

export const TEST_SECRET_JSON = JSON.stringify({ masterKey: 'test-master-key-0123456789abcdefghijklmnopqrstuvwxyz' });
export const TEST_KEYS = appKeysFrom(TEST_SECRET_JSON);

/** A complete environment for the context, pointing Redis at the test server. */
export function completeEnv(redisUrl: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    CONNECTIONS_TABLE: 'connections-test',
    MEMBERS_TABLE: 'members-test',
    MESSAGES_TABLE: 'messages-test',
    IDEMPOTENCY_TABLE: 'idempotency-test',
    POSITIONS_TABLE: 'positions-test',
    PUSH_TARGETS_TABLE: 'push-targets-test',
    FANOUT_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/fanout-test',
    REDIS_URL: redisUrl,
    APP_SECRET_JSON: TEST_SECRET_JSON,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    LOG_LEVEL: 'SILENT',
    ...overrides,
  };
}

const saved = new Map<string, string | undefined>();

/** Sets process.env for a test file; restoreEnv() puts everything back. */
export function applyEnv(env: Record<string, string>): void {
  for (const [key, value] of Object.entries(env)) {
    if (!saved.has(key)) saved.set(key, process.env[key]);
    process.env[key] = value;
  }
}

export function restoreEnv(): void {
  for (const [key, value] of saved) {
    if (value === undefined) Reflect.deleteProperty(process.env, key);
    else process.env[key] = value;
  }
  saved.clear();
}

let counter = 0;
/** A conversation id no other test (or test process) uses. */
export function uniqueId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
