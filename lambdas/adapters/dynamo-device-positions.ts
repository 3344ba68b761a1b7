import {
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { PUSH_POSITIONS_INDEX } from '../../deploy/tables.js';
import { CorruptRecordError, UnavailableError } from '../errors.js';
import type { Clock, Device, DevicePosition, DevicePositions, PushCandidate, PushMarks } from '../ports.js';
import { callAws, isConditionFailure } from './aws-errors.js';

const DEFAULT_DEVICE_TTL_SECONDS = 30 * 24 * 3600;
const DEFAULT_MAX_DEVICES_PER_USER = 10;

export interface DynamoDevicePositionsOptions {
  /** A device not seen for this long is forgotten (and re-registers from a new start). @default 30 days */
  readonly deviceTtlSeconds?: number;
  /** Devices a user keeps per conversation; one more evicts the least recently seen. @default 10 */
  readonly maxDevicesPerUser?: number;
}

/** A stored position and the key fields that go with it. */
interface PositionItem extends DevicePosition {
  device: string;
  expiresAt: number;
  /** The notifier's marker (see PushMarks): removed by `save`, so an ack clears it. */
  pushedAt?: number;
  /** The push flag (see PushMarks): the conversationId again, as the sparse push index's key. */
  pushConversation?: string;
}


/** The sort key: the encoded user id is a prefix no other user's devices share (`/` is encoded in it). */
function userPrefix(userId: string): string {
  return `${encodeURIComponent(userId)}/`;
}

export function deviceKey(device: Device): string {
  return `${userPrefix(device.userId)}${device.deviceId}`;
}

/**
 * Device positions in DynamoDB: one item per (conversationId, user/device), saved with optimistic concurrency
 * on `version`. Expiry is checked on every read against the clock, so nothing waits for TTL.
 */
export class DynamoDevicePositions implements DevicePositions, PushMarks {
  private readonly deviceTtlSeconds: number;
  private readonly maxDevicesPerUser: number;

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly clock: Clock,
    options: DynamoDevicePositionsOptions = {},
  ) {
    this.deviceTtlSeconds = options.deviceTtlSeconds ?? DEFAULT_DEVICE_TTL_SECONDS;
    this.maxDevicesPerUser = Math.max(1, options.maxDevicesPerUser ?? DEFAULT_MAX_DEVICES_PER_USER);
  }

  async register(conversationId: string, device: Device, startAfterSeq: number, now: number): Promise<DevicePosition> {
    const key = deviceKey(device);
    // The common case (a device reconnecting) is one conditional write; only a new device reads its user's others.
    const refreshed = await this.refresh(conversationId, key, now);
    if (refreshed !== undefined) return refreshed;
    const devices = (await this.userItems(conversationId, device.userId)).filter((item) => this.isLive(item));

    const others = devices.filter((item) => item.device !== key);
    const excess = others.length - (this.maxDevicesPerUser - 1);
    if (excess > 0) {
      const leastRecent = [...others].sort((a, b) => a.lastSeenAt - b.lastSeenAt).slice(0, excess);
      await Promise.all(leastRecent.map((item) => this.delete(conversationId, item.device)));
    }

    const fresh: DevicePosition = {
      conversationId,
      userId: device.userId,
      deviceId: device.deviceId,
      ackedThrough: startAfterSeq,
      acked: [],
      lastSeenAt: now,
      version: 1,
    };
    try {
      await callAws('the device positions', () =>
        this.db.send(
          new PutCommand({
            TableName: this.tableName,
            Item: this.itemOf(fresh),
            // Absent or expired only (expired = expiresAt ≤ now in seconds, as isLive reads it): a concurrent
            // register of the same device must not be reset.
            ConditionExpression: 'attribute_not_exists(device) OR expiresAt <= :now',
            ExpressionAttributeValues: { ':now': this.nowSeconds() },
          }),
        ),
      );
      return fresh;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
    // A concurrent register created it first; it can only be gone again if it was forgotten meanwhile.
    const concurrent = await this.get(conversationId, device);
    if (concurrent !== undefined) return concurrent;
    throw new UnavailableError('the device position changed during registration; retry');
  }

  async get(conversationId: string, device: Device): Promise<DevicePosition | undefined> {
    const result = await callAws('the device positions', () =>
      this.db.send(
        new GetCommand({
          TableName: this.tableName,
          Key: { conversationId, device: deviceKey(device) },
          ConsistentRead: true,
        }),
      ),
    );
    if (result.Item === undefined) return undefined;
    const item = parseItem(result.Item);
    return this.isLive(item) ? toPosition(item) : undefined;
  }

  async save(next: DevicePosition): Promise<boolean> {
    const prev = next.version - 1;
    const { device, conversationId, ...fields } = this.itemOf(next);
    const names = Object.keys(fields);
    // An update, not a put: the push flag (set by someone else, any time) stays; the push marker goes.
    const condition =
      prev < 1 ? { ConditionExpression: 'attribute_not_exists(device)' } : { ConditionExpression: 'version = :prev' };
    try {
      await callAws('the device positions', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { conversationId, device },
            UpdateExpression: `SET ${names.map((name) => `#${name} = :${name}`).join(', ')} REMOVE pushedAt`,
            ExpressionAttributeNames: Object.fromEntries(names.map((name) => [`#${name}`, name])),
            ExpressionAttributeValues: {
              ...Object.fromEntries(Object.entries(fields).map(([name, value]) => [`:${name}`, value])),
              ...(prev < 1 ? {} : { ':prev': prev }),
            },
            ...condition,
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async candidates(conversationId: string): Promise<PushCandidate[]> {
    const out: PushCandidate[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await callAws('the device positions', () =>
        this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            // Only the positions of devices with a push target are in this index; a global index is read
            // eventually consistently, and `mark` checks the item itself before anyone is pushed.
            IndexName: PUSH_POSITIONS_INDEX,
            KeyConditionExpression: 'pushConversation = :c',
            ExpressionAttributeValues: { ':c': conversationId },
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const raw of page.Items ?? []) {
        const item = parseItem(raw);
        if (!this.isLive(item)) continue;
        out.push({ ...toPosition(item), ...(item.pushedAt === undefined ? {} : { pushedAt: item.pushedAt }) });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return out;
  }

  async mark(position: DevicePosition, seq: number, at: number): Promise<boolean> {
    try {
      await callAws('the device positions', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { conversationId: position.conversationId, device: deviceKey(position) },
            UpdateExpression: 'SET pushedAt = :at',
            // Unset, and the message still pending on the item itself (the candidate came from an eventually
            // consistent index): an ack saved since, of this message, means there is nothing to push.
            ConditionExpression: 'attribute_exists(device) AND attribute_not_exists(pushedAt) AND ackedThrough < :seq AND NOT contains(acked, :seq)',
            ExpressionAttributeValues: { ':at': at, ':seq': seq },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }

  async unmark(position: DevicePosition, at: number): Promise<void> {
    try {
      await callAws('the device positions', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { conversationId: position.conversationId, device: deviceKey(position) },
            UpdateExpression: 'REMOVE pushedAt',
            ConditionExpression: 'pushedAt = :at',
            ExpressionAttributeValues: { ':at': at },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async setPushable(conversationId: string, device: Device, pushable: boolean): Promise<void> {
    try {
      await callAws('the device positions', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { conversationId, device: deviceKey(device) },
            UpdateExpression: pushable ? 'SET pushConversation = :c' : 'REMOVE pushConversation',
            // Never creates a position: a device with none there has nothing pending to be woken for.
            ConditionExpression: 'attribute_exists(device)',
            ...(pushable ? { ExpressionAttributeValues: { ':c': conversationId } } : {}),
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async forgetUser(conversationId: string, userId: string): Promise<void> {
    const items = await this.userItems(conversationId, userId);
    await Promise.all(items.map((item) => this.delete(conversationId, item.device)));
  }

  /** Every stored device of a user in the conversation, expired ones included (the caller decides). */
  private async userItems(conversationId: string, userId: string): Promise<PositionItem[]> {
    const items: PositionItem[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await callAws('the device positions', () =>
        this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: 'conversationId = :c AND begins_with(device, :prefix)',
            ExpressionAttributeValues: { ':c': conversationId, ':prefix': userPrefix(userId) },
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) items.push(parseItem(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey !== undefined);
    return items;
  }

  /** Only lastSeenAt and its expiry: the position and its version belong to `save`. */
  private async refresh(conversationId: string, key: string, now: number): Promise<DevicePosition | undefined> {
    try {
      const result = await callAws('the device positions', () =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { conversationId, device: key },
            // A reconnect (or subscribe) ends the device's offline period: its next one may be pushed again.
            UpdateExpression: 'SET lastSeenAt = :seen, expiresAt = :expires REMOVE pushedAt',
            ConditionExpression: 'attribute_exists(device) AND expiresAt > :now',
            ExpressionAttributeValues: { ':seen': now, ':expires': this.expiresAt(now), ':now': this.nowSeconds() },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      return result.Attributes === undefined ? undefined : toPosition(parseItem(result.Attributes));
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  private async delete(conversationId: string, device: string): Promise<void> {
    await callAws('the device positions', () =>
      this.db.send(new DeleteCommand({ TableName: this.tableName, Key: { conversationId, device } })),
    );
  }

  /** The item of a position: the position only, never the push flag or marker (`save` keeps the one, drops the other). */
  private itemOf(position: DevicePosition): PositionItem {
    const { conversationId, userId, deviceId, ackedThrough, lastSeenAt, version } = position;
    return {
      conversationId,
      userId,
      deviceId,
      ackedThrough,
      lastSeenAt,
      version,
      acked: [...position.acked].sort((a, b) => a - b),
      device: deviceKey(position),
      expiresAt: this.expiresAt(position.lastSeenAt),
    };
  }

  private expiresAt(lastSeenAt: number): number {
    return Math.floor(lastSeenAt / 1000) + this.deviceTtlSeconds;
  }

  private isLive(item: PositionItem): boolean {
    return item.expiresAt * 1000 > this.clock.now();
  }

  private nowSeconds(): number {
    return Math.floor(this.clock.now() / 1000);
  }
}

function parseItem(item: Record<string, unknown>): PositionItem {
  const { conversationId, device, userId, deviceId, ackedThrough, acked, lastSeenAt, version, expiresAt, pushedAt, pushConversation } = item;
  if (
    typeof conversationId !== 'string' ||
    typeof device !== 'string' ||
    typeof userId !== 'string' ||
    typeof deviceId !== 'string' ||
    typeof ackedThrough !== 'number' ||
    !Array.isArray(acked) ||
    !acked.every((seq): seq is number => typeof seq === 'number') ||
    typeof lastSeenAt !== 'number' ||
    typeof version !== 'number' ||
    typeof expiresAt !== 'number'
  ) {
    throw new CorruptRecordError(`device position ${String(conversationId)}/${String(device)} is malformed`);
  }
  return {
    conversationId,
    device,
    userId,
    deviceId,
    ackedThrough,
    acked,
    lastSeenAt,
    version,
    expiresAt,
    ...(typeof pushedAt === 'number' ? { pushedAt } : {}),
    ...(typeof pushConversation === 'string' ? { pushConversation } : {}),
  };
}

function toPosition(item: PositionItem): DevicePosition {
  const { conversationId, userId, deviceId, ackedThrough, acked, lastSeenAt, version, pushConversation } = item;
  return { conversationId, userId, deviceId, ackedThrough, acked, lastSeenAt, version, ...(pushConversation === undefined ? {} : { pushable: true }) };
}
