import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { WebSocketServer } from 'ws';
import { ManagementApiPoster } from '../../lambdas/adapters/management-poster.js';
import type { BenchConfig, ClientPlacement } from '../config.js';
import { LOCAL_CREDENTIALS, uniqueId, type BenchBackend } from '../lib/backend.js';
import { createPool, type ClientPool } from '../lib/clients.js';
import { mapLimit, now, pollUntil, withTimeout } from '../lib/limit.js';
import type { Progress } from '../lib/progress.js';
import { profile, type ProfileSummary } from '../lib/profile.js';
import { resultsPath } from '../lib/paths.js';
import { Sender } from '../lib/sender.js';
import { round } from '../lib/stats.js';
import { throughput, type Throughput } from '../lib/throughput.js';
import { patches, sdkClientPoster, withPatch } from '../lib/whatif.js';

/** A chat-sized body: what each delivery carries (the frame around it is ~250 bytes). */
const BODY = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. '.repeat(2).trim();
const CONNECT_CONCURRENCY = 32;
const WARM_UP_MESSAGES = 10;
const POSTER_WARM_UP = 300;
const SENDER = 'sender';

export interface FanoutRow {
  n: number;
  messages: number;
  /** Inline posts up to FANOUT_THRESHOLD recipients, SQS + worker above. */
  path: 'inline' | 'sqs';
  clients: ClientPlacement;
  ours: Throughput;
  naive: Throughput;
  raw: Throughput;
  oursOverRaw: number;
  oursOverNaive: number;
  senderErrors: Record<string, number>;
}

export interface PlacementCheck {
  n: number;
  placement: ClientPlacement;
  ours: Throughput;
  raw: Throughput;
}

export interface WhatIf {
  n: number;
  variant: string;
  ours: Throughput;
  /** Relative to the unchanged path measured in the same run. */
  gain: number;
  /** True when the patched service was really the one the handlers used. */
  applied: boolean;
}

export interface PosterRate {
  contender: string;
  posts: number;
  failed: number;
  seconds: number;
  perSecond: number;
  /** CPU time of this process per post (user + system), microseconds. */
  cpuMicrosPerPost: number;
}

export interface FanoutProfile {
  n: number;
  /** The what-if variant profiled, or undefined for the path as it is. */
  variant?: string;
  summary: ProfileSummary;
}

export interface FanoutResult {
  window: number;
  threshold: number;
  rows: FanoutRow[];
  placementChecks: PlacementCheck[];
  whatIf: WhatIf[];
  posters: PosterRate[];
  profiles: FanoutProfile[];
}

interface Room {
  n: number;
  conversationId: string;
  pool: ClientPool;
  sender: Sender;
  frame: string;
}

export async function runFanout(config: BenchConfig, bench: BenchBackend, progress: Progress): Promise<FanoutResult> {
  const settings = config.fanout;
  const threshold = Number(bench.backend.env.FANOUT_THRESHOLD ?? '100');
  const result: FanoutResult = { window: settings.window, threshold, rows: [], placementChecks: [], whatIf: [], posters: [], profiles: [] };
  for (const n of settings.sizes) {
    const messages = settings.messages(n);
    const placements: ClientPlacement[] = [settings.clients];
    if (settings.placementCheckAt === n) placements.push(settings.clients === 'child' ? 'inproc' : 'child');
    for (const placement of placements) {
      const headline = placement === settings.clients;
      const room = await openRoom(bench, n, placement, progress);
      let ours: Throughput;
      let naive: Throughput | undefined;
      try {
        const oursRuns: Throughput[] = [];
        const naiveRuns: Throughput[] = [];
        const rounds = headline ? settings.rounds : 1;
        for (let round = 1; round <= rounds; round += 1) {
          const suffix = `${headline ? '' : ` (${placement} clients)`}${rounds > 1 ? ` round ${round}/${rounds}` : ''}`;
          oursRuns.push(await measureOurs(room, messages, settings, progress, `fan-out N=${n} ours${suffix}`));
          if (headline) naiveRuns.push(await measureNaive(bench, room, messages, settings, progress, suffix));
        }
        ours = combine(oursRuns);
        if (headline) naive = combine(naiveRuns);
        if (headline && settings.profileSizes.includes(n)) {
          const file = resultsPath(`fanout-ours-n${n}.cpuprofile`);
          const { summary } = await profile(() => measureOurs(room, messages, settings, progress, `fan-out N=${n} ours (CPU-profiled, not counted)`), file);
          result.profiles.push({ n, summary });
        }
        if (headline && settings.whatIfSizes.includes(n)) result.whatIf.push(...(await measureWhatIfs(bench, room, messages, settings, progress, ours, result.profiles)));
        if (headline && n === Math.min(100, ...settings.sizes.filter((s) => s >= 100))) {
          result.posters = await measurePosters(bench, room, settings.posterPosts, progress);
        }
      } finally {
        await closeRoom(bench, room);
      }
      const rawMessages = Math.max(messages, Math.ceil(settings.rawDeliveries / n));
      const raw = await measureRaw(room.pool, n, rawMessages, room.frame, settings.runTimeoutMs, progress, `fan-out N=${n} raw ws${headline ? '' : ` (${placement} clients)`}`);
      await room.pool.close();
      if (naive === undefined) {
        result.placementChecks.push({ n, placement, ours, raw });
        continue;
      }
      result.rows.push({
        n,
        messages,
        path: n > threshold ? 'sqs' : 'inline',
        clients: placement,
        ours,
        naive,
        raw,
        oursOverRaw: round(ours.perSecond / raw.perSecond, 3),
        oursOverNaive: round(ours.perSecond / naive.perSecond, 2),
        senderErrors: room.sender.errorCounts(),
      });
      if (settings.placementCheckAt === n) result.placementChecks.push({ n, placement, ours, raw });
    }
  }
  return result;
}

