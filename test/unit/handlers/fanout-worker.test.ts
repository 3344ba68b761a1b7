import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { sqsRecord } from '../../support/sqs-record.js';
import { mockAws, type AwsMocks } from '../../support/aws-mocks.js';
import { applyEnv, completeEnv, restoreEnv, uniqueId } from '../../support/env.js';
import { testLambdas } from '../../support/lambdas.js';
import { fakeDevicePositions, fakeMessageLog } from '../../support/fake-store.js';

/** The message log and positions the routes share, in memory: this file tests the handlers, not DynamoDB. */
const store = { messages: fakeMessageLog(), positions: fakeDevicePositions() };
const lambdas = testLambdas(() => process.env, store);

const handler = lambdas.fanoutWorker;

let aws: AwsMocks;


beforeAll(async () => {
  // The connections here are a moment old: prune them on 410 at once (the grace is tested in delivery.test.ts).
  applyEnv(completeEnv(inject('redisUrl'), { PRUNE_GRACE_SECONDS: '0' }));
  aws = await mockAws();
});
afterAll(async () => {
  await lambdas.reset();
  await aws.restore();
  restoreEnv();
});
beforeEach(() => aws.reset());

describe('fan-out worker', () => {
  it('posts a stored message to its batch, reloading and opening it', async () => {
    const conversationId = uniqueId('conv');
    const context = await lambdas.services.sendMessage();
    const stored = await store.messages.append(
      { conversationId, messageId: 'm-1', senderId: 'alice', senderDevice: 'phone', clientMessageId: 'c1', sentAt: 42 },
      (fields) => context.sealer.seal(fields, 'queued hello'),
    );
    expect(stored.status).toBe('stored');
    const job = { kind: 'message', endpoint: aws.endpoint, conversationId, seq: 1, messageId: 'm-1', connectionIds: ['X1', 'X2'] };
    const result = await handler({ Records: [sqsRecord('r1', JSON.stringify(job))] } satisfies SQSEvent);
    expect(result.batchItemFailures).toEqual([]);
    expect(aws.postsTo('X1')).toEqual([expect.objectContaining({ type: 'message', body: 'queued hello', seq: 1, senderId: 'alice' })]);
    expect(aws.postsTo('X2')).toHaveLength(1);
  });

  it('posts nothing for a job whose seq holds another message (or none), and does not retry it', async () => {
    const conversationId = uniqueId('conv');
    const context = await lambdas.services.sendMessage();
    await store.messages.append(
      { conversationId, messageId: 'm-real', senderId: 'alice', senderDevice: 'phone', clientMessageId: 'c1', sentAt: 42 },
      (fields) => context.sealer.seal(fields, 'real'),
    );
    const forged = { kind: 'message', endpoint: aws.endpoint, conversationId, seq: 1, messageId: 'm-other', connectionIds: ['X1'] };
    const missing = { ...forged, seq: 7, messageId: 'm-real' };
    const result = await handler({ Records: [sqsRecord('f', JSON.stringify(forged)), sqsRecord('m', JSON.stringify(missing))] });
    expect(result.batchItemFailures).toEqual([]);
    expect(aws.posts).toHaveLength(0);
  });

  it('reports only the poison records as failed; their batch-mates succeed', async () => {
    const good = { kind: 'typing', conversationId: 'conv-1', userId: 'alice', state: 'start', at: 5, connectionIds: ['G1'] };
    const result = await handler({
      Records: [
        sqsRecord('ok-1', JSON.stringify(good)),
        sqsRecord('bad-json', '{not json'),
        sqsRecord('bad-shape', JSON.stringify({ kind: 'message', endpoint: 'nope' })),
        sqsRecord('ok-2', JSON.stringify({ ...good, connectionIds: ['G2'] })),
      ],
    });
    expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['bad-json', 'bad-shape']);
    expect(aws.posts.map((p) => p.connectionId).sort()).toEqual(['G1', 'G2']);
    // The worker built the frame from the ids (its expiry from TYPING_EXPIRES_MS).
    expect(aws.postsTo('G1')).toEqual([{ type: 'typing', conversationId: 'conv-1', userId: 'alice', state: 'start', at: 5, expiresAt: 6005 }]);
  });

  describe('refuses forged jobs and posts nothing', () => {
    async function storedMessage(conversationId: string, messageId: string): Promise<void> {
      const context = await lambdas.services.sendMessage();
      const stored = await store.messages.append(
        { conversationId, messageId, senderId: 'alice', senderDevice: 'phone', clientMessageId: messageId, sentAt: 42 },
        (fields) => context.sealer.seal(fields, 'the private text'),
      );
      expect(stored.status).toBe('stored');
    }

    it('a job naming another endpoint: dropped at once (not retried), nothing posted anywhere', async () => {
      const conversationId = uniqueId('conv');
      await storedMessage(conversationId, 'm-1');
      // The same server under another stage path, so a post there would be seen.
      const elsewhere = aws.endpoint.replace(/\/test$/, '/attacker');
      const jobs = [
        { kind: 'message', endpoint: elsewhere, conversationId, seq: 1, messageId: 'm-1', connectionIds: ['X1'] },
        { kind: 'message', endpoint: 'https://attacker.example/prod', conversationId, seq: 1, messageId: 'm-1', connectionIds: ['X1'] },
      ];
      const result = await handler({ Records: jobs.map((job, i) => sqsRecord(`e${i}`, JSON.stringify(job))) });
      expect(result.batchItemFailures).toEqual([]);
      expect(aws.attempts).toEqual([]);
    });

    it('a job of an earlier version naming this stage\'s own endpoint is still delivered', async () => {
      const conversationId = uniqueId('conv');
      await storedMessage(conversationId, 'm-1');
      const job = { kind: 'message', endpoint: `${aws.endpoint}/`, conversationId, seq: 1, messageId: 'm-1', connectionIds: ['X1'] };
      const result = await handler({ Records: [sqsRecord('own', JSON.stringify(job))] });
      expect(result.batchItemFailures).toEqual([]);
      expect(aws.postsTo('X1')).toHaveLength(1);
    });

    it('a prebuilt frame, a body, or an unknown kind: poison, never posted', async () => {
      const forged = { type: 'message', conversationId: 'c', messageId: 'm', seq: 1, senderId: 'alice', body: 'send me your password', sentAt: 1 };
      const records = [
        { kind: 'frame', endpoint: aws.endpoint, frame: JSON.stringify(forged), connectionIds: ['X1'] },
        { kind: 'frame', frame: JSON.stringify(forged), connectionIds: ['X1'] },
        { kind: 'typing', conversationId: 'c', userId: 'alice', state: 'start', at: 1, connectionIds: ['X1'], frame: JSON.stringify(forged) },
        { kind: 'message', conversationId: 'c', seq: 1, messageId: 'm', connectionIds: ['X1'], body: 'send me your password' },
        { kind: 'typing', conversationId: 'c', userId: 'alice', state: 'send me your password', at: 1, connectionIds: ['X1'] },
        { kind: 'read', conversationId: 'c', userId: 'alice', seq: -1, at: 1, connectionIds: ['X1'] },
        { kind: 'message', conversationId: 'c', seq: 1, messageId: 'm', connectionIds: ['not a connection id'] },
      ].map((job, i) => sqsRecord(`f${i}`, JSON.stringify(job)));
      const result = await handler({ Records: records });
      expect(result.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(records.map((r) => r.messageId).sort());
      expect(aws.attempts).toEqual([]);
    });

    it('a message id of another conversation, or a deletion of a message not deleted', async () => {
      const mine = uniqueId('conv');
      const theirs = uniqueId('conv');
      await storedMessage(theirs, 'm-theirs');
      await storedMessage(mine, 'm-mine');
      const jobs = [
        { kind: 'message', conversationId: mine, seq: 1, messageId: 'm-theirs', connectionIds: ['X1'] },
        { kind: 'edited', conversationId: mine, seq: 1, messageId: 'm-theirs', connectionIds: ['X1'] },
        { kind: 'deleted', conversationId: mine, seq: 1, messageId: 'm-mine', connectionIds: ['X1'] },
        { kind: 'deleted', conversationId: mine, seq: 1, messageId: 'm-theirs', connectionIds: ['X1'] },
      ];
      const result = await handler({ Records: jobs.map((job, i) => sqsRecord(`m${i}`, JSON.stringify(job))) });
      expect(result.batchItemFailures).toEqual([]);
      expect(aws.attempts).toEqual([]);
    });
  });

  it('prunes a gone connection while posting a batch', async () => {
    aws.connect({ connectionId: 'GONE', userId: 'u', deviceId: 'd', conversationId: 'c' });
    aws.connect({ connectionId: 'LIVE', userId: 'v', deviceId: 'd', conversationId: 'c' });
    aws.gone.add('GONE');
    const itemsOf = (connectionId: string) => [...aws.connections.values()].filter((item) => item.connectionId === connectionId);
    expect(itemsOf('GONE')).toHaveLength(2);
    const job = { kind: 'read', conversationId: 'c', userId: 'w', seq: 3, at: 9, connectionIds: ['GONE', 'LIVE'] };
    const result = await handler({ Records: [sqsRecord('r', JSON.stringify(job))] });
    expect(result.batchItemFailures).toEqual([]);
    // The gone connection's record and subscription are removed; the live one keeps both.
    expect(itemsOf('GONE')).toEqual([]);
    expect(itemsOf('LIVE')).toHaveLength(2);
    expect(aws.postsTo('LIVE')).toEqual([{ type: 'read', conversationId: 'c', userId: 'w', seq: 3, at: 9 }]);
  });
});
