import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { spawnRedis, type SpawnedRedis } from '../../local/redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let spawned: SpawnedRedis | undefined;

/** One real redis-server for the whole run, on a free port, unless REDIS_URL points at one already. */
export async function setup(project: TestProject): Promise<void> {
  const given = process.env.REDIS_URL;
  if (given !== undefined && given !== '') {
    project.provide('redisUrl', given);
    return;
  }
  spawned = await spawnRedis();
  project.provide('redisUrl', spawned.url);
}

export async function teardown(): Promise<void> {
  await spawned?.stop();
}