/** Several runs as one: their mean rate (each run is kept in `runs`). */
function combine(runs: readonly Throughput[]): Throughput {
  const first = runs[0];
  if (first === undefined) throw new Error('no run to combine');
  if (runs.length === 1) return first;
  const perSecond = round(runs.reduce((sum, r) => sum + r.perSecond, 0) / runs.length, 0);
  return {
    deliveries: runs.reduce((sum, r) => sum + r.deliveries, 0),
    expected: runs.reduce((sum, r) => sum + r.expected, 0),
    seconds: round(runs.reduce((sum, r) => sum + r.seconds, 0), 3),
    perSecond,
    complete: runs.every((r) => r.complete),
    extra: runs.reduce((sum, r) => sum + r.extra, 0),
    runs: runs.map((r) => r.perSecond),
  };
}

async function openRoom(bench: BenchBackend, n: number, placement: ClientPlacement, progress: Progress): Promise<Room> {
  const conversationId = uniqueId(`fan${n}`);
  const receivers = Array.from({ length: n }, (_, i) => `r${i}`);
  await bench.addMembers(conversationId, [SENDER, ...receivers]);
  const urls = await Promise.all(receivers.map((userId) => bench.connectUrl(conversationId, userId, 'd')));
  const pool = await createPool(placement);
  progress.start(`fan-out N=${n} connect (${placement} clients)`, n, 'connections');
  await pool.open(urls, CONNECT_CONCURRENCY, (opened) => progress.update(opened));
  progress.finish();
  const sender = await Sender.open(await bench.connectUrl(conversationId, SENDER, 'd'));
  const frame = JSON.stringify({
    type: 'message',
    conversationId,
    messageId: randomUUID(),
    seq: 1,
    senderId: SENDER,
    clientMessageId: 'c-1',
    body: BODY,
    sentAt: Date.now(),
  });
  return { n, conversationId, pool, sender, frame };
}

async function closeRoom(bench: BenchBackend, room: Room): Promise<void> {
  await room.sender.close();
  await room.pool.drop();
  // Every socket's $disconnect has run once its row is gone; the next run starts from a quiet backend.
  await pollUntil(async () => (await bench.listConnections(room.conversationId)).length === 0, 60_000, 100);
}

function sendFrames(room: Room, count: number, tag: string): string[] {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({ action: 'sendMessage', conversationId: room.conversationId, clientMessageId: `${tag}-${i}`, body: BODY }),
  );
}

/** Ours: sendMessage frames through the gateway and the real handlers (store, registry query, posts or SQS + worker). */
async function measureOurs(room: Room, messages: number, settings: BenchConfig['fanout'], progress: Progress, label: string): Promise<Throughput> {
  // Warm-up: the context is built, the connections pooled, the code paths compiled (JIT) before the clock starts.
  const warm = room.n >= 1000 ? 2 : WARM_UP_MESSAGES;
  await room.sender.sendAll(sendFrames(room, warm, uniqueId('warm')), settings.window, settings.runTimeoutMs);
  await room.pool.waitFor(warm * room.n, settings.runTimeoutMs, () => undefined);
  await room.pool.reset();
  const expected = room.n * messages;
  progress.start(label, expected, 'deliveries');
  const startedAt = now();
  const sending = room.sender.sendAll(sendFrames(room, messages, uniqueId('m')), settings.window, settings.runTimeoutMs);
  const delivered = await room.pool.waitFor(expected, settings.runTimeoutMs, (count) => progress.update(count));
  await sending;
  const rate = throughput(delivered, expected, startedAt);
  progress.finish(`${rate.perSecond.toLocaleString('en-US')} deliveries/s`);
  return rate;
}

