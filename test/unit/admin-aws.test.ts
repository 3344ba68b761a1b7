import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TokenVerifier } from '../../lambdas/auth.js';
import { appKeysFrom } from '../../lambdas/secret.js';
import { runAdmin } from '../../local/admin.js';
import { applyEnv, restoreEnv } from '../support/env.js';

const cloudFormation = mockClient(CloudFormationClient);
const secrets = mockClient(SecretsManagerClient);
const dynamo = mockClient(DynamoDBDocumentClient);
const SECRET = JSON.stringify({ masterKey: 'deployed-stage-master-key-0123456789abcdef' });

beforeEach(() => {
  cloudFormation.reset();
  secrets.reset();
  dynamo.reset();
  // Port 1 has no dev server, so the CLI goes to AWS.
  applyEnv({ PORT: '1', STAGE: 'dev', AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x' });
  cloudFormation.on(DescribeStacksCommand, { StackName: 'RelayWs-dev' }).resolves({
    Stacks: [{
      StackName: 'RelayWs-dev', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE',
      Outputs: [
        { OutputKey: 'MembersTableName', OutputValue: 'RelayWs-dev-Members' },
        { OutputKey: 'AppSecretArn', OutputValue: 'arn:aws:secretsmanager:eu-west-1:1:secret:app' },
      ],
    }],
  });
  secrets.on(GetSecretValueCommand, { SecretId: 'arn:aws:secretsmanager:eu-west-1:1:secret:app' }).resolves({ SecretString: SECRET });
  dynamo.on(PutCommand).resolves({});
});
afterEach(() => restoreEnv());
afterAll(() => {
  cloudFormation.restore();
  secrets.restore();
  dynamo.restore();
});

async function admin(...argv: string[]): Promise<string> {
  const lines: string[] = [];
  await runAdmin(argv, (line) => lines.push(line));
  return lines.join('\n');
}

describe('npm run admin against a deployed stage (STAGE=dev)', () => {
  it('reads the stack outputs and adds the member to the stage\'s table', async () => {
    expect(await admin('add-member', 'team-1', 'alice')).toMatch(/RelayWs-dev/);
    expect(dynamo.commandCalls(PutCommand)[0]?.args[0].input).toMatchObject({ TableName: 'RelayWs-dev-Members', Item: { conversationId: 'team-1', userId: 'alice' } });
  });

  it('signs tokens with the key derived from the stage\'s secret', async () => {
    const token = await admin('token', 'alice', '--ttl', '1h');
    const verifier = new TokenVerifier({ hmacSecret: appKeysFrom(SECRET).jwtSecret });
    expect(await verifier.verify(token)).toEqual({ ok: true, userId: 'alice' });
  });

  it('uses MEMBERS_TABLE and APP_SECRET_ID without reading the stack', async () => {
    applyEnv({ MEMBERS_TABLE: 'explicit-members', APP_SECRET_ID: 'arn:aws:secretsmanager:eu-west-1:1:secret:app' });
    await admin('add-member', 'team-2', 'bob');
    expect(cloudFormation.commandCalls(DescribeStacksCommand)).toHaveLength(0);
    expect(dynamo.commandCalls(PutCommand)[0]?.args[0].input.TableName).toBe('explicit-members');
  });

  it('reports a stack without the outputs', async () => {
    cloudFormation.on(DescribeStacksCommand).resolves({ Stacks: [{ StackName: 'RelayWs-dev', CreationTime: new Date(), StackStatus: 'CREATE_COMPLETE', Outputs: [] }] });
    await expect(admin('token', 'alice')).rejects.toThrow(/no MembersTableName\/AppSecretArn outputs/);
  });
});
