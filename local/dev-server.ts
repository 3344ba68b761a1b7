import { parseArgs } from 'node:util';
import { appKeysFrom } from '../lambdas/secret.js';
import { loadMembershipLimit } from '../lambdas/config.js';
import { startLocalBackend } from './backend.js';
import { devSecret, isLoopback, removeDevState, stateDirectory, writeDevState } from './dev-state.js';
import { signToken } from './tokens.js';
import { DynamoMembershipStore } from '../lambdas/adapters/dynamo-members.js';
import { DynamoMessageLog } from '../lambdas/adapters/dynamo-message-log.js';
import { ensureMember } from './members.js';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** `npm start`: the whole backend on this machine, with a demo conversation ready to chat in. */

const HELP = `Usage: npm start [-- options]

Options (each also as an environment variable):
  --port N           WebSocket + Management API port (PORT, default 3001)
  --host H           bind address (HOST, default 127.0.0.1); anything but loopback needs APP_SECRET_JSON set
                     (the Management API has no authentication, and the web page is then left out)
  --stage S          stage path (STAGE, default local)
  --redis-url URL    use this Redis (REDIS_URL); default: spawn redis-server, else run without one
  --redis-mode M     standalone | cluster (REDIS_MODE, default standalone): cluster for a Redis Cluster
  --no-redis         run without Redis: rate limits in process, no seq cache (messages are in DynamoDB
                     either way)
  --dynamodb URL     use this DynamoDB endpoint (DYNAMODB_ENDPOINT); default: dynalite in process
  --sqs URL          use this SQS endpoint (SQS_ENDPOINT); default: fauxqs in process
  --log-level L      DEBUG | INFO | WARN | ERROR | SILENT (LOG_LEVEL, default INFO)

Environment only: FANOUT_BUDGET_CONVERSATION_PER_SECOND, FANOUT_BUDGET_SENDER_PER_SECOND and
MAX_CONVERSATION_MEMBERS raise the fan-out budgets and the conversation size (README, Configuration).
  -h, --help         this text

The dev secret (a master key and a JWT secret) is generated on the first start and kept in
dev-secret.json (0600) in a directory only you can read: RELAY_WS_STATE_DIR, else
$XDG_STATE_HOME/relay-ws, else ~/.local/state/relay-ws. APP_SECRET_JSON replaces it.
`;

/** Limits a local run may raise (a demo with many clients, a load test): passed on to the handlers when set. */
const TUNABLE = ['FANOUT_BUDGET_CONVERSATION_PER_SECOND', 'FANOUT_BUDGET_SENDER_PER_SECOND', 'MAX_CONVERSATION_MEMBERS'] as const;

function tunedLimits(env: NodeJS.ProcessEnv): Record<string, string> {
  const tuned: Record<string, string> = {};
  for (const name of TUNABLE) {
    const value = env[name];
    if (value !== undefined) tuned[name] = value;
  }
  return tuned;
}

