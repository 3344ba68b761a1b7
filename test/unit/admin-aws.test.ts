import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { BatchWriteCommand, DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TokenVerifier } from '../../lambdas/auth.js';
import { jwtKeysFrom } from '../../lambdas/secret.js';
import { runAdmin } from '../../local/admin.js';
import { applyEnv, restoreEnv } from '../support/env.js';

const cloudFormation = mockClient(CloudFormationClient);
const secrets = mockClient(SecretsManagerClient);
const dynamo = mockClient(DynamoDBDocumentClient);
const management = mockClient(ApiGatewayManagementApiClient);
const SECRET = JSON.stringify({ jwtSecret: 'deployed-stage-jwt-secret-0123456789abcdef' });

beforeEach(() => {
  cloudFormation.reset();
  secrets.reset();
  dynamo.reset();
  management.reset();
  // Port 1 has no dev server, so the CLI goes to AWS.
  applyEnv({ PORT: '1', STAGE: 'dev', AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x' });
  cloudFormation.on(DescribeStacksCommand, { StackName: 'RelayWs-dev' }).resolves({
    Stacks: [{
      StackName: 'RelayWs-dev', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE',
      Outputs: [
        { OutputKey: 'MembersTableName', OutputValue: 'RelayWs-dev-Members' },
        { OutputKey: 'MessagesTableName', OutputValue: 'RelayWs-dev-Messages' },
        { OutputKey: 'IdempotencyTableName', OutputValue: 'RelayWs-dev-Idempotency' },
        { OutputKey: 'AppSecretArn', OutputValue: 'arn:aws:secretsmanager:eu-west-1:1:secret:app' },
        { OutputKey: 'JwtSecretArn', OutputValue: 'arn:aws:secretsmanager:eu-west-1:1:secret:jwt' },
        { OutputKey: 'ConnectionsTableName', OutputValue: 'RelayWs-dev-Connections' },
        { OutputKey: 'CallbackUrl', OutputValue: 'https://abc.execute-api.eu-west-1.amazonaws.com/dev' },
      ],
    }],
  });
  secrets.on(GetSecretValueCommand, { SecretId: 'arn:aws:secretsmanager:eu-west-1:1:secret:jwt' }).resolves({ SecretString: SECRET });
  dynamo.on(PutCommand).resolves({});
  dynamo.on(UpdateCommand).resolves({});
  // The message log's last seq (the re-add point of a member): 7 messages so far in every conversation.
  dynamo.on(QueryCommand, { TableName: 'RelayWs-dev-Messages' }).resolves({ Items: [{ conversationId: 'team-1', seq: 7 }] });
  dynamo.on(QueryCommand, { TableName: 'explicit-messages' }).resolves({ Items: [] });
  // Not a member yet, in a conversation with two members: an add has room under MAX_CONVERSATION_MEMBERS.
  dynamo.on(GetCommand).resolves({});
  dynamo.on(QueryCommand, { TableName: 'RelayWs-dev-Members' }).resolves({ Items: [{ userId: 'carol' }, { userId: 'dave' }] });
  dynamo.on(QueryCommand, { TableName: 'explicit-members' }).resolves({ Items: [] });
});
afterEach(() => restoreEnv());
afterAll(() => {
  cloudFormation.restore();
  secrets.restore();
  dynamo.restore();
  management.restore();
});

async function admin(...argv: string[]): Promise<string> {
  const lines: string[] = [];
  await runAdmin(argv, (line) => lines.push(line));
  return lines.join('\n');
}

describe('npm run admin against a deployed stage (STAGE=dev)', () => {
  it('reads the stack outputs and adds the member to the stage\'s table', async () => {
    expect(await admin('add-member', 'team-1', 'alice')).toMatch(/RelayWs-dev/);
    // A member collects what is sent after their (re-)add: sinceSeq is the log's last seq then (an update, so a
    // current member's read position is kept).
    expect(dynamo.commandCalls(UpdateCommand)[0]?.args[0].input).toMatchObject({
      TableName: 'RelayWs-dev-Members',
      Key: { conversationId: 'team-1', userId: 'alice' },
      ExpressionAttributeValues: { ':s': 7 },
    });
  });

  it('refuses to add a member beyond MAX_CONVERSATION_MEMBERS (from its environment), writing nothing', async () => {
    applyEnv({ MAX_CONVERSATION_MEMBERS: '2' });
    await expect(admin('add-member', 'team-1', 'alice')).rejects.toThrow(/team-1 already has 2 members \(MAX_CONVERSATION_MEMBERS is 2\)/);
    expect(dynamo.commandCalls(UpdateCommand)).toHaveLength(0);
  });

  it('signs tokens with the stage\'s JWT secret (never reading the app secret)', async () => {
    const token = await admin('token', 'alice', '--ttl', '1h');
    const verifier = new TokenVerifier({ hmacSecrets: jwtKeysFrom(SECRET).jwtSecrets, maxTokenAgeSeconds: 86_400 });
    expect(await verifier.verify(token)).toEqual({ ok: true, userId: 'alice', expiresAt: expect.any(Number) });
    expect(secrets.commandCalls(GetSecretValueCommand).map((call) => call.args[0].input.SecretId)).toEqual(['arn:aws:secretsmanager:eu-west-1:1:secret:jwt']);
  });

  it('uses explicit table names, secret and callback URL without reading the stack', async () => {
    applyEnv({
      MEMBERS_TABLE: 'explicit-members',
      MESSAGES_TABLE: 'explicit-messages',
      IDEMPOTENCY_TABLE: 'explicit-idempotency',
      JWT_SECRET_ID: 'arn:aws:secretsmanager:eu-west-1:1:secret:jwt',
      CONNECTIONS_TABLE: 'explicit-connections',
      CALLBACK_URL: 'https://abc.execute-api.eu-west-1.amazonaws.com/dev',
    });
    await admin('add-member', 'team-2', 'bob');
    expect(cloudFormation.commandCalls(DescribeStacksCommand)).toHaveLength(0);
    expect(dynamo.commandCalls(UpdateCommand)[0]?.args[0].input.TableName).toBe('explicit-members');
  });

  it('reports a stack without the outputs', async () => {
    cloudFormation.on(DescribeStacksCommand).resolves({ Stacks: [{ StackName: 'RelayWs-dev', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: [] }] });
    await expect(admin('token', 'alice')).rejects.toThrow(/lacks the outputs MembersTableName/);
  });

  it('remove-member deletes the membership and unsubscribes the user\'s open connections on the stage, telling each', async () => {
    const now = Math.floor(Date.now() / 1000);
    const row = (connectionId: string, userId: string) => ({
      connectionId,
      entry: 'c#team-1',
      userId,
      deviceId: 'd',
      conversationId: 'team-1',
      connectedAt: 0,
      expiresAt: now + 600,
    });
    dynamo.on(QueryCommand, { TableName: 'RelayWs-dev-Connections' }).resolves({ Items: [row('AAA=', 'bob'), row('BBB=', 'alice'), row('CCC=', 'bob')] });
    dynamo.on(DeleteCommand).resolves({});
    dynamo.on(BatchWriteCommand).resolves({ UnprocessedItems: {} });
    management.on(PostToConnectionCommand, { ConnectionId: 'CCC=' }).rejects(Object.assign(new Error('gone'), { name: 'GoneException' }));
    management.on(PostToConnectionCommand, { ConnectionId: 'AAA=' }).resolves({});
    expect(await admin('remove-member', 'team-1', 'bob')).toMatch(/unsubscribed 2 open connections/);
    expect(dynamo.commandCalls(DeleteCommand).map((c) => c.args[0].input)).toEqual([
      { TableName: 'RelayWs-dev-Members', Key: { conversationId: 'team-1', userId: 'bob' } },
    ]);
    // Only bob's subscriptions to the conversation go; the connections themselves stay open.
    const unsubscribed = dynamo.commandCalls(BatchWriteCommand).flatMap((c) => c.args[0].input.RequestItems?.['RelayWs-dev-Connections'] ?? []);
    expect(unsubscribed.map((request) => request.DeleteRequest?.Key)).toEqual([
      { connectionId: 'AAA=', entry: 'c#team-1' },
      { connectionId: 'CCC=', entry: 'c#team-1' },
    ]);
    const told = management.commandCalls(PostToConnectionCommand).map((c) => c.args[0].input);
    expect(told.map((input) => input.ConnectionId).sort()).toEqual(['AAA=', 'CCC=']);
    for (const input of told) {
      expect(JSON.parse(String(input.Data))).toEqual({ type: 'unsubscribed', conversations: [{ conversationId: 'team-1', status: 'forbidden' }] });
    }
  });
});
