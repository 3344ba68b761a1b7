import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import type { ConnectionRecord, Subscription } from '../../lambdas/ports.js';
import { applyEnv } from './env.js';

/**
 * aws-sdk-client-mock stubs for DynamoDB and SQS, answering from small tables the test controls: `connections`
 * (the registry's items by "connectionId|entry": records, subscriptions, users' sets) and `members`
 * ("conversation/user" keys). The Management API is posted to over HTTP
 * (SigV4-signed, not through an SDK client), so it is a small local server that records posts and answers 410
 * for ids in `gone`; CALLBACK_URL points the handlers at it.
 */
export async function mockAws() {
  const dynamo = mockClient(DynamoDBDocumentClient);
  const sqs = mockClient(SQSClient);
  const connections = new Map<string, Record<string, unknown>>();
  const itemKey = (key: Record<string, unknown>) => `${String(key.connectionId)}|${String(key.entry)}`;
  const memberItem = (key: Record<string, unknown>) => {
    const memberKey = `${String(key.conversationId)}/${String(key.userId)}`;
    return members.has(memberKey) ? { conversationId: key.conversationId, userId: key.userId } : undefined;
  };
  const members = new Set<string>();
  const posts: { connectionId: string; frame: Record<string, unknown> }[] = [];
  const gone = new Set<string>();
  const queued: unknown[] = [];
  /** Every POST the Management API received, gone ones included. */
  const attempts: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const match = /^\/[^/]+\/@connections\/([^/?]+)$/.exec(req.url ?? '');
      const connectionId = decodeURIComponent(match?.[1] ?? '');
      if (req.method !== 'POST' || match === null) {
        res.writeHead(404).end();
        return;
      }
      attempts.push(connectionId);
      if (gone.has(connectionId)) {
        res.writeHead(410, { 'x-amzn-ErrorType': 'GoneException', 'content-type': 'application/json' }).end('{"message":"gone"}');
        return;
      }
      posts.push({ connectionId, frame: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/test`;
  applyEnv({ CALLBACK_URL: endpoint });

  const install = () => {
    dynamo.reset();
    sqs.reset();
    dynamo.on(GetCommand).callsFake((input: { Key?: Record<string, unknown> }) => {
      const key = input.Key ?? {};
      if (typeof key.connectionId === 'string') return { Item: connections.get(itemKey(key)) };
      return { Item: memberItem(key) };
    });
    dynamo.on(BatchGetCommand).callsFake((input: { RequestItems?: Record<string, { Keys?: Record<string, unknown>[] }> }) => {
      const responses: Record<string, Record<string, unknown>[]> = {};
      for (const [table, request] of Object.entries(input.RequestItems ?? {})) {
        responses[table] = (request.Keys ?? []).flatMap((key) => {
          const item = typeof key.connectionId === 'string' ? connections.get(itemKey(key)) : memberItem(key);
          return item === undefined ? [] : [item];
        });
      }
      return { Responses: responses };
    });
    dynamo.on(PutCommand).callsFake((input: { Item?: Record<string, unknown> }) => {
      const item = input.Item ?? {};
      if (typeof item.connectionId === 'string') connections.set(itemKey(item), item);
      return {};
    });
    dynamo.on(UpdateCommand).callsFake((input: { Key?: Record<string, unknown>; UpdateExpression?: string; ExpressionAttributeValues?: Record<string, unknown> }) => {
      // Only the users' sets of open connections are updated; the limit is not enforced here.
      const key = input.Key ?? {};
      const item = connections.get(itemKey(key)) ?? { ...key };
      const open = item.open instanceof Set ? new Set(item.open) : new Set<unknown>();
      const ids = input.ExpressionAttributeValues?.[':ids'];
      for (const id of ids instanceof Set ? ids : []) {
        if (input.UpdateExpression?.startsWith('DELETE') === true) open.delete(id);
        else open.add(id);
      }
      connections.set(itemKey(key), { ...item, open });
      return {};
    });
    dynamo.on(DeleteCommand).callsFake((input: { Key?: Record<string, unknown> }) => {
      connections.delete(itemKey(input.Key ?? {}));
      return {};
    });
    dynamo.on(BatchWriteCommand).callsFake((input: { RequestItems?: Record<string, { PutRequest?: { Item?: Record<string, unknown> }; DeleteRequest?: { Key?: Record<string, unknown> } }[]> }) => {
      for (const requests of Object.values(input.RequestItems ?? {})) {
        for (const request of requests) {
          const item = request.PutRequest?.Item;
          if (item !== undefined) connections.set(itemKey(item), item);
          const key = request.DeleteRequest?.Key;
          if (key !== undefined) connections.delete(itemKey(key));
        }
      }
      return { UnprocessedItems: {} };
    });
    dynamo.on(QueryCommand).callsFake((input: { IndexName?: string; ExpressionAttributeValues?: Record<string, unknown> }) => {
      const values = input.ExpressionAttributeValues ?? {};
      if (input.IndexName !== undefined) {
        return { Items: [...connections.values()].filter((c) => c.conversationId === values[':c']) };
      }
      if (typeof values[':id'] === 'string') {
        const prefix = typeof values[':prefix'] === 'string' ? values[':prefix'] : '';
        return { Items: [...connections.values()].filter((c) => c.connectionId === values[':id'] && String(c.entry).startsWith(prefix)) };
      }
      // The members of a conversation.
      const conversationId = String(values[':c']);
      return { Items: [...members].filter((m) => m.startsWith(`${conversationId}/`)).map((m) => ({ userId: m.slice(conversationId.length + 1) })) };
    });
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries?: { Id?: string; MessageBody?: string }[] }) => {
      for (const entry of input.Entries ?? []) queued.push(JSON.parse(entry.MessageBody ?? 'null'));
      return { Successful: (input.Entries ?? []).map((e) => ({ Id: e.Id, MessageId: e.Id, MD5OfMessageBody: '' })), Failed: [] };
    });
  };
  install();

  return {
    dynamo,
    sqs,
    endpoint,
    connections,
    posts,
    attempts,
    queued,
    gone,
    addMember(conversationId: string, userId: string) {
      members.add(`${conversationId}/${userId}`);
    },
    /** Registers a connection and its subscription directly (as $connect with a conversationId would). */
    connect(binding: Omit<Subscription, 'connectedAt' | 'expiresAt'>) {
      const { conversationId, ...identity } = binding;
      const record: ConnectionRecord = { ...identity, connectedAt: Date.now(), expiresAt: Math.floor(Date.now() / 1000) + 3600 };
      connections.set(itemKey({ connectionId: record.connectionId, entry: '#connection' }), { ...record, entry: '#connection' });
      connections.set(itemKey({ connectionId: record.connectionId, entry: `c#${conversationId}` }), { ...record, entry: `c#${conversationId}`, conversationId });
    },
    /** The registry's subscription items (as the conversation index holds them). */
    subscriptions(): Record<string, unknown>[] {
      return [...connections.values()].filter((item) => typeof item.conversationId === 'string');
    },
    postsTo(connectionId: string) {
      return posts.filter((p) => p.connectionId === connectionId).map((p) => p.frame);
    },
    reset() {
      connections.clear();
      members.clear();
      posts.length = 0;
      attempts.length = 0;
      queued.length = 0;
      gone.clear();
      install();
    },
    async restore() {
      dynamo.restore();
      sqs.restore();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
export type AwsMocks = Awaited<ReturnType<typeof mockAws>>;
