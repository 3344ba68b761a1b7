/**
 * Names the stack exposes to tools outside CDK (the admin CLI reads these outputs), kept free of CDK
 * imports so those tools load fast.
 */
export const OUTPUTS = {
  webSocketUrl: 'WebSocketUrl',
  callbackUrl: 'CallbackUrl',
  stageName: 'StageName',
  connectionsTable: 'ConnectionsTableName',
  membersTable: 'MembersTableName',
  messagesTable: 'MessagesTableName',
  idempotencyTable: 'IdempotencyTableName',
  fanoutQueueUrl: 'FanoutQueueUrl',
  deadLetterQueueUrl: 'FanoutDeadLetterQueueUrl',
  appSecretArn: 'AppSecretArn',
  jwtSecretArn: 'JwtSecretArn',
  notifyDeadLetterQueueUrl: 'NotifyDeadLetterQueueUrl',
  vapidSecretArn: 'VapidSecretArn',
  vapidPublicKey: 'VapidPublicKey',
  apnsPlatformArn: 'ApnsPlatformArn',
  fcmPlatformArn: 'FcmPlatformArn',
  redisMode: 'RedisMode',
} as const;

export const stackNameFor = (stage: string): string => `RelayWs-${stage}`;
