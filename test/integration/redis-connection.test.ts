import { Redis } from 'ioredis';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { connectRedis, MISSED_DEADLINE_PAUSE_MS, runBounded, type RedisConnection } from '../../lambdas/adapters/redis-connection.js';
import { RedisUnavailableError } from '../../lambdas/errors.js';
import { spawnRedis, startRedisProcess, waitForRedis } from '../../local/redis-server.js';
import { eventually } from '../support/chat.js';
import { closedPort } from './net.js';

/**
 * connectRedis and runBounded against Redis that is not there or does not answer: a command gives up at once or
 * within its deadline, the log stays short, reconnection gives up and starts again when something asks.
 */
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const quietLog = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() });

/** How long `call` took to settle, and what it threw (undefined when it resolved). */
async function timed(call: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now();
  try {
    await call();
    return { ms: performance.now() - started, error: undefined };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

function client(url: string, mode: 'standalone' | 'cluster', log = quietLog(), reconnectAttempts?: number): RedisConnection {
  const redis = connectRedis(url, mode, log, reconnectAttempts === undefined ? {} : { reconnectAttempts });
  onTestFinished(() => redis.disconnect());
  return redis;
}

describe('a cluster client against an address where nothing listens', () => {
  it('rejects every command at once, for seconds, and logs one line', async () => {
    const log = quietLog();
    const redis = client(`redis://127.0.0.1:${await closedPort()}`, 'cluster', log);
    const started = performance.now();
    const slowest: number[] = [];
    for (const at of [0, 300, 1500, 4000]) {
      await sleep(Math.max(0, at - (performance.now() - started)));
      const direct = await timed(() => redis.get('k'));
      const bounded = await timed(() => runBounded(redis, () => redis.get('k'), 1000));
      expect(direct.error).toBeInstanceOf(Error);
      expect(bounded.error).toBeInstanceOf(Error);
      slowest.push(Math.max(direct.ms, bounded.ms));
    }
    console.log(`unreachable cluster: slowest command rejected in ${Math.max(...slowest).toFixed(1)} ms`);

    expect(Math.max(...slowest)).toBeLessThan(100);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.warn).toHaveBeenCalledWith('redis connection error', { error: expect.any(String) });
  });

  it('gives up reconnecting after its attempts, and the next call starts it again', async () => {
    const redis = client(`redis://127.0.0.1:${await closedPort()}`, 'cluster', quietLog(), 1);
    await eventually(() => redis.status === 'end', 5000);

    const first = await timed(() => runBounded(redis, () => redis.get('k'), 1000));
    expect(first.error).toBeInstanceOf(RedisUnavailableError);
    expect(String(first.error)).toMatch(/reconnecting now/);
    expect(redis.status).not.toBe('end');
    // It fails again, gives up again; the next attempt waits for the on-demand interval (the call fails at once).
    await eventually(() => redis.status === 'end', 5000);
    const second = await timed(() => runBounded(redis, () => redis.get('k'), 1000));
    expect(second.error).toBeInstanceOf(RedisUnavailableError);
    expect(String(second.error)).toMatch(/the redis client is end/);
    expect(Math.max(first.ms, second.ms)).toBeLessThan(100);
  });
});

describe('a standalone client that gave up', () => {
  it('connects again on the first call once Redis is there', async () => {
    const port = await closedPort();
    const url = `redis://127.0.0.1:${port}`;
    const redis = client(url, 'standalone', quietLog(), 1);
    await expect(runBounded(redis, () => redis.set('k', 'v'), 1000)).rejects.toThrow();
    await eventually(() => redis.status === 'end', 5000);

    const server = startRedisProcess(port);
    onTestFinished(() => {
      server.kill('SIGKILL');
    });
    await waitForRedis(url);
    await expect(runBounded(redis, () => redis.set('k', 'v'), 1000)).rejects.toThrow(/reconnecting now/);

    await eventually(async () => {
      try {
        return (await runBounded(redis, () => redis.set('k', 'v'), 1000)) === 'OK';
      } catch {
        return false;
      }
    }, 5000);
  });
});

describe('a Redis that stops answering (SIGSTOP)', () => {
  it('costs one deadline, then every call on that client fails at once for a moment, then it is asked again', async () => {
    const spawned = await spawnRedis();
    onTestFinished(() => spawned.stop());
    const redis = client(spawned.url, 'standalone');
    const pid = Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]);
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGSTOP');
    onTestFinished(() => {
      process.kill(pid, 'SIGCONT');
    });

    const missed = await timed(() => runBounded(redis, () => redis.get('a'), 300));
    const paused = await timed(() => runBounded(redis, () => redis.get('b'), 300));
    expect(String(missed.error)).toMatch(/did not answer within 300 ms/);
    expect(missed.ms).toBeGreaterThanOrEqual(290);
    expect(String(paused.error)).toMatch(/missed a deadline just now/);
    expect(paused.ms).toBeLessThan(50);

    process.kill(pid, 'SIGCONT');
    await sleep(MISSED_DEADLINE_PAUSE_MS);
    expect(await runBounded(redis, () => redis.set('c', '1'), 1000)).toBe('OK');
    const probe = new Redis(spawned.url);
    onTestFinished(() => probe.disconnect());
    expect(await probe.get('c')).toBe('1');
  });
});
