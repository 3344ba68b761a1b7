import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { sqsRecord } from '../../support/sqs-record.js';
import { mockAws, type AwsMocks } from '../../support/aws-mocks.js';
import { applyEnv, completeEnv, restoreEnv, uniqueId } from '../../support/env.js';
import { lambdas } from '../../support/lambdas.js';

const handler = lambdas.fanoutWorker;

let aws: AwsMocks;


beforeAll(async () => {
  applyEnv(completeEnv(inject('redisUrl')));
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
    const sealed = context.sealer.seal(conversationId, 'm-1', 'queued hello');
    const stored = await context.store.append(
      { conversationId, messageId: 'm-1', seq: 0, senderId: 'alice', senderDevice: 'phone', clientMessageId: 'c1', sentAt: 42, sealed },
      { connectionId: 'sender', perSecond: 100, burst: 100 },
    );
    expect(stored.status).toBe('stored');
    const job = { kind: 'message', endpoint: aws.endpoint, conversationId, messageId: 'm-1', connectionIds: ['X1', 'X2'] };
    const result = await handler({ Records: [sqsRecord('r1', JSON.stringify(job))] } satisfies SQSEvent);
    expect(result.batchItemFailures).toEqual([]);
    expect(aws.postsTo('X1')).toEqual([expect.objectContaining({ type: 'message', body: 'queued hello', seq: 1, senderId: 'alice' })]);
    expect(aws.postsTo('X2')).toHaveLength(1);
  });

  it('reports only the poison records as failed; their batch-mates succeed', async () => {
    const good = { kind: 'frame', endpoint: aws.endpoint, frame: '{"type":"typing"}', connectionIds: ['G1'] };
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
  });

  it('prunes a gone connection while posting a batch', async () => {
    aws.connect({ connectionId: 'GONE', userId: 'u', deviceId: 'd', conversationId: 'c' });
    aws.gone.add('GONE');
    const job = { kind: 'frame', endpoint: aws.endpoint, frame: '{"type":"typing"}', connectionIds: ['GONE', 'LIVE'] };
    const result = await handler({ Records: [sqsRecord('r', JSON.stringify(job))] });
    expect(result.batchItemFailures).toEqual([]);
    expect(aws.connections.has('GONE')).toBe(false);
    expect(aws.postsTo('LIVE')).toHaveLength(1);
  });
});
