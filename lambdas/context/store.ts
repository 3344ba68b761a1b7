import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDevicePositions } from '../adapters/dynamo-device-positions.js';
import { DynamoMessageLog } from '../adapters/dynamo-message-log.js';
import { DynamoPushTargets } from '../adapters/dynamo-push-targets.js';
import type { DevicePositions, MessageLog, PushMarks, PushTargetStore } from '../ports.js';
import { systemClock } from './settings.js';

/** The message log and idempotency records (DynamoDB: the record of every message and seq). */
export function messageLog(
  config: { MESSAGES_TABLE: string; IDEMPOTENCY_TABLE: string; HISTORY_RETENTION_SECONDS?: number | undefined; IDEMPOTENCY_WINDOW_SECONDS: number },
  db: DynamoDBDocumentClient,
): MessageLog {
  return new DynamoMessageLog(db, { messages: config.MESSAGES_TABLE, idempotency: config.IDEMPOTENCY_TABLE }, systemClock, {
    ...(config.HISTORY_RETENTION_SECONDS === undefined ? {} : { retentionSeconds: config.HISTORY_RETENTION_SECONDS }),
    idempotencyWindowSeconds: config.IDEMPOTENCY_WINDOW_SECONDS,
  });
}

/** Where each device stands in each conversation, and its push flag and marker (DynamoDB, one table). */
export function devicePositions(
  config: { POSITIONS_TABLE: string; DEVICE_TTL_SECONDS: number; MAX_DEVICES_PER_USER: number },
  db: DynamoDBDocumentClient,
): DevicePositions & PushMarks {
  return new DynamoDevicePositions(db, config.POSITIONS_TABLE, systemClock, {
    deviceTtlSeconds: config.DEVICE_TTL_SECONDS,
    maxDevicesPerUser: config.MAX_DEVICES_PER_USER,
  });
}

/**
 * Each device's push target (DynamoDB). Here, not in context/push.ts: `subscribe` and `$connect` read targets,
 * and must not bundle the push senders (web-push, the SNS client) for it.
 */
export function pushTargets(config: { PUSH_TARGETS_TABLE: string }, db: DynamoDBDocumentClient): PushTargetStore {
  return new DynamoPushTargets(db, config.PUSH_TARGETS_TABLE);
}
