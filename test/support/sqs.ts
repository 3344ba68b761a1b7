import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { startSqsServer } from '../../local/services.js';
import { DUMMY_CREDENTIALS } from './dynalite.js';

export interface LocalSqs {
  /** Base URL of the server (`http://127.0.0.1:<port>`): the SDK's `endpoint`. */
  endpoint: string;
  region: string;
  client: SQSClient;
  /** Creates a standard queue (optionally with SQS attributes such as `MaximumMessageSize`) and returns its URL. */
  createQueue(name: string, attributes?: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

/**
 * fauxqs (SQS over the SDK v3 JSON protocol) on a free loopback port, answering the SQS API only: the same server
 * `npm start` runs (local/services.ts), never bound to every interface.
 */
export async function startSqs(): Promise<LocalSqs> {
  const region = 'us-east-1';
  const server = await startSqsServer();
  const endpoint = server.endpoint;
  const client = new SQSClient({ endpoint, region, credentials: DUMMY_CREDENTIALS, maxAttempts: 1 });
  return {
    endpoint,
    region,
    client,
    createQueue: async (name, attributes = {}) => {
      const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
      if (QueueUrl === undefined) throw new Error(`fauxqs made no URL for queue ${name}`);
      return QueueUrl;
    },
    close: async () => {
      client.destroy();
      await server.stop();
    },
  };
}
