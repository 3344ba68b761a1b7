import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One IAM-relevant DynamoDB call: who made it (the access key id it was signed with), the action, the table, the index. */
export interface RecordedCall {
  caller: string;
  /** The IAM action the call needs (`GetItem`, `Query`, …); a transaction counts as the actions of its items. */
  action: string;
  table: string;
  /** Set for a Query (or Scan) on an index. */
  index?: string;
}

export interface DynamoRecorder {
  endpoint: string;
  readonly calls: RecordedCall[];
  close(): Promise<void>;
}

/** The operations of a TransactWriteItems / TransactGetItems item, by the IAM action each one needs. */
const TRANSACT_ACTIONS: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem', Get: 'GetItem' };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The (action, table, index) triples a request asks DynamoDB for, from its `X-Amz-Target` operation and body. */
export function callsIn(operation: string, body: unknown): Omit<RecordedCall, 'caller'>[] {
  if (!isObject(body)) return [{ action: operation, table: '' }];
  if ((operation === 'BatchGetItem' || operation === 'BatchWriteItem') && isObject(body.RequestItems)) {
    return Object.keys(body.RequestItems).map((table) => ({ action: operation, table }));
  }
  if ((operation === 'TransactWriteItems' || operation === 'TransactGetItems') && Array.isArray(body.TransactItems)) {
    return body.TransactItems.flatMap((item: unknown) =>
      isObject(item)
        ? Object.entries(item).flatMap(([kind, part]) =>
            isObject(part) && typeof part.TableName === 'string' ? [{ action: TRANSACT_ACTIONS[kind] ?? kind, table: part.TableName }] : [],
          )
        : [],
    );
  }
  const table = typeof body.TableName === 'string' ? body.TableName : '';
  return [{ action: operation, table, ...(typeof body.IndexName === 'string' ? { index: body.IndexName } : {}) }];
}

/** `AWS4-HMAC-SHA256 Credential=<key id>/<date>/…` → the key id. */
function callerOf(authorization: string | undefined): string {
  return /Credential=([^/,\s]+)\//.exec(authorization ?? '')?.[1] ?? 'unsigned';
}

/**
 * An HTTP proxy on loopback in front of a DynamoDB endpoint that records who asked for what — the caller from the
 * request's SigV4 credential, so functions given their own access key ids are told apart as IAM tells roles
 * apart — and forwards every request unchanged.
 */
export async function startDynamoRecorder(target: string): Promise<DynamoRecorder> {
  const upstream = new URL(target);
  const calls: RecordedCall[] = [];
  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const header = incoming.headers['x-amz-target'];
      const operation = (Array.isArray(header) ? header[0] : header)?.split('.').pop() ?? 'unknown';
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        parsed = undefined;
      }
      const caller = callerOf(incoming.headers.authorization);
      for (const call of callsIn(operation, parsed)) calls.push({ caller, ...call });
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: incoming.method, path: incoming.url, headers: { ...incoming.headers, host: upstream.host } },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 500, answer.headers);
          answer.pipe(outgoing);
        },
      );
      forward.on('error', () => outgoing.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
