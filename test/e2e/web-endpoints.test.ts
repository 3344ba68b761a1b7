import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { jwtVerify } from 'jose';
import { DynamoMembershipStore } from '../../lambdas/adapters/dynamo-members.js';
import { appKeysFrom } from '../../lambdas/secret.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { documentClientOf } from '../support/durability.js';
import { uniqueId } from '../support/env.js';

/** The web page's dev endpoints: only on a backend started with `web: true`, and only for well-formed ids. */
let withPage: LocalBackend;
let plain: LocalBackend;
const http = (backend: LocalBackend, path: string, method = 'GET') => fetch(`http://127.0.0.1:${backend.port}${path}`, { method });

beforeAll(async () => {
  [withPage, plain] = await Promise.all([
    startLocalBackend({ redisUrl: inject('redisUrl'), web: true, env: { LOG_LEVEL: 'SILENT', MAX_CONVERSATION_MEMBERS: '2' } }),
    startLocalBackend({ redisUrl: inject('redisUrl'), env: { LOG_LEVEL: 'SILENT' } }),
  ]);
});

afterAll(async () => {
  await Promise.all([withPage?.close(), plain?.close()]);
});

describe('the web page endpoints of the local backend', () => {
  it('mints a token for the user that the backend accepts, with its WebSocket URL', async () => {
    // Act
    const response = await http(withPage, '/dev/token?user=carol');
    const answer = (await response.json()) as { token: string; url: string; userId: string };

    // Assess
    expect(response.status).toBe(200);
    expect(answer.url).toBe(withPage.url);
    const { payload } = await jwtVerify(answer.token, appKeysFrom(withPage.env.APP_SECRET_JSON ?? '').jwtSecret);
    expect(payload.sub).toBe('carol');
  });

  it('makes the user a member once, however often the page asks', async () => {
    // Prepare
    const conversationId = uniqueId('web-join');
    const db = documentClientOf(withPage);
    const members = new DynamoMembershipStore(db, withPage.tables.members);

    // Act
    const first = await http(withPage, `/dev/join?user=dave&conversation=${conversationId}`, 'POST');
    const again = await http(withPage, `/dev/join?user=dave&conversation=${conversationId}`, 'POST');

    // Assess
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(await members.isMember(conversationId, 'dave')).toBe(true);
    expect(await members.isMember(conversationId, 'erin')).toBe(false);
    db.destroy();
  });

  it('refuses a member beyond MAX_CONVERSATION_MEMBERS with 403, and still re-joins a current one', async () => {
    // Prepare: the page's backend allows 2 members.
    const conversationId = uniqueId('web-full');
    const db = documentClientOf(withPage);
    const members = new DynamoMembershipStore(db, withPage.tables.members);
    for (const user of ['dave', 'erin']) expect((await http(withPage, `/dev/join?user=${user}&conversation=${conversationId}`, 'POST')).status).toBe(200);

    // Act
    const refused = await http(withPage, `/dev/join?user=frank&conversation=${conversationId}`, 'POST');
    const rejoined = await http(withPage, `/dev/join?user=dave&conversation=${conversationId}`, 'POST');

    // Assess
    expect(refused.status).toBe(403);
    expect(JSON.stringify(await refused.json())).toMatch(/already has 2 members \(MAX_CONVERSATION_MEMBERS is 2\)/);
    expect(rejoined.status).toBe(200);
    expect(await members.list(conversationId)).toEqual(['dave', 'erin']);
    db.destroy();
  });

  it('refuses ids the protocol would refuse, and other methods', async () => {
    // Act
    const statuses = await Promise.all([
      http(withPage, '/dev/token?user=a%20b'),
      http(withPage, '/dev/token'),
      http(withPage, '/dev/join?user=dave&conversation=no/slash', 'POST'),
      http(withPage, '/dev/token?user=carol', 'DELETE'),
    ]).then((all) => all.map((r) => r.status));

    // Assess
    expect(statuses).toEqual([400, 400, 400, 405]);
  });

  it('does not exist without web: the page, its script and the token endpoint are not served', async () => {
    // Act
    const statuses = await Promise.all([http(plain, '/'), http(plain, '/app.js'), http(plain, '/dev/token?user=carol')]).then((all) => all.map((r) => r.status));

    // Assess
    expect(statuses.every((status) => status >= 400)).toBe(true);
  });

  it('serves the page and its bundled script from the client library', async () => {
    // Act
    const [page, script] = await Promise.all([http(withPage, '/'), http(withPage, '/app.js')]);
    const [html, js] = await Promise.all([page.text(), script.text()]);

    // Assess
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(html).toContain('data-testid="composer"');
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect(js).toContain('// client/index.ts');
    expect(js).toContain('RelayClient');
    expect(js).not.toMatch(/from ['"]/);
  });
});
