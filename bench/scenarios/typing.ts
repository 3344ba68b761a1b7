import type { TestClient } from '../../local/gateway/testing.js';
import type { BenchConfig } from '../config.js';
import { uniqueId, type BenchBackend } from '../lib/backend.js';
import { mapLimit, now, pollUntil, sleep } from '../lib/limit.js';
import type { Progress } from '../lib/progress.js';
import { RedisCommandCounter } from '../lib/redis-monitor.js';
import { Sender } from '../lib/sender.js';
import { openSocket } from '../lib/sockets.js';
import { median, percentile, round } from '../lib/stats.js';
import { compose, tracingPatch, type Span } from '../lib/trace.js';
import { patches, recipientsCache, withPatch, type Patch } from '../lib/whatif.js';

export interface LatencySummary {
  samples: number;
  /** Per delivery: one typing frame to one other member. */
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Per frame: until the last of the other members has it. */
  lastP50: number;
  lastP99: number;
  timeouts: number;
}

/** Median time of each stage of one typing frame (ms), from a traced pass that is not counted above. */
export interface Waterfall {
  variant: string;
  /** Frame sent → the handler's first service call: the gateway, event and frame parsing, the context. */
  toHandler: number;
  bindingGet: number;
  admit: number;
  registryQuery: number;
  /** First post started → last post answered (posts run concurrently). */
  posts: number;
  /** Frame sent → last member has it. */
  total: number;
}

/** One burst: `sockets` devices of one user each sending `framesPerSocket` starts within `spreadMs`. */
export interface BurstRow {
  recipients: number;
  /** Members of the conversation (the typist and the recipients): above the size limit nothing is fanned out. */
  members: number;
  aboveSizeLimit: boolean;
  frames: number;
  /** Typing frames that reached the recipients: one Management API post each. */
  posts: number;
  postsPerFrame: number;
  /** Without coalescing every frame went to every recipient. */
  postsBefore: number;
  /** Commands sent to Redis during the burst (the rate limit's admit and the typing gate: one script call each). */
  redisRoundTrips: number;
  redisPerFrame: number;
}

export interface BurstSummary {
  sockets: number;
  framesPerSocket: number;
  spreadMs: number;
  largeConversationMembers: number;
  rows: BurstRow[];
}

export interface TypingResult {
  members: number;
  spacingMs: number;
  latency: LatencySummary;
  whatIf: { variant: string; latency: LatencySummary; applied: boolean }[];
  waterfalls: Waterfall[];
  /** Absent when the backend ran without Redis (nothing to count). */
  burst?: BurstSummary;
}

const WARM_UP = 20;

/** A member that records when each typing frame arrives. */
class Listener {
  arrivals: number[] = [];
  private constructor(readonly socket: TestClient) {}

  static async open(url: string): Promise<Listener> {
    let listener: Listener | undefined = undefined; // set once open: frames reach it from then on
    const socket = await openSocket(url, {
      onFrame: (text) => {
        if (text.startsWith('{"type":"typing"')) listener?.arrivals.push(now());
      },
    });
    listener = new Listener(socket);
    return listener;
  }
}

/**
 * Typing latency: one member's `typing` frame to each other member's receipt, one frame at a time (light load),
 * through the gateway, the typing handler (binding, rate limit, typing gate, registry query) and the Management
 * API posts. Frames alternate start and stop, so every one is a change of state and goes out (a repeated start
 * would be coalesced). Then the burst: what coalescing saves.
 */
