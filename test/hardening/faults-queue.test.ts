import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sqsRecord } from '../support/sqs-record.js';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { ChatClient, eventually } from '../support/chat.js';
import { BackendProbe } from './support/probe.js';
import { testLambdas } from '../support/lambdas.js';

/** The handlers, built from the local backend's own environment (as the backend itself builds them). */
const lambdas = testLambdas(() => backend.env);
const fanoutWorker = lambdas.fanoutWorker;

/**
 * A poison record in the fan-out queue: reported alone, its batch-mates are not redelivered, and after
 * maxReceiveCount receives it lands in the DLQ — end to end through fauxqs and the local event source mapping.
 */
let backend: LocalBackend;
let probe: BackendProbe;
let sqs: SQSClient;
const workerErrors: unknown[] = [];
const open: ChatClient[] = [];

beforeAll(async () => {
  backend = await startLocalBackend({
    redisUrl: inject('redisUrl'),
    maxReceiveCount: 2,
    visibilityTimeoutSeconds: 1,
    env: { LOG_LEVEL: 'SILENT', RATE_LIMIT_PER_SECOND: '1000', RATE_LIMIT_BURST: '1000' },
    onWorkerError: (error) => workerErrors.push(error),
  });
  probe = new BackendProbe(backend);
  sqs = new SQSClient({ endpoint: backend.sqsEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
});

afterAll(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  sqs.destroy();
  await probe.close();
  await lambdas.reset();
  await backend.close();
});

/** A live device and its connection id, as the registry knows it. */
async function liveDevice(userId: string): Promise<{ client: ChatClient; conversationId: string; connectionId: string }> {
  const conversationId = await probe.conversationWith(userId);
  const client = await ChatClient.connect(backend, conversationId, userId, 'phone');
  open.push(client);
  const [row] = await probe.rowsOf(conversationId);
  return { client, conversationId, connectionId: String(row?.connectionId) };
}

const frameJob = (connectionIds: string[], frame: { conversationId: string; userId: string; state: 'start' | 'stop'; at: number }) =>
  JSON.stringify({ kind: 'typing', ...frame, connectionIds });

describe('a poison record in the fan-out worker', () => {
  it('is the only record reported failed; its batch-mates are processed once', async () => {
    const { client, connectionId, conversationId } = await liveDevice('alice');
    const result = await fanoutWorker({
      Records: [
        sqsRecord('good-1', frameJob([connectionId], { conversationId, userId: 'one', state: 'start', at: 1 })),
        sqsRecord('poison', '{"kind":"message","endpoint":"nope"'),
        sqsRecord('good-2', frameJob([connectionId], { conversationId, userId: 'two', state: 'stop', at: 2 })),
      ],
    });
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'poison' }]);
    await eventually(() => client.frames().length >= 2);
    expect(client.frames().map((f) => f.userId).sort()).toEqual(['one', 'two']);
  });

  it('lands in the DLQ after maxReceiveCount receives, and its batch-mates are delivered exactly once', async () => {
    const { client, connectionId, conversationId } = await liveDevice('bob');
    const poison = `{"kind":"frame","connectionIds":"not a list","marker":"${conversationId}"}`;
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: backend.queueUrl,
        Entries: [
          { Id: 'a', MessageBody: frameJob([connectionId], { conversationId, userId: 'mate-a', state: 'start', at: 1 }) },
          { Id: 'p', MessageBody: poison },
          { Id: 'b', MessageBody: frameJob([connectionId], { conversationId, userId: 'mate-b', state: 'start', at: 2 }) },
        ],
      }),
    );
    expect(sent.Failed ?? []).toEqual([]);

    // Bounded wait: two receives one visibility timeout (1 s) apart, then the move to the DLQ.
    let dead: string | undefined;
    const deadLetters: string[] = [];
    for (let attempt = 0; attempt < 20 && dead === undefined; attempt += 1) {
      const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: backend.dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
      for (const message of received.Messages ?? []) {
        deadLetters.push(message.Body ?? '');
        await sqs.send(new DeleteMessageCommand({ QueueUrl: backend.dlqUrl, ReceiptHandle: message.ReceiptHandle }));
        if (message.Body?.includes(conversationId) === true) dead = message.Body;
      }
    }
    expect(dead).toBe(poison);
    // Only the poison: no batch-mate was ever dead-lettered.
    expect(deadLetters).toEqual([poison]);
    // By now the poison was received twice; had its batch been failed as a whole, its mates would have come back too.
    expect(client.frames().map((f) => f.userId).sort()).toEqual(['mate-a', 'mate-b']);
    expect(workerErrors).toEqual([]);
  }, 40_000);
});
