import { BatchGetCommand, BatchWriteCommand, QueryCommand, type DynamoDBDocumentClient, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { UnavailableError } from '../errors.js';
import { callAws } from './aws-errors.js';

type Key = Record<string, unknown>;
type WriteRequest = { PutRequest: { Item: Key } } | { DeleteRequest: { Key: Key } };

/** DynamoDB's limits on one batch call. */
const WRITE_BATCH = 25;
const GET_BATCH = 100;
/** Rounds of retrying what DynamoDB left unprocessed (throttling) before giving up. */
const MAX_ROUNDS = 5;

const pause = (round: number) => new Promise((resolve) => setTimeout(resolve, 20 * 2 ** round));

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let start = 0; start < items.length; start += size) out.push(items.slice(start, start + size));
  return out;
}

/** Writes every request (puts and deletes), 25 per call, retrying what DynamoDB leaves unprocessed. */
export async function writeAll(db: DynamoDBDocumentClient, tableName: string, what: string, requests: readonly WriteRequest[]): Promise<void> {
  for (const chunk of chunks(requests, WRITE_BATCH)) {
    let pending: WriteRequest[] = chunk;
    for (let round = 0; pending.length > 0; round += 1) {
      if (round === MAX_ROUNDS) throw new UnavailableError(`${what} is throttled; retry`);
      if (round > 0) await pause(round);
      const result = await callAws(what, () => db.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending } })));
      const left = result.UnprocessedItems?.[tableName] ?? [];
      pending = left.flatMap((request): WriteRequest[] => {
        if (request.PutRequest?.Item !== undefined) return [{ PutRequest: { Item: request.PutRequest.Item } }];
        if (request.DeleteRequest?.Key !== undefined) return [{ DeleteRequest: { Key: request.DeleteRequest.Key } }];
        return [];
      });
    }
  }
}

/** Reads every key, 100 per call, retrying what DynamoDB leaves unprocessed. Missing items are left out. */
export async function getAll(
  db: DynamoDBDocumentClient,
  tableName: string,
  what: string,
  keys: readonly Key[],
  options: { consistent: boolean; projection?: string },
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for (const chunk of chunks(keys, GET_BATCH)) {
    let pending: Key[] = chunk;
    for (let round = 0; pending.length > 0; round += 1) {
      if (round === MAX_ROUNDS) throw new UnavailableError(`${what} is throttled; retry`);
      if (round > 0) await pause(round);
      const result = await callAws(what, () =>
        db.send(
          new BatchGetCommand({
            RequestItems: {
              [tableName]: {
                Keys: pending,
                ConsistentRead: options.consistent,
                ...(options.projection === undefined ? {} : { ProjectionExpression: options.projection }),
              },
            },
          }),
        ),
      );
      items.push(...(result.Responses?.[tableName] ?? []));
      pending = result.UnprocessedKeys?.[tableName]?.Keys ?? [];
    }
  }
  return items;
}

/** Every item a Query matches, following LastEvaluatedKey page by page (a page stops at 1 MB). */
export async function queryAll(
  db: DynamoDBDocumentClient,
  what: string,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey'>,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await callAws(what, () => db.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey })));
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey !== undefined);
  return items;
}
