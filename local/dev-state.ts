import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { LocalBackend } from './backend.js';

/**
 * What a running dev server tells the admin CLI: where its DynamoDB and Redis are. One file per PORT, so two
 * dev servers side by side each have their own.
 */
const devStateSchema = z.object({
  pid: z.number(),
  url: z.string(),
  managementEndpoint: z.string(),
  stage: z.string(),
  dynamodbEndpoint: z.string(),
  tables: z.object({ connections: z.string(), members: z.string(), messages: z.string(), idempotency: z.string(), positions: z.string() }),
  /** Empty when the dev server runs without Redis. */
  redisUrl: z.string(),
  secretJson: z.string(),
});
export type DevState = z.infer<typeof devStateSchema>;

export function devStatePath(port: number | string): string {
  return join(tmpdir(), `relay-ws-dev-${port}.json`);
}

/** Tells admin CLIs on this machine where the dev server `backend` keeps its data. */
export async function writeDevState(backend: LocalBackend, secretJson: string): Promise<void> {
  const state: DevState = {
    pid: process.pid,
    url: backend.url,
    managementEndpoint: backend.managementEndpoint,
    stage: backend.stage,
    dynamodbEndpoint: backend.dynamodbEndpoint,
    tables: backend.tables,
    redisUrl: backend.redisUrl,
    secretJson,
  };
  await writeFile(devStatePath(backend.port), JSON.stringify(state, null, 2), { mode: 0o600 });
}

export async function removeDevState(port: number): Promise<void> {
  await rm(devStatePath(port), { force: true });
}

/** The state of the dev server on `port`, or undefined if none is running there. */
export async function readDevState(port: number | string): Promise<DevState | undefined> {
  let text: string;
  try {
    text = await readFile(devStatePath(port), 'utf8');
  } catch {
    return undefined;
  }
  const parsed = devStateSchema.safeParse(JSON.parse(text));
  if (!parsed.success) return undefined;
  try {
    process.kill(parsed.data.pid, 0);
  } catch {
    return undefined;
  }
  return parsed.data;
}
