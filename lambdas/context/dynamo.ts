import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { credentialsOption } from './credentials.js';
import type { Env, Scope } from './lazy.js';

export function documentClient(config: { AWS_REGION: string; DYNAMODB_ENDPOINT?: string | undefined }, scope: Scope, env: Env): DynamoDBDocumentClient {
  const client = scope.adopt(
    new DynamoDBClient({
      region: config.AWS_REGION,
      maxAttempts: 4,
      ...credentialsOption(env),
      ...(config.DYNAMODB_ENDPOINT === undefined ? {} : { endpoint: config.DYNAMODB_ENDPOINT }),
    }),
    (c) => c.destroy(),
  );
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}