async function main(): Promise<void> {
  // Node 20 is supported for local work; the SDK's notice about its own future Node 22 floor is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      stage: { type: 'string' },
      'redis-url': { type: 'string' },
      'no-redis': { type: 'boolean' },
      'redis-mode': { type: 'string' },
      dynamodb: { type: 'string' },
      sqs: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help === true) {
    process.stdout.write(HELP);
    return;
  }
  const port = Number(values.port ?? process.env.PORT ?? 3001);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid port: ${String(values.port ?? process.env.PORT)}`);
  const logLevel = (values['log-level'] ?? process.env.LOG_LEVEL ?? 'INFO').toUpperCase();
  const host = values.host ?? process.env.HOST ?? '127.0.0.1';
  const explicitSecret = process.env.APP_SECRET_JSON;
  // Bound to another interface, anyone who reaches it could use the unauthenticated Management API, and tokens
  // signed with this machine's dev secret would be accepted there: only with a secret chosen on purpose.
  const loopback = isLoopback(host);
  if (!loopback && (explicitSecret === undefined || explicitSecret.trim() === '')) {
    throw new RangeError(
      `refusing --host ${host}: it is not a loopback address, and the emulator's Management API has no authentication. ` +
        'Set APP_SECRET_JSON to a secret of your own (not the dev secret) to bind it anyway, or use 127.0.0.1.',
    );
  }
  const secret = explicitSecret === undefined ? await devSecret() : undefined;
  const secretJson = explicitSecret ?? secret?.json ?? '';
  const redisUrl = values['no-redis'] === true ? 'none' : (values['redis-url'] ?? process.env.REDIS_URL);
  const redisMode = values['redis-mode'] ?? process.env.REDIS_MODE ?? 'standalone';
  if (redisMode !== 'standalone' && redisMode !== 'cluster') throw new RangeError(`invalid redis mode: ${redisMode} (standalone or cluster)`);
  const dynamodbEndpoint = values.dynamodb ?? process.env.DYNAMODB_ENDPOINT;
  const sqsEndpoint = values.sqs ?? process.env.SQS_ENDPOINT;

  const backend = await startLocalBackend({
    port,
    host,
    stage: values.stage ?? process.env.STAGE ?? 'local',
    ...(redisUrl === undefined ? {} : { redisUrl }),
    ...(dynamodbEndpoint === undefined ? {} : { dynamodbEndpoint }),
    ...(sqsEndpoint === undefined ? {} : { sqsEndpoint }),
    env: { LOG_LEVEL: logLevel, APP_SECRET_JSON: secretJson, REDIS_MODE: redisMode, ...tunedLimits(process.env) },
    // The page signs a token for any user id who asks: on loopback only.
    web: loopback,
    onWorkerError: (error) => process.stderr.write(`fan-out poller: ${error instanceof Error ? error.message : String(error)}\n`),
  });
  await writeDevState(backend, secretJson);

  // A demo conversation with two members, so the printed lines work straight away.
  const db = DynamoDBDocumentClient.from(
    new DynamoDBClient({ endpoint: backend.dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
  );
  const services = {
    members: new DynamoMembershipStore(db, backend.tables.members),
    messages: new DynamoMessageLog(db, backend.tables, { now: () => Date.now() }),
  };
  for (const userId of ['alice', 'bob']) await ensureMember(services, 'demo', userId, loadMembershipLimit(process.env));
  db.destroy();
  const keys = appKeysFrom(secretJson);
  const day = 24 * 3600;
  const alice = await signToken(keys.jwtSecret, 'alice', { ttlSeconds: day });
  const bob = await signToken(keys.jwtSecret, 'bob', { ttlSeconds: day });
  // One connection per device (protocol v2): it subscribes to its conversations with its first frame.
  const line = (token: string, device: string) => `npx wscat -c '${backend.url}?token=${token}&clientId=${device}'`;

  const redisNote = {
    external: `Redis:       ${backend.redisUrl}`,
    spawned: `Redis:       ${backend.redisUrl} (redis-server started for this run)`,
    none: 'Redis:       none (redis-server not found or --no-redis): rate limits in this process, no seq cache; messages are in DynamoDB either way',
  }[backend.redisKind];
  process.stdout.write(
    [
      '',
      'relay-ws is running locally.',
      '',
      loopback
        ? `Web page:    http://${backend.url.slice('ws://'.length, -`/${backend.stage}`.length)}/?user=alice&conversation=demo   (local only: signs in any user id)`
        : `Web page:    off (--host ${host} is not loopback)`,
      `WebSocket:   ${backend.url}`,
      `Management:  ${backend.managementEndpoint}   (POST/GET/DELETE @connections/{id})`,
      `DynamoDB:    ${backend.dynamodbEndpoint}   tables ${Object.values(backend.tables).join(', ')}`,
      `SQS:         ${backend.queueUrl}`,
      redisNote,
      secret === undefined
        ? 'Secret:      APP_SECRET_JSON (given)'
        : `Secret:      ${secret.path} (${secret.created ? 'generated now' : 'this machine\'s'}; only you can read ${stateDirectory()})`,
      '',
      'Demo conversation "demo" with members alice and bob (tokens valid 24 h):',
      '',
      '  alice, terminal 1:',
      `  ${line(alice, 'alice-phone')}`,
      '',
      '  bob, terminal 2:',
      `  ${line(bob, 'bob-laptop')}`,
      '',
      'Then type frames, e.g. (subscribe first; ping about every 25 s keeps the connection open and its presence live):',
      '  {"action":"subscribe","conversationIds":["demo"]}',
      '  {"action":"sendMessage","conversationId":"demo","clientMessageId":"m1","body":"hello"}',
      '  {"action":"typing","conversationId":"demo"}',
      '  {"action":"getUnacked","conversationId":"demo"}',
      '  {"action":"getHistory","conversationId":"demo"}',
      '  {"action":"markRead","conversationId":"demo","seq":1}',
      '  {"action":"getConversations"}',
      '  {"action":"ping"}',
      '',
      `More members and tokens: PORT=${backend.port} npm run admin -- add-member <conversationId> <userId> | token <userId> [--ttl 1h]`,
      'Ctrl-C stops everything.',
      '',
    ].join('\n'),
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`\n${signal}: shutting down…\n`);
    await removeDevState(backend.port);
    await backend.close();
    process.stdout.write('stopped.\n');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`npm start failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
