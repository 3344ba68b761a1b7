import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoMembershipStore } from '../lambdas/adapters/dynamo-members.js';
import { appKeysFrom } from '../lambdas/secret.js';
import { startLocalBackend } from '../local/backend.js';
import { openClient, type TestClient } from '../local/gateway/testing.js';
import { startLocalPushService, type ReceivedPush } from '../local/push-service.js';
import { signToken } from '../local/tokens.js';
import { median, percentile, round } from './lib/stats.js';

/**
 * `npm run bench:push` (PUSH_SAMPLES=N, default 60): the time from a sender's `sent` to the push decrypted at the
 * local Web Push service (real VAPID + RFC 8291 aes128gcm), through the real sendMessage, notify queue (fauxqs),
 * notifier and its DynamoDB reads (dynalite), all of `npm start`'s pieces in this process. Each sample wakes a
 * different offline device (one push per offline period), so each is a first push. On AWS add the SQS event
 * source's pickup and the real push service's own latency; here the queue is polled with a 1 s long poll that
 * returns as soon as a job arrives.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const SAMPLES = Math.max(1, Number(process.env.PUSH_SAMPLES ?? '60'));

const push = await startLocalPushService();
const arrivals = new Map<string, number>();
push.onPush((received: ReceivedPush) => {
  if (!arrivals.has(received.endpoint)) arrivals.set(received.endpoint, performance.now());
});
const backend = await startLocalBackend({
  env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '2000', RATE_LIMIT_USER_PER_SECOND: '1000', RATE_LIMIT_USER_BURST: '2000' },
});
const db = DynamoDBDocumentClient.from(
  new DynamoDBClient({ endpoint: backend.dynamodbEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }),
);
const members = new DynamoMembershipStore(db, backend.tables.members);
const { jwtSecret } = appKeysFrom(backend.env.APP_SECRET_JSON ?? '');

async function device(userId: string, deviceId: string): Promise<TestClient> {
  const token = await signToken(jwtSecret, userId, { ttlSeconds: 3600 });
  return openClient(`${backend.url}?token=${encodeURIComponent(token)}&clientId=${encodeURIComponent(deviceId)}`);
}

async function ask(client: TestClient, frame: Record<string, unknown>): Promise<Record<string, unknown>> {
  const requestId = randomUUID();
  await client.send(JSON.stringify({ ...frame, requestId }));
  for (;;) {
    const answer = JSON.parse(await client.next(10_000)) as Record<string, unknown>;
    if (answer.requestId === requestId) return answer;
  }
}

const conversationId = `push-bench-${Date.now()}`;
await members.add(conversationId, 'alice', 0);
await members.add(conversationId, 'bob', 0);
const alice = await device('alice', 'phone');
await ask(alice, { action: 'subscribe', conversationIds: [conversationId] });

const latencies: number[] = [];
try {
  for (let i = 0; i < SAMPLES; i += 1) {
    // A fresh offline device of bob's, registered for push (its first offline period).
    const bob = await device('bob', `device-${i}`);
    await ask(bob, { action: 'subscribe', conversationIds: [conversationId] });
    const subscription = await push.subscribe({ applicationServerKey: backend.vapidPublicKey });
    const registered = await ask(bob, { action: 'registerPush', webPush: subscription });
    if (registered.type !== 'pushRegistered') throw new Error(`registerPush answered ${JSON.stringify(registered)}`);
    await bob.close();
    const sent = await ask(alice, { action: 'sendMessage', conversationId, clientMessageId: randomUUID(), body: `message ${i}` });
    if (sent.type !== 'sent') throw new Error(`sendMessage answered ${JSON.stringify(sent)}`);
    const sentAt = performance.now();
    const deadline = Date.now() + 10_000;
    while (!arrivals.has(subscription.endpoint)) {
      if (Date.now() > deadline) throw new Error(`no push for sample ${i}`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    latencies.push((arrivals.get(subscription.endpoint) ?? sentAt) - sentAt);
    process.stderr.write(`\rpush ${i + 1}/${SAMPLES}`);
  }
} finally {
  await alice.close().catch(() => undefined);
  db.destroy();
  await backend.close();
  await push.close();
}
process.stderr.write('\n');
const sorted = [...latencies].sort((a, b) => a - b);
console.log(
  `push latency, sent → decrypted at the local push service (n = ${SAMPLES}): median ${round(median(sorted))} ms, ` +
    `p95 ${round(percentile(sorted, 95))} ms, max ${round(sorted.at(-1) ?? 0)} ms`,
);
