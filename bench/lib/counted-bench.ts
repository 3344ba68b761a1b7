import { spawnRedis } from '../../local/redis-server.js';
import { BenchBackend } from './backend.js';
import { DynamoCountingProxy, type DynamoCounts } from './dynamo-proxy.js';
import { now } from './limit.js';
import { RedisCommandCounter, type RedisCounts } from './redis-monitor.js';
import type { ServiceProcess } from './services.js';

/** What one counted event cost: its DynamoDB calls and capacity, its Redis commands, its posts, its duration. */
export interface CountedSample {
  result: unknown;
  dynamo: DynamoCounts;
  redis: RedisCounts;
  posts: number;
  durationMs: number;
}

export interface CountedBench {
  bench: BenchBackend;
  /** Runs `invoke` alone and counts what it did. */
  counted(invoke: () => Promise<unknown>): Promise<CountedSample>;
  close(): Promise<void>;
}

/**
 * A bench backend whose work per event can be counted: DynamoDB through a counting proxy in front of dynalite,
 * Redis by MONITOR on a redis-server of its own, Management API posts by the gateway's log.
 */
export async function startCountedBench(stage: string, services: ServiceProcess): Promise<CountedBench> {
  const proxy = await DynamoCountingProxy.start(services.dynamodbEndpoint);
  const redis = await spawnRedis();
  const monitor = await RedisCommandCounter.start(redis.url);
  const posts = { counting: false, count: 0 };
  const close = async () => {
    monitor.close();
    await redis.stop();
    await proxy.close();
  };
  let bench: BenchBackend;
  try {
    bench = await BenchBackend.start({
      stage,
      dynamodbEndpoint: proxy.endpoint,
      sqsEndpoint: services.sqsEndpoint,
      redisUrl: redis.url,
      gateway: {
        log: (entry) => {
          if (posts.counting && entry.event === 'management_request' && entry.method === 'POST') posts.count += 1;
        },
      },
    });
  } catch (error) {
    await close();
    throw error;
  }
  const started = bench;
  return {
    bench: started,
    async counted(invoke) {
      proxy.reset();
      monitor.reset();
      posts.count = 0;
      proxy.counting = true;
      monitor.counting = true;
      posts.counting = true;
      const at = now();
      const result = await invoke();
      const durationMs = now() - at;
      const redisCounts = await monitor.settle();
      proxy.counting = false;
      monitor.counting = false;
      posts.counting = false;
      return { result, durationMs, dynamo: proxy.snapshot(), redis: redisCounts, posts: posts.count };
    },
    async close() {
      await started.close();
      await close();
    },
  };
}
