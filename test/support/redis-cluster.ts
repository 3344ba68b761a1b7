import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, waitForRedis } from '../../local/redis-server.js';

/**
 * A real 3-master Redis Cluster (no replicas) of throwaway `redis-server` processes on loopback, for tests that
 * must see what a cluster does and a single server does not: MOVED and ASK redirections, "non local key" and
 * CROSSSLOT refusals, TRYAGAIN while a slot migrates, CLUSTERDOWN while a master is gone.
 */
export interface ClusterNode {
  host: string;
  port: number;
}

export interface MigrateOptions {
  /** Runs while the slot is half-migrated: half its keys moved, the slot MIGRATING on its owner, IMPORTING on the target. */
  pauseBetweenSteps?: () => Promise<void>;
}

export interface RedisClusterHarness {
  /** The first node's address: enough for a cluster client to discover the others. */
  url: string;
  nodes: ClusterNode[];
  /** Moves the slot of `key` from its owner to another node, key by key, the way `redis-cli --cluster reshard` does. */
  migrateSlotOf(key: string, options?: MigrateOptions): Promise<void>;
  /** The node serving the slot of `key` now. */
  ownerOf(key: string): Promise<ClusterNode>;
  /** Stops a node (SIGTERM); its slots are unserved until startNode. */
  stopNode(port: number): Promise<void>;
  /**
   * Freezes a node (SIGSTOP): its connections stay open and nothing answers, as a node whose host or network hangs
   * looks to a client. The others mark it failed after the node timeout (CLUSTERDOWN: there are no replicas).
   */
  pauseNode(port: number): void;
  /** Lets a paused node run again (SIGCONT); resolves once every node reports cluster_state:ok. */
  resumeNode(port: number): Promise<void>;
  /** Restarts a stopped node from its nodes.conf and waits until every node reports cluster_state:ok again. */
  startNode(port: number): Promise<void>;
  /** Kills every node and removes their directory. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /**
   * `cluster-node-timeout`: how soon the others mark a stopped master failed (and answer CLUSTERDOWN), and about
   * half of how long they keep it failed once it is back. Short, so a test can stop and restart a node quickly.
   * @default 1000
   */
  nodeTimeoutMs?: number;
}

