import { parseArgs } from 'node:util';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoMembershipStore } from '../lambdas/adapters/dynamo-members.js';
import { DynamoConnectionRegistry } from '../lambdas/adapters/dynamo-registry.js';
import { DynamoMessageLog } from '../lambdas/adapters/dynamo-message-log.js';
import { loadMembershipLimit } from '../lambdas/config.js';
import { addMember, removeMember } from '../lambdas/domain/membership.js';
import type { ConnectionPoster, MembershipStore, MessageLog } from '../lambdas/ports.js';
import { conversationIdSchema } from '../lambdas/protocol.js';
import { appKeysFrom, jwtKeysFrom, type JwtKeys } from '../lambdas/secret.js';
import { OUTPUTS, stackNameFor } from '../lib/outputs.js';
import { readDevState } from './dev-state.js';
import { parseTtl, signToken } from './tokens.js';

/**
 * `npm run admin -- <command>`: membership and tokens, against the dev server running on PORT (default 3001),
 * or against a deployed stage when STAGE is set (reads the stack's outputs with your AWS credentials).
 */
const USAGE = `Usage: npm run admin -- <command>

Commands:
  add-member <conversationId> <userId>      let a user connect to a conversation (refused beyond
                                            MAX_CONVERSATION_MEMBERS members, default 1000, read from this
                                            tool's environment)
  remove-member <conversationId> <userId>   revoke it: their devices stop collecting messages at once, and
                                            their open connections are unsubscribed from it (and told)
  token <userId> [--ttl 1h]                 sign a connection token (HS256 with the stage's JWT secret)

Target:
  the dev server on PORT (default 3001), as started by \`npm start\`; or
  STAGE=<stage> (with AWS credentials and AWS_REGION): the deployed stack RelayWs-<stage>
  (or STACK_NAME=<name>); MEMBERS_TABLE, MESSAGES_TABLE, IDEMPOTENCY_TABLE, JWT_SECRET_ID, CONNECTIONS_TABLE and
  CALLBACK_URL, when all set, are used without reading the stack.
`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

interface Target {
  description: string;
  members: MembershipStore;
  /** Read for the conversation's last seq: a (re-)added member collects what comes after it. */
  messages: MessageLog;
  /** The stage's token-signing secret (a deployed stage's JWT secret, or the dev server's). */
  keys(): Promise<JwtKeys>;
  /** Removes the member and unsubscribes their open connections from the conversation; answers how many. */
  removeMember(conversationId: string, userId: string): Promise<number>;
  close(): void;
}

/**
 * Removes a member (lambdas/domain/membership.ts): the membership row, then each of the user's subscriptions to
 * the conversation, each connection told with an `unsubscribed` frame through the Management API. Without
 * this a removed member's socket would keep receiving until some container re-read the membership.
 */
function memberRemover(
  db: DynamoDBDocumentClient,
  members: MembershipStore,
  connectionsTable: string,
  callbackUrl: string,
  credentials?: { accessKeyId: string; secretAccessKey: string },
) {
  const registry = new DynamoConnectionRegistry(db, connectionsTable, { now: () => Date.now() });
  const management = new ApiGatewayManagementApiClient({ endpoint: callbackUrl, ...(credentials === undefined ? {} : { credentials, region: 'us-east-1' }) });
  const poster: ConnectionPoster = {
    post: async (connectionId, data) => {
      try {
        await management.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }));
        return 'delivered';
      } catch (error) {
        if (error instanceof Error && error.name === 'GoneException') return 'gone';
        throw error;
      }
    },
  };
  return {
    removeMember: (conversationId: string, userId: string) =>
      removeMember({ members, registry, posterFor: () => poster }, callbackUrl, conversationId, userId),
    destroy: () => management.destroy(),
  };
}

async function localTarget(port: string): Promise<Target | undefined> {
  const state = await readDevState(port);
  if (state === undefined) return undefined;
  const db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: state.dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
  );
  const members = new DynamoMembershipStore(db, state.tables.members);
  const remover = memberRemover(db, members, state.tables.connections, state.managementEndpoint, { accessKeyId: 'local', secretAccessKey: 'local' });
  return {
    description: `the dev server at ${state.url}`,
    members,
    messages: messageLogOf(db, state.tables),
    keys: async () => appKeysFrom(state.secretJson),
    removeMember: remover.removeMember,
    close: () => {
      db.destroy();
      remover.destroy();
    },
  };
}

/**
 * The log, read here only for its last seq. Built without the stage's history retention: if the newest message
 * had already expired, a re-added member would start a little earlier (still-stored messages), never later.
 */
function messageLogOf(db: DynamoDBDocumentClient, tables: { messages: string; idempotency: string }): MessageLog {
  return new DynamoMessageLog(db, tables, { now: () => Date.now() });
}

