import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import type { ConnectionRecord } from '../../lambdas/ports.js';
import { applyEnv } from './env.js';

/**
 * aws-sdk-client-mock stubs for DynamoDB and SQS, answering from small tables the test controls: `connections`
 * (the registry rows) and `members` ("conversation/user" keys). The Management API is posted to over HTTP
 * (SigV4-signed, not through an SDK client), so it is a small local server that records posts and answers 410
 * for ids in `gone`; CALLBACK_URL points the handlers at it.
 */
export async function mockAws() {
  const dynamo = mockClient(DynamoDBDocumentClient);
  const sqs = mockClient(SQSClient);
  const connections = new Map<string, ConnectionRecord>();
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
    dynamo.on(GetCommand).callsFake((input: { TableName?: string; Key?: Record<string, unknown> }) => {
      const key = input.Key ?? {};
      if (typeof key.connectionId === 'string') return { Item: connections.get(key.connectionId) };
      const memberKey = `${String(key.conversationId)}/${String(key.userId)}`;
      return { Item: members.has(memberKey) ? { userId: key.userId } : undefined };
    });
    dynamo.on(PutCommand).callsFake((input: { Item?: Record<string, unknown> }) => {
      const item = input.Item ?? {};
      if (typeof item.connectionId === 'string') connections.set(item.connectionId, item as unknown as ConnectionRecord);
      return {};
    });
    dynamo.on(DeleteCommand).callsFake((input: { Key?: Record<string, unknown> }) => {
      const id = input.Key?.connectionId;
      if (typeof id === 'string') connections.delete(id);
      return {};
    });
    dynamo.on(QueryCommand).callsFake((input: { ExpressionAttributeValues?: Record<string, unknown> }) => {
      const conversationId = input.ExpressionAttributeValues?.[':c'];
      return { Items: [...connections.values()].filter((c) => c.conversationId === conversationId) };
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
    /** Registers a connection row directly (as $connect would). */
    connect(record: Omit<ConnectionRecord, 'connectedAt' | 'expiresAt'>) {
      connections.set(record.connectionId, {
        ...record,
        connectedAt: Date.now(),
        expiresAt: Math.floor(Date.now() / 1000) + 3600,
      });
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
