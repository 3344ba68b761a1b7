import { describe, expect, it } from 'vitest';
import { deliver, postAll, runFanoutJob } from '../../../lambdas/domain/delivery.js';
import { fakeServices } from '../../support/fake-services.js';

const ENDPOINT = 'https://api.example/dev';

describe('deliver', () => {
  it('posts inline up to the threshold', async () => {
    const fake = fakeServices({ fanoutThreshold: 3 });
    const recipients = [fake.connect('a', 'u1', 'd'), fake.connect('b', 'u2', 'd'), fake.connect('c', 'u3', 'd')];
    const report = await deliver(fake.services, ENDPOINT, { kind: 'frame', frame: '{"type":"typing"}' }, recipients);
    expect(report).toEqual({ delivered: 3, gone: 0, failed: 0, queued: 0 });
    expect(fake.services.fanout.enqueue).not.toHaveBeenCalled();
  });

  it('queues batches above the threshold; a message job carries ids, not the body', async () => {
    const fake = fakeServices({ fanoutThreshold: 2, fanoutBatchSize: 2 });
    const recipients = ['a', 'b', 'c', 'd', 'e'].map((id) => fake.connect(id, id, 'd'));
    const report = await deliver(
      fake.services,
      ENDPOINT,
      { kind: 'message', conversationId: 'conv', messageId: 'm1', frame: '{"body":"private"}' },
      recipients,
    );
    expect(report.queued).toBe(5);
    expect(fake.posted).toHaveLength(0);
    const jobs = fake.services.fanout.enqueue.mock.calls[0]?.[0] ?? [];
    expect(jobs.map((j) => j.connectionIds)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(JSON.stringify(jobs)).not.toContain('private');
    expect(jobs[0]).toEqual({ kind: 'message', endpoint: ENDPOINT, conversationId: 'conv', messageId: 'm1', connectionIds: ['a', 'b'] });
  });
});

describe('postAll', () => {
  it('never exceeds the configured concurrency', async () => {
    const fake = fakeServices({ postConcurrency: 3 });
    const ids = Array.from({ length: 20 }, (_, i) => `c${i}`);
    const report = await postAll(fake.services, ENDPOINT, '{}', ids);
    expect(report.delivered).toBe(20);
    expect(fake.maxInFlight()).toBe(3);
  });

  it('removes exactly the gone connection and counts failures without removing them', async () => {
    const fake = fakeServices();
    for (const id of ['a', 'b', 'c']) fake.connect(id, id, 'd');
    fake.outcomes.set('b', 'gone');
    fake.outcomes.set('c', 'failed');
    const report = await postAll(fake.services, ENDPOINT, '{}', ['a', 'b', 'c']);
    expect(report).toEqual({ delivered: 1, gone: 1, failed: 1 });
    expect(fake.services.registry.remove).toHaveBeenCalledTimes(1);
    expect(fake.services.registry.remove).toHaveBeenCalledWith('b');
    expect(fake.connections.map((c) => c.connectionId)).toEqual(['a', 'c']);
  });

  it('keeps going when pruning fails', async () => {
    const fake = fakeServices();
    fake.outcomes.set('a', 'gone');
    fake.services.registry.remove.mockRejectedValueOnce(new Error('table down'));
    const report = await postAll(fake.services, ENDPOINT, '{}', ['a', 'b']);
    expect(report).toEqual({ delivered: 1, gone: 1, failed: 0 });
    expect(fake.logs.some((l) => l.level === 'warn' && l.message.includes('prune'))).toBe(true);
  });
});

describe('runFanoutJob', () => {
  it('reloads and opens a stored message, then posts the message frame', async () => {
    const fake = fakeServices();
    const sealed = fake.services.sealer.seal('conv', 'm1', 'hello there');
    fake.services.store.load.mockResolvedValueOnce({
      conversationId: 'conv', messageId: 'm1', seq: 7, senderId: 'alice', senderDevice: 'phone', clientMessageId: 'c1', sentAt: 5, sealed,
    });
    const report = await runFanoutJob(fake.services, { kind: 'message', endpoint: ENDPOINT, conversationId: 'conv', messageId: 'm1', connectionIds: ['x', 'y'] });
    expect(report.delivered).toBe(2);
    expect(JSON.parse(fake.posted[0]?.data ?? '{}')).toEqual({
      type: 'message', conversationId: 'conv', messageId: 'm1', seq: 7, senderId: 'alice', clientMessageId: 'c1', body: 'hello there', sentAt: 5,
    });
  });

  it('posts nothing for a message that expired', async () => {
    const fake = fakeServices();
    const report = await runFanoutJob(fake.services, { kind: 'message', endpoint: ENDPOINT, conversationId: 'conv', messageId: 'gone', connectionIds: ['x'] });
    expect(report.delivered).toBe(0);
    expect(fake.posted).toHaveLength(0);
  });

  it('throws when the store is unavailable, so the record is retried', async () => {
    const fake = fakeServices();
    fake.services.store.load.mockRejectedValueOnce(new Error('redis down'));
    await expect(
      runFanoutJob(fake.services, { kind: 'message', endpoint: ENDPOINT, conversationId: 'conv', messageId: 'm', connectionIds: ['x'] }),
    ).rejects.toThrow('redis down');
  });
});
