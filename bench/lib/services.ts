import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './limit.js';

export interface ServiceProcess {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  stop(): Promise<void>;
}

const ENTRY = fileURLToPath(new URL('./services-child.ts', import.meta.url));

function isEndpoints(value: unknown): value is { kind: 'services'; dynamodb: string; sqs: string } {
  return (
    typeof value === 'object' &&
    value !== null &&
    'kind' in value &&
    value.kind === 'services' &&
    'dynamodb' in value &&
    typeof value.dynamodb === 'string' &&
    'sqs' in value &&
    typeof value.sqs === 'string'
  );
}

/** Starts dynalite and fauxqs in a child process (see services-child.ts). */
export async function startServiceProcess(): Promise<ServiceProcess> {
  const child = fork(ENTRY, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const endpoints = await withTimeout(
    new Promise<{ dynamodb: string; sqs: string }>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`service process exited early (${String(code)})`)));
      child.on('message', (message: unknown) => {
        if (isEndpoints(message)) resolve(message);
      });
    }),
    30_000,
    'starting dynalite and fauxqs',
  );
  return {
    dynamodbEndpoint: endpoints.dynamodb,
    sqsEndpoint: endpoints.sqs,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.disconnect();
      await withTimeout(exited, 10_000, 'stopping the service process').catch(() => {
        child.kill('SIGKILL');
      });
    },
  };
}
