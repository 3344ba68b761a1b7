import {
  CreateTableCommand,
  DescribeTableCommand,
  type AttributeDefinition,
  type CreateTableCommandInput,
  type DynamoDBClient,
  type KeySchemaElement,
} from '@aws-sdk/client-dynamodb';
import type { KeyAttribute, TableShape } from '../deploy/tables.js';

function keySchema(partitionKey: KeyAttribute, sortKey: KeyAttribute | undefined): KeySchemaElement[] {
  const schema: KeySchemaElement[] = [{ AttributeName: partitionKey.name, KeyType: 'HASH' }];
  if (sortKey !== undefined) schema.push({ AttributeName: sortKey.name, KeyType: 'RANGE' });
  return schema;
}

/**
 * CreateTable input from a shared table shape (the same shapes the CDK stack uses): on-demand, global indexes
 * project ALL, local indexes project what their shape says.
 */
export function createTableInput(tableName: string, shape: TableShape): CreateTableCommandInput {
  const attributes = new Map<string, KeyAttribute['type']>();
  const define = (attribute: KeyAttribute | undefined): void => {
    if (attribute === undefined) return;
    const known = attributes.get(attribute.name);
    if (known !== undefined && known !== attribute.type) {
      throw new Error(`table ${tableName}: attribute ${attribute.name} is declared both ${known} and ${attribute.type}`);
    }
    attributes.set(attribute.name, attribute.type);
  };
  define(shape.partitionKey);
  define(shape.sortKey);
  for (const index of shape.indexes) {
    define(index.partitionKey);
    define(index.sortKey);
  }
  const localIndexes = shape.localIndexes ?? [];
  if (localIndexes.length > 0 && shape.sortKey === undefined) {
    throw new Error(`table ${tableName}: local secondary indexes need a table sort key`);
  }
  for (const index of localIndexes) define(index.sortKey);
  const definitions: AttributeDefinition[] = [...attributes].map(([AttributeName, AttributeType]) => ({
    AttributeName,
    AttributeType,
  }));
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: definitions,
    KeySchema: keySchema(shape.partitionKey, shape.sortKey),
    ...(shape.indexes.length === 0
      ? {}
      : {
          GlobalSecondaryIndexes: shape.indexes.map((index) => ({
            IndexName: index.name,
            KeySchema: keySchema(index.partitionKey, index.sortKey),
            Projection: { ProjectionType: 'ALL' },
          })),
        }),
    ...(localIndexes.length === 0
      ? {}
      : {
          LocalSecondaryIndexes: localIndexes.map((index) => ({
            IndexName: index.name,
            KeySchema: keySchema(shape.partitionKey, index.sortKey),
            Projection: { ProjectionType: index.projection },
          })),
        }),
  };
}

async function waitUntilActive(client: DynamoDBClient, tableName: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
    const indexesActive = (Table?.GlobalSecondaryIndexes ?? []).every((index) => index.IndexStatus === 'ACTIVE');
    if (Table?.TableStatus === 'ACTIVE' && indexesActive) return;
    if (Date.now() > deadline) throw new Error(`table ${tableName} is not ACTIVE after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Creates each table unless it exists and waits until it and its indexes are ACTIVE. TTL is not enabled:
 * dynalite has no UpdateTimeToLive, and the adapters never depend on TTL (they filter expired rows on read).
 */
export async function ensureTables(client: DynamoDBClient, tables: Record<string, TableShape>, timeoutMs = 10_000): Promise<void> {
  for (const [name, shape] of Object.entries(tables)) {
    try {
      await client.send(new CreateTableCommand(createTableInput(name, shape)));
    } catch (error) {
      if (!(error instanceof Error && error.name === 'ResourceInUseException')) throw error;
    }
  }
  for (const name of Object.keys(tables)) await waitUntilActive(client, name, timeoutMs);
}
