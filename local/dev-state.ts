import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { appKeysFrom } from '../lambdas/secret.js';
import type { LocalBackend } from './backend.js';

/**
 * The dev server's files live in a user-private directory (0700): RELAY_WS_STATE_DIR, else
 * $XDG_STATE_HOME/relay-ws, else ~/.local/state/relay-ws. Never in the shared temp directory, where anyone on the
 * machine could read the secret or plant a file under a predictable name first.
 */
export function stateDirectory(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const given = env.RELAY_WS_STATE_DIR;
  if (given !== undefined && given !== '') return given;
  const xdg = env.XDG_STATE_HOME;
  const base = xdg !== undefined && xdg !== '' ? xdg : join(env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir(), '.local', 'state');
  return join(base, 'relay-ws');
}

const ownUid = typeof process.getuid === 'function' ? process.getuid() : undefined;

/** Fails on something that is not ours, a symlink, or not what we expect; tightens our own to `mode`. */
async function makePrivate(path: string, kind: 'directory' | 'file', mode: number): Promise<void> {
  const stats = await lstat(path);
  if (stats.isSymbolicLink() || (kind === 'directory' ? !stats.isDirectory() : !stats.isFile())) {
    throw new Error(`${path} is not a plain ${kind}: refusing to use it`);
  }
  if (ownUid !== undefined && stats.uid !== ownUid) throw new Error(`${path} belongs to another user: refusing to use it`);
  if ((stats.mode & 0o777) !== mode) await chmod(path, mode);
}

/** The state directory, created (0700) on first use. */
export async function privateDirectory(env: Readonly<Record<string, string | undefined>> = process.env): Promise<string> {
  const directory = stateDirectory(env);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  await makePrivate(directory, 'directory', 0o700);
  return directory;
}

/** A fresh secret for local development: a master key and a JWT secret of its own, 64 random characters each. */
export function newDevSecretJson(): string {
  const key = () => randomBytes(48).toString('base64url');
  return JSON.stringify({ masterKey: key(), jwtSecret: key() });
}

export interface DevSecret {
  json: string;
  path: string;
  /** True on the first start on this machine (the file was just written). */
  created: boolean;
}

/**
 * This machine's dev secret, generated on the first start and kept (0600) in the state directory, so tokens
 * minted by `npm run admin -- token` and messages in an external DynamoDB survive restarts — and no two machines
 * share a key, as they did with a published constant.
 */
export async function devSecret(env: Readonly<Record<string, string | undefined>> = process.env): Promise<DevSecret> {
  const path = join(await privateDirectory(env), 'dev-secret.json');
  let created = false;
  try {
    // `wx`: created only if absent, 0600 from the start (never a moment readable by others).
    const handle = await open(path, 'wx', 0o600);
    try {
      await handle.writeFile(newDevSecretJson());
    } finally {
      await handle.close();
    }
    created = true;
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
  }
  await makePrivate(path, 'file', 0o600);
  const json = (await readFile(path, 'utf8')).trim();
  // A damaged file says so (by field, never by value) instead of starting with keys nobody meant.
  appKeysFrom(json);
  return { json, path, created };
}

/** Whether a bind address reaches only this machine. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^127(\.\d{1,3}){3}$/.test(bare) || /^::ffff:127(\.\d{1,3}){3}$/.test(bare);
}

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

export function devStatePath(port: number | string, env: Readonly<Record<string, string | undefined>> = process.env): string {
  return join(stateDirectory(env), `dev-${port}.json`);
}

/** Tells admin CLIs of this user where the dev server `backend` keeps its data (0600, in the private directory). */
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
  await privateDirectory();
  const path = devStatePath(backend.port);
  await writeFile(path, JSON.stringify(state, null, 2), { mode: 0o600 });
  await makePrivate(path, 'file', 0o600);
}

export async function removeDevState(port: number): Promise<void> {
  await rm(devStatePath(port), { force: true });
}

/** The state of the dev server on `port`, or undefined if none is running there. */
export async function readDevState(port: number | string): Promise<DevState | undefined> {
  let value: unknown;
  try {
    // A damaged file is no dev server; JSON.parse's message would quote the secret it holds, so it is not kept.
    value = JSON.parse(await readFile(devStatePath(port), 'utf8'));
  } catch {
    return undefined;
  }
  const parsed = devStateSchema.safeParse(value);
  if (!parsed.success) return undefined;
  try {
    process.kill(parsed.data.pid, 0);
  } catch {
    return undefined;
  }
  return parsed.data;
}
