import {
  ApiGatewayManagementApiClient,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
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

/**
 * aws-sdk-client-mock stubs for the three AWS services the handlers call, answering from small tables the
 * test controls: `connections` (the registry rows) and `members` ("conversation/user" keys).
 */
export function mockAws() {
  const dynamo = mockClient(DynamoDBDocumentClient);
  const management = mockClient(ApiGatewayManagementApiClient);
  const sqs = mockClient(SQSClient);
  const connections = new Map<string, ConnectionRecord>();
  const members = new Set<string>();
  const posts: { connectionId: string; frame: Record<string, unknown> }[] = [];
  const gone = new Set<string>();
  const queued: unknown[] = [];

  const install = () => {
    dynamo.reset();
    management.reset();
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
    management.on(PostToConnectionCommand).callsFake((input: { ConnectionId?: string; Data?: Uint8Array }) => {
      const connectionId = input.ConnectionId ?? '';
      if (gone.has(connectionId)) {
        throw new GoneException({ message: 'gone', $metadata: { httpStatusCode: 410 } });
      }
      posts.push({ connectionId, frame: JSON.parse(Buffer.from(input.Data ?? new Uint8Array()).toString('utf8')) });
      return {};
    });
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries?: { Id?: string; MessageBody?: string }[] }) => {
      for (const entry of input.Entries ?? []) queued.push(JSON.parse(entry.MessageBody ?? 'null'));
      return { Successful: (input.Entries ?? []).map((e) => ({ Id: e.Id, MessageId: e.Id, MD5OfMessageBody: '' })), Failed: [] };
    });
  };
  install();

  return {
    dynamo,
    management,
    sqs,
    connections,
    posts,
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
      queued.length = 0;
      gone.clear();
      install();
    },
    restore() {
      dynamo.restore();
      management.restore();
      sqs.restore();
    },
  };
}
export type AwsMocks = ReturnType<typeof mockAws>;