/**
 * The naive fan-out of AWS's simple chat sample: a default SDK client and `Promise.all` of PostToConnection over
 * every connection, one "invocation" per message, as many in flight as our sender keeps.
 */
async function measureNaive(
  bench: BenchBackend,
  room: Room,
  messages: number,
  settings: BenchConfig['fanout'],
  progress: Progress,
  suffix: string,
): Promise<Throughput> {
  const ids = await receiverIds(bench, room);
  const client = new ApiGatewayManagementApiClient({
    endpoint: bench.backend.managementEndpoint,
    region: 'us-east-1',
    credentials: LOCAL_CREDENTIALS,
  });
  const data = Buffer.from(room.frame, 'utf8');
  let failed = 0;
  const invocation = async () => {
    await Promise.all(
      ids.map((id) =>
        client.send(new PostToConnectionCommand({ ConnectionId: id, Data: data })).then(
          () => undefined,
          () => {
            failed += 1;
          },
        ),
      ),
    );
  };
  try {
    const warm = room.n >= 1000 ? 1 : 3;
    for (let i = 0; i < warm; i += 1) await invocation();
    await room.pool.waitFor(warm * room.n, settings.runTimeoutMs, () => undefined);
    await room.pool.reset();
    const expected = room.n * messages;
    progress.start(`fan-out N=${room.n} naive${suffix}`, expected, 'deliveries');
    const startedAt = now();
    const posting = withTimeout(mapLimit(Array.from({ length: messages }, (_, i) => i), settings.window, invocation), settings.runTimeoutMs, 'naive fan-out');
    const delivered = await room.pool.waitFor(expected, settings.runTimeoutMs, (count) => progress.update(count));
    await posting.catch(() => undefined);
    const rate = throughput(delivered, expected, startedAt);
    progress.finish(`${rate.perSecond.toLocaleString('en-US')} deliveries/s${failed > 0 ? `, ${failed} posts failed` : ''}`);
    return rate;
  } finally {
    client.destroy();
  }
}

