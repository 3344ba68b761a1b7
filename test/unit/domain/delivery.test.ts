import { describe, expect, it } from 'vitest';
import { deliver, postAll, runFanoutJob, type PushedFrame } from '../../../lambdas/domain/delivery.js';
import { MessageCipher } from '../../../lambdas/encryption.js';
import { UnavailableError } from '../../../lambdas/errors.js';
import type { FanoutJob } from '../../../lambdas/ports.js';
import { FAKE_ENDPOINT, fakeServices } from '../../support/fake-services.js';

const ENDPOINT = FAKE_ENDPOINT;
const TYPING: PushedFrame = { type: 'typing', conversationId: 'conv', userId: 'alice', state: 'start', at: 1000, expiresAt: 7000 };

describe('deliver', () => {
  it('posts inline up to the threshold', async () => {
    // Prepare
    const fake = fakeServices({ fanoutThreshold: 3 });
    const recipients = [fake.connect('a', 'u1', 'd'), fake.connect('b', 'u2', 'd'), fake.connect('c', 'u3', 'd')];
    // Act
    const report = await deliver(fake.services, ENDPOINT, { kind: 'event', frame: TYPING }, recipients);
    // Assess
    expect(report).toEqual({ delivered: 3, gone: 0, failed: 0, queued: 0 });
    expect(fake.services.fanout.enqueue).not.toHaveBeenCalled();
  });

  it('queues batches above the threshold; a message job carries ids, not the body', async () => {
    // Prepare
    const fake = fakeServices({ fanoutThreshold: 2, fanoutBatchSize: 2 });
    const recipients = ['a', 'b', 'c', 'd', 'e'].map((id) => fake.connect(id, id, 'd'));
    // Act
    const report = await deliver(
      fake.services,
      ENDPOINT,
      { kind: 'message', conversationId: 'conv', seq: 7, messageId: 'm1', frame: '{"body":"private"}' },
      recipients,
    );
    // Assess
    expect(report.queued).toBe(5);
    expect(fake.posted).toHaveLength(0);
    const jobs = fake.services.fanout.enqueue.mock.calls[0]?.[0] ?? [];
    expect(jobs.map((j) => j.connectionIds)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(JSON.stringify(jobs)).not.toContain('private');
    expect(jobs[0]).toEqual({ kind: 'message', conversationId: 'conv', seq: 7, messageId: 'm1', connectionIds: ['a', 'b'] });
  });

  it('queues a pushed frame as its ids (never the frame, nor an endpoint); the worker rebuilds the same frame', async () => {
    // Prepare
    const frames: PushedFrame[] = [
      TYPING,
      { type: 'typing', conversationId: 'conv', userId: 'alice', state: 'stop', at: 1000, expiresAt: 1000 },
      { type: 'read', conversationId: 'conv', userId: 'bob', seq: 4, at: 2000 },
      { type: 'presence', conversationId: 'conv', userId: 'carol', state: 'offline', at: 3000 },
      { type: 'presence', conversationId: 'conv', occupancy: 250 },
    ];
    for (const frame of frames) {
      const fake = fakeServices({ fanoutThreshold: 1, fanoutBatchSize: 2 });
      const recipients = ['a', 'b'].map((id) => fake.connect(id, id, 'd'));
      // Act
      await deliver(fake.services, 'https://elsewhere.example/x', { kind: 'event', frame }, recipients);
      const [job] = fake.services.fanout.enqueue.mock.calls[0]?.[0] ?? [];
      if (job === undefined) throw new RangeError('no job queued');
      const report = await runFanoutJob(fake.services, job);
      // Assess
      expect(job).not.toHaveProperty('frame');
      expect(job).not.toHaveProperty('endpoint');
      expect(report.delivered).toBe(2);
      expect(fake.posted.map((p) => [p.endpoint, JSON.parse(p.data)])).toEqual([
        [ENDPOINT, frame],
        [ENDPOINT, frame],
      ]);
    }
  });
});

describe('postAll', () => {
  it('never exceeds the configured concurrency', async () => {
    // Prepare
    const fake = fakeServices({ postConcurrency: 3 });
    const ids = Array.from({ length: 20 }, (_, i) => `c${i}`);
    // Act
    const report = await postAll(fake.services, ENDPOINT, '{}', ids);
    // Assess
    expect(report.delivered).toBe(20);
    expect(fake.maxInFlight()).toBe(3);
  });

  it('removes exactly the gone connection and counts failures without removing them', async () => {
    // Prepare
    const fake = fakeServices();
    for (const id of ['a', 'b', 'c']) fake.connect(id, id, 'd');
    fake.outcomes.set('b', 'gone');
    fake.outcomes.set('c', 'failed');
    // Act
    const report = await postAll(fake.services, ENDPOINT, '{}', ['a', 'b', 'c']);
    // Assess
    expect(report).toEqual({ delivered: 1, gone: 1, failed: 1 });
    expect(fake.services.registry.remove).toHaveBeenCalledTimes(1);
    expect(fake.services.registry.remove).toHaveBeenCalledWith('b');
    expect(fake.connections.map((c) => c.connectionId)).toEqual(['a', 'c']);
  });

  it('keeps a connection that answers 410 while younger than the prune grace ($connect may not have returned)', async () => {
    // Prepare
    const fake = fakeServices({ pruneGraceMs: 30_000 });
    const now = fake.services.clock.now();
    fake.connect('young', 'carol', 'phone');
    fake.connect('old', 'dave', 'phone');
    const young = fake.records.find((r) => r.connectionId === 'young');
    if (young === undefined) throw new RangeError('no record');
    young.connectedAt = now - 29_000;
    fake.outcomes.set('young', 'gone');
    fake.outcomes.set('old', 'gone');
    // Act
    const report = await postAll(fake.services, ENDPOINT, '{}', ['young', 'old']);
    // Assess
    expect(report.gone).toBe(2);
    expect(fake.services.registry.remove).toHaveBeenCalledTimes(1);
    expect(fake.services.registry.remove).toHaveBeenCalledWith('old');
    expect(fake.connections.map((c) => c.connectionId)).toEqual(['young']);
  });

  it('keeps going when pruning fails', async () => {
    // Prepare
    const fake = fakeServices();
    fake.outcomes.set('a', 'gone');
    fake.services.registry.remove.mockRejectedValueOnce(new Error('table down'));
    // Act
    const report = await postAll(fake.services, ENDPOINT, '{}', ['a', 'b']);
    // Assess
    expect(report).toEqual({ delivered: 1, gone: 1, failed: 0 });
    expect(fake.logs.some((l) => l.level === 'warn' && l.message.includes('prune'))).toBe(true);
  });
});

describe('runFanoutJob', () => {
  const messageJob = (seq: number, messageId: string, connectionIds = ['x', 'y']): FanoutJob => ({
    kind: 'message',
    conversationId: 'conv',
    seq,
    messageId,
    connectionIds,
  });

  it('loads the message by seq, opens it, then posts the message frame', async () => {
    // Prepare
    const fake = fakeServices();
    fake.addMessage({ senderId: 'bob', senderDevice: 'phone', body: 'before' });
    const entry = fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: 'hello there', clientMessageId: 'c1' });
    // Act
    const report = await runFanoutJob(fake.services, messageJob(2, entry.messageId));
    // Assess
    expect(fake.services.messages.get).toHaveBeenCalledWith('conv', 2);
    expect(report).toEqual({ delivered: 2, gone: 0, failed: 0, queued: 0 });
    expect(fake.posted.map((p) => p.connectionId).sort()).toEqual(['x', 'y']);
    expect(JSON.parse(fake.posted[0]?.data ?? '{}')).toEqual({
      type: 'message',
      conversationId: 'conv',
      messageId: entry.messageId,
      seq: 2,
      senderId: 'alice',
      clientMessageId: 'c1',
      body: 'hello there',
      sentAt: entry.sentAt,
    });
  });

  it('posts a deletion only when the log holds that message as a tombstone', async () => {
    // Prepare
    const fake = fakeServices();
    const live = fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: 'still here' });
    const gone = fake.addMessage({ senderId: 'alice', senderDevice: 'phone', body: 'taken back' });
    gone.deleted = true;
    const job = (seq: number, messageId: string): FanoutJob => ({ kind: 'deleted', conversationId: 'conv', seq, messageId, connectionIds: ['x'] });
    // Act
    const forged = await Promise.all([runFanoutJob(fake.services, job(live.seq, live.messageId)), runFanoutJob(fake.services, job(gone.seq, 'other-id'))]);
    const real = await runFanoutJob(fake.services, job(gone.seq, gone.messageId));
    // Assess
    expect(forged.map((r) => r.delivered)).toEqual([0, 0]);
    expect(real.delivered).toBe(1);
    expect(fake.posted.map((p) => JSON.parse(p.data))).toEqual([{ type: 'messageDeleted', conversationId: 'conv', seq: gone.seq, messageId: gone.messageId }]);
  });

  it('never prunes on a 410 for presence, as inline delivery does not', async () => {
    // Prepare
    const fake = fakeServices();
    fake.connect('x', 'x', 'd');
    fake.outcomes.set('x', 'gone');
    // Act
    const report = await runFanoutJob(fake.services, { kind: 'presence', conversationId: 'conv', userId: 'u', state: 'online', at: 1, connectionIds: ['x'] });
    // Assess
    expect(report.gone).toBe(1);
    expect(fake.services.registry.remove).not.toHaveBeenCalled();
  });

  it('posts nothing for a message no longer in the log', async () => {
    // Prepare
    const fake = fakeServices();
    // Act
    const report = await runFanoutJob(fake.services, messageJob(3, 'gone'));
    // Assess
    expect(report).toEqual({ delivered: 0, gone: 0, failed: 0, queued: 0 });
    expect(fake.posted).toHaveLength(0);
  });

  it('skips, and logs, a job whose seq now holds another message', async () => {
    // Prepare
    const fake = fakeServices();
    fake.addMessage({ senderId: 'bob', senderDevice: 'phone', body: 'not the one' });
    // Act
    const report = await runFanoutJob(fake.services, messageJob(1, 'some-other-id'));
    // Assess
    expect(report.delivered).toBe(0);
    expect(fake.posted).toHaveLength(0);
    expect(fake.logs).toContainEqual(expect.objectContaining({ level: 'warn', fields: { conversationId: 'conv', seq: 1, messageId: 'some-other-id' } }));
  });

  it('skips, and logs by ids only, an entry that does not open', async () => {
    // Prepare
    const fake = fakeServices();
    const entry = fake.addMessage({ senderId: 'bob', senderDevice: 'phone', body: 'x' });
    const { sealed: _sealed, ...fields } = entry;
    entry.sealed = new MessageCipher([Buffer.from('a-key-this-keyring-does-not-hold-0123456', 'utf8')]).seal(fields, 'PRIVATE BODY');
    // Act
    const report = await runFanoutJob(fake.services, messageJob(1, entry.messageId));
    // Assess
    expect(report).toEqual({ delivered: 0, gone: 0, failed: 2, queued: 0 });
    expect(fake.posted).toHaveLength(0);
    expect(fake.logs).toContainEqual(expect.objectContaining({ level: 'error', fields: { conversationId: 'conv', seq: 1, messageId: entry.messageId } }));
    expect(JSON.stringify(fake.logs)).not.toContain('PRIVATE BODY');
  });

  it('throws when the log is unavailable, so the record is retried', async () => {
    // Prepare
    const fake = fakeServices();
    fake.services.messages.get.mockRejectedValueOnce(new UnavailableError('dynamodb down'));
    // Act
    const run = runFanoutJob(fake.services, messageJob(1, 'm'));
    // Assess
    await expect(run).rejects.toThrow('dynamodb down');
    expect(fake.posted).toHaveLength(0);
  });
});
