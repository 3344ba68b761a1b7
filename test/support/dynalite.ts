import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  connectionsTable,
  idempotencyTable,
  membersTable,
  messagesTable,
  positionsTable,
  pushTargetsTable,
  type TableNames,
  type TableShape,
} from '../../deploy/tables.js';
import { startDynalite as startDynaliteServer } from '../../local/services.js';
import { ensureTables } from '../../local/tables.js';

/** The connections and members tables always; the durable-store tables when their names are given. */
export type TestTableNames = Pick<TableNames, 'connections' | 'members'> & Partial<TableNames>;

/**
 * Creates the tables (from the shared shapes, as the dev server does) and waits until they are ACTIVE.
 */
export async function createTables(client: DynamoDBClient, names: TestTableNames, timeoutMs = 10_000): Promise<void> {
  const tables: Record<string, TableShape> = { [names.connections]: connectionsTable, [names.members]: membersTable };
  if (names.messages !== undefined) tables[names.messages] = messagesTable;
  if (names.idempotency !== undefined) tables[names.idempotency] = idempotencyTable;
  if (names.positions !== undefined) tables[names.positions] = positionsTable;
  if (names.pushTargets !== undefined) tables[names.pushTargets] = pushTargetsTable;
  await ensureTables(client, tables, timeoutMs);
}

/** Only the durable-store tables (message log, idempotency, device positions). */
export async function createStoreTables(
  client: DynamoDBClient,
  names: Partial<Pick<TableNames, 'messages' | 'idempotency' | 'positions'>>,
  timeoutMs = 10_000,
): Promise<void> {
  const tables: Record<string, TableShape> = {};
  if (names.messages !== undefined) tables[names.messages] = messagesTable;
  if (names.idempotency !== undefined) tables[names.idempotency] = idempotencyTable;
  if (names.positions !== undefined) tables[names.positions] = positionsTable;
  await ensureTables(client, tables, timeoutMs);
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

/** One command as it goes on the wire (`PutItemCommand`, `QueryCommand`, …) and the table it names. */
export interface WireCommand {
  command: string;
  table: string | undefined;
}

export interface CommandHooks {
  /** Before the request is sent; throwing here means it never reaches DynamoDB. */
  before?(sent: WireCommand): Promise<void> | void;
  /** After DynamoDB answered (`error` when it refused); throwing here loses an answer whose effect happened. */
  after?(sent: WireCommand, error: unknown): Promise<void> | void;
}

export interface InstrumentOptions {
  /** SDK attempts per command. @default 1 */
  maxAttempts?: number;
  /**
   * `initialize` sees each command once; `deserialize` sees every attempt (it sits inside the SDK's retries),
   * so an error thrown there after a write is retried like a lost answer. @default 'initialize'
   */
  step?: 'initialize' | 'deserialize';
}

/**
 * A document client of its own (the document client shares its middleware stack with the client it wraps),
 * whose every command passes the hooks: to record what an adapter sends, or to make it die between writes.
 */
export function instrumentedDoc(
  dynamo: LocalDynamo,
  hooks: CommandHooks,
  options: InstrumentOptions = {},
): { doc: DynamoDBDocumentClient; destroy(): void } {
  const client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: dynamo.region,
    credentials: DUMMY_CREDENTIALS,
    maxAttempts: options.maxAttempts ?? 1,
  });
  const doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  const around = async <T>(commandName: string | undefined, input: unknown, send: () => Promise<T>): Promise<T> => {
    const table =
      typeof input === 'object' && input !== null && 'TableName' in input && typeof input.TableName === 'string'
        ? input.TableName
        : undefined;
    const sent: WireCommand = { command: commandName ?? 'unknown', table };
    await hooks.before?.(sent);
    let output: T;
    try {
      output = await send();
    } catch (error) {
      await hooks.after?.(sent, error);
      throw error;
    }
    await hooks.after?.(sent, undefined);
    return output;
  };
  const name = 'instrumentCommands';
  if (options.step === 'deserialize') {
    doc.middlewareStack.add((next, context) => (args) => around(context.commandName, args.input, () => next(args)), {
      step: 'deserialize',
      name,
    });
  } else {
    doc.middlewareStack.add((next, context) => (args) => around(context.commandName, args.input, () => next(args)), {
      step: 'initialize',
      name,
    });
  }
  return { doc, destroy: () => client.destroy() };
}
