import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { TokenVerifier } from '../../lambdas/auth.js';
import { appKeysFrom } from '../../lambdas/secret.js';
import { runAdmin, UsageError } from '../../local/admin.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { removeDevState, writeDevState } from '../../local/dev-state.js';
import { refusedStatus } from '../../local/gateway/testing.js';
import { ChatClient, connectUrl } from '../support/chat.js';
import { applyEnv, restoreEnv, uniqueId } from '../support/env.js';

let backend: LocalBackend;
let members: DynamoMembershipStore;
let db: DynamoDBDocumentClient;

let stateDir: string;

beforeAll(async () => {
  // The dev state goes to a directory of this test's own, never the user's real one.
  stateDir = mkdtempSync(join(tmpdir(), 'relay-ws-admin-test-'));
  applyEnv({ RELAY_WS_STATE_DIR: stateDir });
  backend = await startLocalBackend({ redisUrl: inject('redisUrl'), env: { LOG_LEVEL: 'SILENT' } });
  await writeDevState(backend, backend.env.APP_SECRET_JSON ?? '');
  applyEnv({ PORT: String(backend.port) });
  Reflect.deleteProperty(process.env, 'STAGE');
  db = DynamoDBDocumentClient.from(new DynamoDBClient({ endpoint: backend.dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }));
  members = new DynamoMembershipStore(db, backend.tables.members);
});

afterAll(async () => {
  db.destroy();
  await removeDevState(backend.port);
  restoreEnv();
  await backend.close();
  rmSync(stateDir, { recursive: true, force: true });
});

async function admin(...argv: string[]): Promise<string> {
  const lines: string[] = [];
  await runAdmin(argv, (line) => lines.push(line));
  return lines.join('\n');
}

describe('npm run admin against a running dev server', () => {
  it('adds a member who can then connect with a minted token, and removes them', async () => {
    const conversationId = uniqueId('adm');
    expect(await admin('add-member', conversationId, 'carol')).toMatch(/added carol/);
    expect(await members.isMember(conversationId, 'carol')).toBe(true);

    const token = await admin('token', 'carol', '--ttl', '15m');
    const check = await new TokenVerifier({ hmacSecrets: appKeysFrom(backend.env.APP_SECRET_JSON ?? '').jwtSecrets, maxTokenAgeSeconds: 86_400 }).verify(token);
    expect(check).toEqual({ ok: true, userId: 'carol', expiresAt: expect.any(Number) });
    const carol = await ChatClient.connect(backend, conversationId, 'carol', 'phone');

    // Removal also cuts carol's open connection off the conversation: it is told, and its subscription is gone
    // (the connection itself stays open for her other conversations).
    expect(await admin('remove-member', conversationId, 'carol')).toMatch(/removed carol .*unsubscribed 1 open connection;/);
    expect(await carol.waitFor((f) => f.type === 'unsubscribed')).toEqual({
      type: 'unsubscribed',
      conversations: [{ conversationId, status: 'forbidden' }],
    });
    expect(await carol.request({ action: 'getHistory', conversationId }, 'history')).toMatchObject({ type: 'error', code: 'forbidden' });
    expect(await members.isMember(conversationId, 'carol')).toBe(false);
    await carol.close();
    expect(await refusedStatus(connectUrl(backend, { token, conversationId, clientId: 'phone' }))).toBe(403);
  });

  it('refuses bad usage clearly', async () => {
    await expect(admin('bogus')).rejects.toBeInstanceOf(UsageError);
    await expect(admin('add-member', 'bad id!', 'x')).rejects.toThrow(/conversationId/);
    await expect(admin('add-member', 'c1')).rejects.toThrow(/missing <userId>/);
    await expect(admin('token', 'x', '--ttl', 'soon')).rejects.toThrow(/invalid TTL/);
    // Longer than the backend's MAX_TOKEN_AGE_SECONDS (24 h): it would be refused at connect, so none is printed.
    await expect(admin('token', 'x', '--ttl', '7d')).rejects.toThrow(/--ttl must be between 1s and 86400s/);
    await expect(admin('token', 'x', '--ttl', '0')).rejects.toBeInstanceOf(UsageError);
    expect(await admin('token', 'x', '--ttl', '1d')).toMatch(/^ey/);
    expect(await admin()).toMatch(/Usage/);
  });

  it('says so when no dev server runs on PORT and no STAGE is set', async () => {
    applyEnv({ PORT: '1' });
    try {
      await expect(admin('token', 'x')).rejects.toThrow(/no dev server is running on port 1/);
    } finally {
      applyEnv({ PORT: String(backend.port) });
    }
  });
});