export async function runTyping(config: BenchConfig, bench: BenchBackend, progress: Progress, whatIf: boolean): Promise<TypingResult> {
  const settings = config.typing;
  const conversationId = uniqueId('typing');
  const others = Array.from({ length: settings.members - 1 }, (_, i) => `m${i}`);
  await bench.addMembers(conversationId, ['typist', ...others]);
  const listeners = await mapLimit(others, 8, async (userId) => Listener.open(await bench.connectUrl(conversationId, userId, 'd')));
  const typist = await Sender.open(await bench.connectUrl(conversationId, 'typist', 'd'));
  const frames = [JSON.stringify({ action: 'typing', conversationId, state: 'start' }), JSON.stringify({ action: 'typing', conversationId, state: 'stop' })];
  let framesSent = 0;
  const stages = new Map<keyof Omit<Waterfall, 'variant'>, number[]>();
  const measure = async (samples: number, label: string, spans?: Span[]): Promise<LatencySummary> => {
    const each: number[] = [];
    const last: number[] = [];
    stages.clear();
    let timeouts = 0;
    progress.start(label, samples, 'samples');
    for (let i = 0; i < WARM_UP + samples; i += 1) {
      for (const listener of listeners) listener.arrivals = [];
      spans?.splice(0);
      const sentAt = now();
      typist.sendRaw(frames[framesSent % 2] ?? '');
      framesSent += 1;
      const deadline = Date.now() + settings.timeoutMs;
      while (listeners.some((l) => l.arrivals.length === 0) && Date.now() < deadline) await sleep(0.2);
      if (i >= WARM_UP) {
        const arrivals = listeners.map((l) => l.arrivals[0]);
        if (arrivals.some((a) => a === undefined)) timeouts += 1;
        const latencies = arrivals.flatMap((a) => (a === undefined ? [] : [a - sentAt]));
        each.push(...latencies);
        if (latencies.length > 0) last.push(Math.max(...latencies));
        if (spans !== undefined && latencies.length > 0) record(stages, spans, sentAt, Math.max(...latencies));
        progress.update(i - WARM_UP + 1);
      }
      await sleep(settings.spacingMs);
    }
    const summary: LatencySummary = {
      samples,
      p50: round(percentile(each, 50), 2),
      p95: round(percentile(each, 95), 2),
      p99: round(percentile(each, 99), 2),
      max: round(percentile(each, 100), 2),
      lastP50: round(percentile(last, 50), 2),
      lastP99: round(percentile(last, 99), 2),
      timeouts,
    };
    progress.finish(`p50 ${summary.p50} ms, p95 ${summary.p95} ms, p99 ${summary.p99} ms`);
    return summary;
  };
  let result: TypingResult;
  try {
    const latency = await measure(settings.samples, `typing ${settings.members} members`);
    const variants: TypingResult['whatIf'] = [];
    const waterfalls: Waterfall[] = [];
    const traced = async (variant: string, base: Patch | undefined) => {
      const spans: Span[] = [];
      const trace = tracingPatch(spans);
      const samples = Math.min(settings.samples, 200);
      await withPatch(base === undefined ? trace : compose(base, trace), () =>
        measure(samples, `typing ${settings.members} members traced: ${variant} (not counted)`, spans),
      );
      waterfalls.push(waterfall(variant, stages));
    };
    await traced('as is', undefined);
    if (whatIf) {
      const { list, destroy } = patches(Math.max(Number(bench.backend.env.POST_CONCURRENCY ?? '32'), 16));
      const cache = recipientsCache();
      const candidates = [...list, cache];
      try {
        for (const patch of candidates) {
          const { result, applied } = await withPatch(patch, () => measure(settings.samples, `typing ${settings.members} members what-if: ${patch.name}`));
          variants.push({ variant: patch.name, latency: result, applied });
          await traced(patch.name, patch);
        }
      } finally {
        destroy();
      }
    }
    result = { members: settings.members, spacingMs: settings.spacingMs, latency, whatIf: variants, waterfalls };
  } finally {
    await typist.close();
    for (const listener of listeners) void listener.socket.close();
  }
  const burst = await runBursts(config, bench, progress);
  return burst === undefined ? result : { ...result, burst };
}

/**
 * Posts per typing frame under a burst: `sockets` devices of one user send `framesPerSocket` starts each, spread
 * over `spreadMs`, to every other member's connection; counted are the typing frames the recipients get (one
 * post each) and the commands Redis gets (MONITOR on the backend's own redis-server).
 */