const HOST = '127.0.0.1';
const run = promisify(execFile);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'relay-redis-cluster-'));
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
  const processes = new Map<number, ChildProcess>();
  // The bus port is chosen too: the default (port + 10000) can be taken, or above 65535.
  const [ports, busPorts] = await distinctFreePorts(3);
  const busPortOf = new Map(ports.map((port, i) => [port, busPorts[i] ?? 0]));

  const launch = async (port: number) => {
    const child = spawn(
      'redis-server',
      [
        '--port', String(port),
        '--cluster-port', String(busPortOf.get(port) ?? 0),
        '--bind', HOST,
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', String(nodeTimeoutMs),
        '--save', '',
        '--appendonly', 'no',
        '--dir', dir,
        '--logfile', join(dir, `redis-${port}.log`),
      ],
      { stdio: 'ignore' },
    );
    processes.set(port, child);
    const exited = new Promise<never>((_, reject) => {
      child.once('error', (error) => reject(new Error(`cannot start redis-server: ${error.message}`)));
      child.once('exit', (code) => reject(new Error(`redis-server on ${port} exited with code ${String(code)}`)));
    });
    exited.catch(() => undefined);
    await Promise.race([waitForRedis(`redis://${HOST}:${port}`), exited]);
  };

  const kill = async (port: number, signal: NodeJS.Signals) => {
    const child = processes.get(port);
    processes.delete(port);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  };

  const stop = async () => {
    await Promise.all([...processes.keys()].map((port) => kill(port, 'SIGKILL')));
    await rm(dir, { recursive: true, force: true });
  };

  const waitUntilOk = async () => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const states = await Promise.all(
        [...processes.keys()].map((port) => command(port, 'CLUSTER', 'INFO').then(String, () => '')),
      );
      if (states.every((info) => /cluster_state:ok/.test(info))) return;
      if (Date.now() > deadline) throw new Error(`the cluster did not reach cluster_state:ok:\n${states.join('\n')}`);
      await sleep(50);
    }
  };

  const idOf = async (port: number) => String(await command(port, 'CLUSTER', 'MYID'));
  const slotOf = async (key: string) => Number(await command(ports[0] ?? 0, 'CLUSTER', 'KEYSLOT', key));

  const ownerOf = async (key: string): Promise<ClusterNode> => {
    const slot = await slotOf(key);
    const live = [...processes.keys()];
    const ranges = await command(live[0] ?? 0, 'CLUSTER', 'SLOTS');
    for (const range of Array.isArray(ranges) ? ranges : []) {
      const [start, end, master] = Array.isArray(range) ? range : [];
      if (Number(start) <= slot && slot <= Number(end) && Array.isArray(master)) {
        return { host: String(master[0]), port: Number(master[1]) };
      }
    }
    throw new Error(`no node serves slot ${slot}`);
  };

  const migrateSlotOf = async (key: string, migrate: MigrateOptions = {}) => {
    const slot = await slotOf(key);
    const source = (await ownerOf(key)).port;
    const target = ports.find((port) => port !== source && processes.has(port));
    if (target === undefined) throw new Error('no node to migrate to');
    const [sourceId, targetId] = await Promise.all([idOf(source), idOf(target)]);
    // Importing first, then migrating (as redis-cli does): a client sent from the source by ASK always finds
    // the target ready to accept it.
    await command(target, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', sourceId);
    await command(source, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', targetId);
    const moveKeys = async (count: number) => {
      const keys = await command(source, 'CLUSTER', 'GETKEYSINSLOT', String(slot), String(count));
      const names = Array.isArray(keys) ? keys.map(String) : [];
      if (names.length > 0) await command(source, 'MIGRATE', HOST, String(target), '', '0', '5000', 'KEYS', ...names);
      return names.length;
    };
    const total = Number(await command(source, 'CLUSTER', 'COUNTKEYSINSLOT', String(slot)));
    if (total >= 2) await moveKeys(Math.floor(total / 2));
    await migrate.pauseBetweenSteps?.();
    while ((await moveKeys(100)) > 0);
    // The new owner first (it bumps its config epoch), then the old one, then the rest so no node keeps
    // sending clients to the old owner.
    for (const port of [target, source, ...ports.filter((p) => p !== target && p !== source && processes.has(p))]) {
      await command(port, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', targetId);
    }
    await waitUntilOk();
  };

  try {
    await Promise.all(ports.map(launch));
    await run(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 30_000 },
    );
    await waitUntilOk();
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    url: `redis://${HOST}:${ports[0] ?? 0}`,
    nodes: ports.map((port) => ({ host: HOST, port })),
    migrateSlotOf,
    ownerOf,
    stopNode: async (port) => {
      await kill(port, 'SIGTERM');
    },
    pauseNode: (port) => {
      const child = processes.get(port);
      if (child === undefined) throw new Error(`no node on ${port}`);
      child.kill('SIGSTOP');
    },
    resumeNode: async (port) => {
      processes.get(port)?.kill('SIGCONT');
      await waitUntilOk();
    },
    startNode: async (port) => {
      if (processes.has(port)) return;
      await launch(port);
      await waitUntilOk();
    },
    stop,
  };
}

/** One command on one node, over a connection of its own that gives up at once when the node is down. */
async function command(port: number, name: string, ...args: string[]): Promise<unknown> {
  const redis = new Redis({ host: HOST, port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await redis.call(name, ...args);
  } finally {
    redis.disconnect();
  }
}

async function distinctFreePorts(count: number): Promise<[number[], number[]]> {
  const chosen = new Set<number>();
  while (chosen.size < count * 2) chosen.add(await freePort());
  const all = [...chosen];
  return [all.slice(0, count), all.slice(count)];
}

/** The cluster slot of `key` (CRC16/XMODEM of its hash tag, or of the whole key), as CLUSTER KEYSLOT computes it. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open === -1 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  let crc = 0;
  for (const byte of Buffer.from(hashed, 'utf8')) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