async function awsTarget(stackName: string): Promise<Target> {
  let messagesTable = process.env.MESSAGES_TABLE;
  let idempotencyTable = process.env.IDEMPOTENCY_TABLE;
  let membersTable = process.env.MEMBERS_TABLE;
  let secretId = process.env.JWT_SECRET_ID;
  let connectionsTable = process.env.CONNECTIONS_TABLE;
  let callbackUrl = process.env.CALLBACK_URL;
  if (membersTable === undefined || messagesTable === undefined || idempotencyTable === undefined || secretId === undefined || connectionsTable === undefined || callbackUrl === undefined) {
    const cloudFormation = new CloudFormationClient({});
    const { Stacks } = await cloudFormation.send(new DescribeStacksCommand({ StackName: stackName }));
    const outputs = new Map((Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
    cloudFormation.destroy();
    membersTable ??= outputs.get(OUTPUTS.membersTable);
    messagesTable ??= outputs.get(OUTPUTS.messagesTable);
    idempotencyTable ??= outputs.get(OUTPUTS.idempotencyTable);
    secretId ??= outputs.get(OUTPUTS.jwtSecretArn);
    connectionsTable ??= outputs.get(OUTPUTS.connectionsTable);
    callbackUrl ??= outputs.get(OUTPUTS.callbackUrl);
    if (membersTable === undefined || messagesTable === undefined || idempotencyTable === undefined || secretId === undefined || connectionsTable === undefined || callbackUrl === undefined) {
      throw new UsageError(
        `stack ${stackName} lacks the outputs ${OUTPUTS.membersTable}, ${OUTPUTS.messagesTable}, ${OUTPUTS.idempotencyTable}, ${OUTPUTS.jwtSecretArn}, ${OUTPUTS.connectionsTable}, ${OUTPUTS.callbackUrl}; is it deployed?`,
      );
    }
  }
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({}));
  const secrets = new SecretsManagerClient({});
  const secret = secretId;
  const members = new DynamoMembershipStore(db, membersTable);
  const remover = memberRemover(db, members, connectionsTable, callbackUrl);
  return {
    description: `${stackName} (table ${membersTable})`,
    members,
    messages: messageLogOf(db, { messages: messagesTable, idempotency: idempotencyTable }),
    keys: async () => jwtKeysFrom((await secrets.send(new GetSecretValueCommand({ SecretId: secret }))).SecretString ?? ''),
    removeMember: remover.removeMember,
    close: () => {
      db.destroy();
      secrets.destroy();
      remover.destroy();
    },
  };
}

async function resolveTarget(): Promise<Target> {
  const port = process.env.PORT ?? '3001';
  const stage = process.env.STAGE;
  const stackName = process.env.STACK_NAME;
  const explicit = ['MEMBERS_TABLE', 'MESSAGES_TABLE', 'IDEMPOTENCY_TABLE', 'JWT_SECRET_ID', 'CONNECTIONS_TABLE', 'CALLBACK_URL'].every((name) => process.env[name] !== undefined);
  if (stackName === undefined && !explicit) {
    const local = await localTarget(port);
    const devStage = local === undefined ? undefined : (await readDevState(port))?.stage;
    if (local !== undefined && (stage === undefined || stage === devStage)) return local;
    local?.close();
  }
  if (stackName !== undefined) return awsTarget(stackName);
  if (stage !== undefined || explicit) return awsTarget(stackNameFor(stage ?? 'dev'));
  throw new UsageError(`no dev server is running on port ${port}: start one with \`npm start\` (or set PORT), or set STAGE=<stage> to manage a deployed stage`);
}

function argument(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new UsageError(`missing <${name}>\n\n${USAGE}`);
  return value;
}

function conversation(value: string | undefined): string {
  const id = argument(value, 'conversationId');
  if (!conversationIdSchema.safeParse(id).success) throw new UsageError('conversationId must be 1–128 characters of A-Z a-z 0-9 _ -');
  return id;
}

/** The stage's token age limit as the connect function reads it (MAX_TOKEN_AGE_SECONDS, default 24 h). */
function maxTokenAgeOf(env: NodeJS.ProcessEnv): number {
  const text = env.MAX_TOKEN_AGE_SECONDS;
  if (text === undefined || text === '') return DEFAULT_MAX_TOKEN_AGE_SECONDS;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new UsageError(`MAX_TOKEN_AGE_SECONDS must be a positive integer, got "${text}"`);
  return value;
}

const DEFAULT_MAX_TOKEN_AGE_SECONDS = 24 * 3600;

export async function runAdmin(argv: string[], print: (line: string) => void): Promise<void> {
  // Node 20 is supported for local work; the SDK's notice about its own future Node 22 floor is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { ttl: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  const [command, first, second] = positionals;
  if (values.help === true || command === undefined) {
    print(USAGE);
    return;
  }
  if (!['add-member', 'remove-member', 'token'].includes(command)) throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  const ttlSeconds = parseTtl(values.ttl ?? '1h');
  // The backend refuses a token that lives longer than its MAX_TOKEN_AGE_SECONDS: never print one it would refuse.
  const maxAge = maxTokenAgeOf(process.env);
  if (command === 'token' && (ttlSeconds <= 0 || ttlSeconds > maxAge)) {
    throw new UsageError(`--ttl must be between 1s and ${maxAge}s (MAX_TOKEN_AGE_SECONDS); the backend refuses longer-lived tokens`);
  }
  const target = await resolveTarget();
  try {
    if (command === 'add-member') {
      const conversationId = conversation(first);
      const userId = argument(second, 'userId');
      await addMember(target, conversationId, userId, loadMembershipLimit(process.env));
      print(`added ${userId} to ${conversationId} on ${target.description}`);
    } else if (command === 'remove-member') {
      const conversationId = conversation(first);
      const userId = argument(second, 'userId');
      const cut = await target.removeMember(conversationId, userId);
      const connections = `unsubscribed ${cut} open connection${cut === 1 ? '' : 's'}`;
      print(`removed ${userId} from ${conversationId} on ${target.description}; ${connections}; their devices collect nothing more`);
    } else {
      const userId = argument(first, 'userId');
      print(await signToken((await target.keys()).jwtSecret, userId, { ttlSeconds }));
    }
  } finally {
    target.close();
  }
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  runAdmin(process.argv.slice(2), (line) => process.stdout.write(`${line}\n`)).catch((error: unknown) => {
    process.stderr.write(`admin: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  });
}