async function runBursts(config: BenchConfig, bench: BenchBackend, progress: Progress): Promise<BurstSummary | undefined> {
  const settings = config.typing.burst;
  if (bench.backend.redisKind === 'none') return undefined;
  const largeConversationMembers = Number(bench.backend.env.LARGE_CONVERSATION_MEMBERS ?? '100');
  const monitor = await RedisCommandCounter.start(bench.backend.redisUrl);
  const rows: BurstRow[] = [];
  try {
    for (const recipients of settings.recipients) {
      const frames = settings.sockets * settings.framesPerSocket;
      progress.start(`typing burst: ${settings.sockets} sockets × ${settings.framesPerSocket} frames to ${recipients} recipients`, frames, 'frames');
      const conversationId = uniqueId('typing-burst');
      const others = Array.from({ length: recipients }, (_, i) => `r${i}`);
      await bench.addMembers(conversationId, ['typist', ...others]);
      const listeners = await mapLimit(others, 8, async (userId) => Listener.open(await bench.connectUrl(conversationId, userId, 'd')));
      const typists = await mapLimit(
        Array.from({ length: settings.sockets }, (_, i) => `d${i}`),
        settings.sockets,
        async (deviceId) => Sender.open(await bench.connectUrl(conversationId, 'typist', deviceId)),
      );
      try {
        const frame = JSON.stringify({ action: 'typing', conversationId, state: 'start' });
        await monitor.settle();
        monitor.reset();
        monitor.counting = true;
        const stepMs = settings.spreadMs / settings.framesPerSocket;
        for (let i = 0; i < settings.framesPerSocket; i += 1) {
          for (const typist of typists) typist.sendRaw(frame);
          progress.update((i + 1) * settings.sockets);
          await sleep(stepMs);
        }
        const arrived = () => listeners.reduce((sum, l) => sum + l.arrivals.length, 0);
        // Done when nothing more arrives for a while (a frame held back never arrives: there is no answer to wait for).
        let last = -1;
        await pollUntil(() => {
          const count = arrived();
          const quiet = count === last;
          last = count;
          return quiet;
        }, 10_000, 300);
        const redis = await monitor.settle();
        monitor.counting = false;
        const posts = arrived();
        const members = recipients + 1;
        rows.push({
          recipients,
          members,
          aboveSizeLimit: members > largeConversationMembers,
          frames,
          posts,
          postsPerFrame: round(posts / frames, 3),
          postsBefore: frames * recipients,
          redisRoundTrips: redis.roundTrips,
          redisPerFrame: round(redis.roundTrips / frames, 2),
        });
        progress.finish(`${posts} posts (${round(posts / frames, 3)} per frame; ${frames * recipients} before), ${round(redis.roundTrips / frames, 2)} Redis round trips per frame`);
      } finally {
        for (const typist of typists) await typist.close();
        for (const listener of listeners) void listener.socket.close();
      }
    }
  } finally {
    monitor.close();
  }
  return { sockets: settings.sockets, framesPerSocket: settings.framesPerSocket, spreadMs: settings.spreadMs, largeConversationMembers, rows };
}

type Stages = Map<keyof Omit<Waterfall, 'variant'>, number[]>;

function record(stages: Stages, spans: readonly Span[], sentAt: number, total: number): void {
  const add = (stage: keyof Omit<Waterfall, 'variant'>, value: number | undefined) => {
    if (value === undefined || !Number.isFinite(value)) return;
    const list = stages.get(stage) ?? [];
    list.push(value);
    stages.set(stage, list);
  };
  const first = (name: Span['name']) => spans.find((s) => s.name === name);
  const duration = (span: Span | undefined) => (span === undefined ? undefined : span.end - span.start);
  const starts = spans.map((s) => s.start);
  add('toHandler', starts.length === 0 ? undefined : Math.min(...starts) - sentAt);
  add('bindingGet', duration(first('registry.get')) ?? 0);
  add('admit', duration(first('limiter.admit')));
  add('registryQuery', duration(first('registry.query')));
  const posts = spans.filter((s) => s.name === 'post');
  add('posts', posts.length === 0 ? undefined : Math.max(...posts.map((p) => p.end)) - Math.min(...posts.map((p) => p.start)));
  add('total', total);
}

function waterfall(variant: string, stages: Stages): Waterfall {
  const m = (stage: keyof Omit<Waterfall, 'variant'>) => round(median(stages.get(stage) ?? []), 2);
  return {
    variant,
    toHandler: m('toHandler'),
    bindingGet: m('bindingGet'),
    admit: m('admit'),
    registryQuery: m('registryQuery'),
    posts: m('posts'),
    total: m('total'),
  };
}
