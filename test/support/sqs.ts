import { SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { DUMMY_CREDENTIALS } from './dynalite.js';

export interface LocalSqs {
  /** Base URL of the server (`http://127.0.0.1:<port>`): the SDK's `endpoint`. */
  endpoint: string;
  region: string;
  client: SQSClient;
  /**
   * Creates a standard queue (optionally with SQS attributes such as `MaximumMessageSize`) and returns its URL,
   * `http://sqs.<region>.localhost:<port>/000000000000/<name>`.
   */
  createQueue(name: string, attributes?: Record<string, string>): string;
  close(): Promise<void>;
}

/**
 * An in-process fauxqs (SQS over the SDK v3 JSON protocol) on a free port. The client sends every request to
 * `endpoint`; the queue URL travels in the request body only, so its `*.localhost` host never needs resolving.
 */
export async function startSqs(): Promise<LocalSqs> {
  const region = 'us-east-1';
  const server = await startFauxqs({ port: 0, logger: false, defaultRegion: region });
  const endpoint = server.address;
  const client = new SQSClient({ endpoint, region, credentials: DUMMY_CREDENTIALS, maxAttempts: 1 });
  return {
    endpoint,
    region,
    client,
    createQueue: (name, attributes = {}) => server.createQueue(name, { region, attributes }).queueUrl,
    close: async () => {
      client.destroy();
      await server.stop();
    },
  };
}