/** The ceiling: a bare `ws` server sending the same frame to the same number of clients. */
async function measureRaw(pool: ClientPool, n: number, messages: number, frame: string, timeoutMs: number, progress: Progress, label: string): Promise<Throughput> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  try {
    await pool.open(Array.from({ length: n }, () => `ws://127.0.0.1:${port}/`), CONNECT_CONCURRENCY, () => undefined);
    await pollUntil(() => server.clients.size >= n, 10_000);
    const data = Buffer.from(frame, 'utf8');
    const broadcast = () => {
      for (const client of server.clients) client.send(data);
    };
    broadcast();
    await pool.waitFor(n, timeoutMs, () => undefined);
    await pool.reset();
    const expected = n * messages;
    progress.start(label, expected, 'deliveries');
    const startedAt = now();
    for (let m = 0; m < messages; m += 1) broadcast();
    const delivered = await pool.waitFor(expected, timeoutMs, (count) => progress.update(count));
    const rate = throughput(delivered, expected, startedAt);
    progress.finish(`${rate.perSecond.toLocaleString('en-US')} deliveries/s`);
    await pool.drop();
    return rate;
  } finally {
    for (const client of server.clients) client.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function receiverIds(bench: BenchBackend, room: Room): Promise<string[]> {
  const rows = await bench.listConnections(room.conversationId);
  return rows.filter((row) => row.userId !== SENDER).map((row) => row.connectionId);
}

/** The same run of ours with each prototype swapped into the handlers' context (see lib/whatif.ts). */
async function measureWhatIfs(
  bench: BenchBackend,
  room: Room,
  messages: number,
  settings: BenchConfig['fanout'],
  progress: Progress,
  baseline: Throughput,
  profiles: FanoutProfile[],
): Promise<WhatIf[]> {
  const { list, destroy } = patches(postConcurrency(bench));
  const out: WhatIf[] = [];
  try {
    for (const patch of list) {
      const label = `fan-out N=${room.n} what-if: ${patch.name}`;
      const { result: ours, applied } = await withPatch(patch, () => measureOurs(room, messages, settings, progress, label));
      out.push({ n: room.n, variant: patch.name, ours, gain: round(ours.perSecond / baseline.perSecond - 1, 3), applied });
      if (settings.profileSizes.includes(room.n)) {
        const file = resultsPath(`fanout-whatif-poster-n${room.n}.cpuprofile`);
        const { summary } = await profile(
          () => withPatch(patch, () => measureOurs(room, messages, settings, progress, `${label} (CPU-profiled, not counted)`)),
          file,
        );
        profiles.push({ n: room.n, variant: patch.name, summary });
      }
    }
  } finally {
    destroy();
  }
  return out;
}

function postConcurrency(bench: BenchBackend): number {
  return Math.max(Number(bench.backend.env.POST_CONCURRENCY ?? '32'), 16);
}

/**
 * Posts per second to live connections through the emulator's Management API, one contender at a time, the same
 * concurrency for each (POST_CONCURRENCY): where the SDK's per-call cost shows.
 */
async function measurePosters(bench: BenchBackend, room: Room, posts: number, progress: Progress): Promise<PosterRate[]> {
  const ids = await receiverIds(bench, room);
  const endpoint = bench.backend.managementEndpoint;
  const concurrency = postConcurrency(bench);
  const defaultClient = new ApiGatewayManagementApiClient({ endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
  const tuned = sdkClientPoster(endpoint, concurrency);
  const ours = new ManagementApiPoster({ endpoint, region: 'us-east-1', credentials: LOCAL_CREDENTIALS, maxSockets: concurrency, onFailure: () => undefined });
  const data = Buffer.from(room.frame, 'utf8');
  const plainAgent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const contenders: { contender: string; post(id: string): Promise<boolean> }[] = [
    {
      contender: 'default SDK client (naive)',
      post: (id) => defaultClient.send(new PostToConnectionCommand({ ConnectionId: id, Data: data })).then(() => true, () => false),
    },
    {
      contender: 'SDK client, keep-alive handler (the handlers before)',
      post: async (id) => (await tuned.poster.post(id, room.frame)) === 'delivered',
    },
    { contender: 'SigV4 signer + keep-alive agent (ours: ManagementApiPoster)', post: async (id) => (await ours.post(id, room.frame)) === 'delivered' },
    { contender: 'plain keep-alive POST, unsigned (transport floor; not deployable)', post: (id) => plainPost(plainAgent, endpoint, id, data) },
  ];
  const out: PosterRate[] = [];
  try {
    for (const { contender, post } of contenders) {
      const warm = Array.from({ length: POSTER_WARM_UP }, (_, i) => ids[i % ids.length] ?? '');
      await mapLimit(warm, concurrency, post);
      await room.pool.waitFor(warm.length, 10_000, () => undefined);
      await room.pool.reset();
      let failed = 0;
      let done = 0;
      progress.start(`posters ${contender.split(' (')[0] ?? contender}`, posts, 'posts');
      const cpu = process.cpuUsage();
      const startedAt = now();
      await mapLimit(Array.from({ length: posts }, (_, i) => ids[i % ids.length] ?? ''), concurrency, async (id) => {
        if (!(await post(id))) failed += 1;
        done += 1;
        if (done % 200 === 0) progress.update(done);
      });
      const seconds = (now() - startedAt) / 1000;
      const used = process.cpuUsage(cpu);
      await room.pool.waitFor(posts - failed, 30_000, () => undefined);
      await room.pool.reset();
      const rate: PosterRate = {
        contender,
        posts,
        failed,
        seconds: round(seconds, 3),
        perSecond: round(posts / seconds, 0),
        cpuMicrosPerPost: round((used.user + used.system) / posts, 0),
      };
      progress.update(posts);
      progress.finish(`${rate.perSecond.toLocaleString('en-US')} posts/s`);
      out.push(rate);
    }
  } finally {
    defaultClient.destroy();
    tuned.destroy();
    ours.destroy();
    plainAgent.destroy();
  }
  return out;
}

/** An unsigned POST over a keep-alive agent: what the emulator's Management API costs by itself. */
function plainPost(agent: Agent, endpoint: string, connectionId: string, data: Buffer): Promise<boolean> {
  const url = new URL(`${endpoint}/@connections/${encodeURIComponent(connectionId)}`);
  return new Promise((resolve) => {
    const req = request(
      { agent, method: 'POST', hostname: url.hostname, port: url.port, path: url.pathname, headers: { 'content-length': String(data.length) } },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode === 200));
      },
    );
    req.once('error', () => resolve(false));
    req.end(data);
  });
}
