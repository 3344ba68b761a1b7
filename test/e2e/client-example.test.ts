import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';

/** The README's client example is a real file, and it runs against the local backend as printed. */
const EXAMPLE = 'client/examples/node.ts';
let backend: LocalBackend;

beforeAll(async () => {
  backend = await startLocalBackend({ redisUrl: inject('redisUrl'), web: true, env: { LOG_LEVEL: 'SILENT' } });
});

afterAll(async () => {
  await backend?.close();
});

describe('the client example', () => {
  it('is printed in the README exactly as it is in the repository', async () => {
    const [readme, example] = await Promise.all([readFile('README.md', 'utf8'), readFile(EXAMPLE, 'utf8')]);
    expect(readme).toContain('```ts\n' + example + '```');
    expect(example.trimEnd().split('\n').length).toBeLessThanOrEqual(18);
  });

  it('joins, connects, sends and closes against the local backend', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', EXAMPLE], {
      env: { ...process.env, RELAY_HTTP: `http://127.0.0.1:${backend.port}` },
      timeout: 60_000,
    });
    expect(stdout).toMatch(/^sent \{[\s\S]*type: 'sent'[\s\S]*conversationId: 'demo'[\s\S]*seq: 1\b/m);
  }, 90_000);
});
