import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CorruptRecordError } from '../errors.js';
import type { PushTarget, PushTargetStore, StoredPushTarget } from '../ports.js';
import { callAws, isConditionFailure } from './aws-errors.js';

const WHAT = 'the push targets';

/**
 * Push targets in DynamoDB: one item per (userId, deviceId), so a user's targets are one Query of their
 * partition (never a Scan). Web Push keys and tokens are stored as given (DynamoDB encrypts at rest); they never
 * go to a log.
 */
export class DynamoPushTargets implements PushTargetStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async put(stored: StoredPushTarget, maxPerUser: number): Promise<{ evicted: string[] }> {
    const others = (await this.ofUser(stored.userId)).filter((t) => t.deviceId !== stored.deviceId);
    // The oldest go, so a user's new device always registers (a dead one would otherwise hold a slot forever).
    const excess = others.length - (Math.max(1, maxPerUser) - 1);
    const evicted = excess > 0 ? [...others].sort((a, b) => a.registeredAt - b.registeredAt).slice(0, excess) : [];
    await Promise.all(evicted.map((t) => this.removeIf(t)));
    await callAws(WHAT, () => this.db.send(new PutCommand({ TableName: this.tableName, Item: itemOf(stored) })));
    return { evicted: evicted.map((t) => t.deviceId) };
  }

  async remove(userId: string, deviceId: string): Promise<boolean> {
    const result = await callAws(WHAT, () =>
      this.db.send(new DeleteCommand({ TableName: this.tableName, Key: { userId, deviceId }, ReturnValues: 'ALL_OLD' })),
    );
    return result.Attributes !== undefined;
  }

  async removeIf(stored: StoredPushTarget): Promise<void> {
    try {
      await callAws(WHAT, () =>
        this.db.send(
          new DeleteCommand({
            TableName: this.tableName,
            Key: { userId: stored.userId, deviceId: stored.deviceId },
            ConditionExpression: 'registeredAt = :registered',
            ExpressionAttributeValues: { ':registered': stored.registeredAt },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async ofUser(userId: string): Promise<StoredPushTarget[]> {
    const targets: StoredPushTarget[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await callAws(WHAT, () =>
        this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'userId = :u',
            ExpressionAttributeValues: { ':u': userId },
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) targets.push(parseItem(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return targets;
  }

  async get(userId: string, deviceId: string): Promise<StoredPushTarget | undefined> {
    const result = await callAws(WHAT, () =>
      this.db.send(new GetCommand({ TableName: this.tableName, Key: { userId, deviceId }, ConsistentRead: true })),
    );
    return result.Item === undefined ? undefined : parseItem(result.Item);
  }

  async setEndpointArn(stored: StoredPushTarget, endpointArn: string): Promise<void> {
    try {
      await callAws(WHAT, () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { userId: stored.userId, deviceId: stored.deviceId },
            UpdateExpression: 'SET endpointArn = :arn',
            ConditionExpression: 'registeredAt = :registered',
            ExpressionAttributeValues: { ':arn': endpointArn, ':registered': stored.registeredAt },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }
}

function itemOf(stored: StoredPushTarget): Record<string, unknown> {
  const { userId, deviceId, target, registeredAt, endpointArn } = stored;
  const fields =
    target.kind === 'webPush'
      ? { endpoint: target.subscription.endpoint, p256dh: target.subscription.keys.p256dh, auth: target.subscription.keys.auth }
      : { token: target.token };
  return { userId, deviceId, kind: target.kind, registeredAt, ...fields, ...(endpointArn === undefined ? {} : { endpointArn }) };
}

function parseItem(item: Record<string, unknown>): StoredPushTarget {
  const { userId, deviceId, kind, registeredAt, endpoint, p256dh, auth, token, endpointArn } = item;
  const malformed = () => new CorruptRecordError(`push target ${String(userId)}/${String(deviceId)} is malformed`);
  if (typeof userId !== 'string' || typeof deviceId !== 'string' || typeof registeredAt !== 'number') throw malformed();
  let target: PushTarget;
  if (kind === 'webPush') {
    if (typeof endpoint !== 'string' || typeof p256dh !== 'string' || typeof auth !== 'string') throw malformed();
    target = { kind, subscription: { endpoint, keys: { p256dh, auth } } };
  } else if (kind === 'apns' || kind === 'fcm') {
    if (typeof token !== 'string') throw malformed();
    target = { kind, token };
  } else {
    throw malformed();
  }
  return { userId, deviceId, target, registeredAt, ...(typeof endpointArn === 'string' ? { endpointArn } : {}) };
}
