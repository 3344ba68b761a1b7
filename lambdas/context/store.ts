import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoDevicePositions } from '../adapters/dynamo-device-positions.js';
import { DynamoMessageLog } from '../adapters/dynamo-message-log.js';
import type { DevicePositions, MessageLog, PushMarks } from '../ports.js';
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
