import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { connectionsTable, membersTable, type TableNames } from '../../deploy/tables.js';
import { startDynalite as startDynaliteServer } from '../../local/services.js';
import { ensureTables } from '../../local/tables.js';

/**
 * Creates the connections and members tables (from the shared shapes, as the dev server does) and waits
 * until both are ACTIVE.
 */
export async function createTables(client: DynamoDBClient, names: TableNames, timeoutMs = 10_000): Promise<void> {
  await ensureTables(client, { [names.connections]: connectionsTable, [names.members]: membersTable }, timeoutMs);
}

export const DUMMY_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

export interface LocalDynamo {
  endpoint: string;
  region: string;
  client: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  close(): Promise<void>;
}

/** An in-memory dynalite on a free loopback port, with a low-level and a document client pointing at it. */
export async function startDynalite(): Promise<LocalDynamo> {
  const server = await startDynaliteServer();
  const endpoint = server.endpoint;
  const region = 'us-east-1';
  const client = new DynamoDBClient({ endpoint, region, credentials: DUMMY_CREDENTIALS, maxAttempts: 1 });
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return {
    endpoint,
    region,
    client,
    doc,
    close: async () => {
      client.destroy();
      await server.stop();
    },
  };
}
