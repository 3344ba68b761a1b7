import { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { bootMetrics, countedPoster, EmfMetrics, METRICS_NAMESPACE, METRICS_SERVICE, NoMetrics } from '../../lambdas/adapters/metrics.js';
import { Scope } from '../../lambdas/context/lazy.js';
import { metricsOf } from '../../lambdas/context/metrics.js';
import { deliver, postAll, type PushedFrame } from '../../lambdas/domain/delivery.js';
import { UnavailableError } from '../../lambdas/errors.js';
import { route as connectRoute } from '../../lambdas/handlers/connect.js';
import { route as fanoutWorkerRoute } from '../../lambdas/handlers/fanout-worker.js';
import { route as sendMessageRoute } from '../../lambdas/handlers/send-message.js';
import { route as typingRoute } from '../../lambdas/handlers/typing.js';
import type { Log } from '../../lambdas/ports.js';
import { mockAws } from '../support/aws-mocks.js';
import { completeEnv } from '../support/env.js';
import { connectEvent, messageEvent } from '../support/events.js';
import { fakeServices } from '../support/fake-services.js';
import { RecordingMetrics } from '../support/recording-metrics.js';
import { sqsRecord } from '../support/sqs-record.js';

const ENDPOINT = 'https://api.example/dev';

afterEach(() => vi.restoreAllMocks());

/**
 * The fake services with a recording twin of the metrics port, their posters counted as postersFor counts the
 * real ones (given posters are not wrapped by the routes).
 */
function metered(overrides: Parameters<typeof fakeServices>[0] = {}) {
  const fake = fakeServices(overrides);
  const metrics = new RecordingMetrics();
  const posterFor = (endpoint: string) => countedPoster(fake.services.posterFor(endpoint), metrics);
  return { fake, metrics, services: { ...fake.services, metrics, posterFor } };
}

const TYPING: PushedFrame = { type: 'typing', conversationId: 'conv', userId: 'alice', state: 'start', at: 1000, expiresAt: 7000 };

describe('post outcomes', () => {
  it('counts each post under its outcome: deliveries, gone, failed', async () => {
    // Prepare
    const { fake, metrics, services } = metered();
    for (const id of ['a', 'b', 'c', 'd']) fake.connect(id, id, 'd');
    fake.outcomes.set('b', 'gone');
    fake.outcomes.set('c', 'failed');
    // Act
    await postAll(services, ENDPOINT, '{}', ['a', 'b', 'c', 'd']);
    // Assess
    expect(Object.fromEntries(metrics.pending)).toEqual({ deliveries: 2, gone: 1, failed: 1 });
  });

  it('counts nothing when there is nobody to post to', async () => {
    // Prepare
    const { metrics, services } = metered();
    // Act
    await postAll(services, ENDPOINT, '{}', []);
    // Assess
    expect(metrics.pending.size).toBe(0);
  });

  it('counts the posts of a route built from its environment: its posters are counted ones', async () => {
    // Prepare
    const aws = await mockAws();
    onTestFinished(() => aws.restore());
    aws.gone.add('GONE1');
    const scope = new Scope();
    onTestFinished(() => scope.close());
    const env: Record<string, string> = completeEnv('');
    delete env.REDIS_URL;
    const metrics = new RecordingMetrics();
    const services = await sendMessageRoute.build(env, scope, { metrics });
    // Act
    const outcomes = [await services.posterFor(aws.endpoint).post('LIVE1', '{}'), await services.posterFor(aws.endpoint).post('GONE1', '{}')];
    // Assess
    expect(outcomes).toEqual(['delivered', 'gone']);
    expect(Object.fromEntries(metrics.pending)).toEqual({ deliveries: 1, gone: 1 });
  });
});

describe('fan-out jobs', () => {
  it('counts the jobs handed to the queue above the threshold, and no posts', async () => {
    // Prepare
    const { fake, metrics, services } = metered({ fanoutThreshold: 2, fanoutBatchSize: 2 });
    const recipients = ['a', 'b', 'c', 'd', 'e'].map((id) => fake.connect(id, id, 'd'));
    // Act
    await deliver(services, ENDPOINT, { kind: 'event', frame: TYPING }, recipients);
    // Assess
    expect(Object.fromEntries(metrics.pending)).toEqual({ fanout_jobs: 3 });
  });

  it('counts no job for an inline delivery', async () => {
    // Prepare
    const { fake, metrics, services } = metered({ fanoutThreshold: 5 });
    const recipients = ['a', 'b'].map((id) => fake.connect(id, id, 'd'));
    // Act
    await deliver(services, ENDPOINT, { kind: 'event', frame: TYPING }, recipients);
    // Assess
    expect(Object.fromEntries(metrics.pending)).toEqual({ deliveries: 2 });
  });

  it('counts no job when the queue refused them', async () => {
    // Prepare
    const { fake, metrics, services } = metered({ fanoutThreshold: 1 });
    fake.services.fanout.enqueue.mockRejectedValueOnce(new UnavailableError('queue down'));
    const recipients = ['a', 'b'].map((id) => fake.connect(id, id, 'd'));
    // Act
    const delivered = deliver(services, ENDPOINT, { kind: 'event', frame: TYPING }, recipients);
    // Assess
    await expect(delivered).rejects.toThrow(UnavailableError);
    expect(metrics.pending.size).toBe(0);
  });
});

describe('frame answers', () => {
  function sendMessageHandler(services: ReturnType<typeof metered>['services']) {
    return sendMessageRoute.create(async () => ({ ...services, callbackUrl: ENDPOINT }));
  }
  const frame = { action: 'sendMessage', conversationId: 'conv', clientMessageId: 'cm-1', body: 'hello' };

  it('counts a served frame as one request, with its posts (`sent` to the sender, `message` to bob) and its notify job, in one flush', async () => {
    // Prepare
    const { fake, metrics, services } = metered();
    fake.connect('alice-1', 'alice', 'phone');
    fake.connect('bob-1', 'bob', 'laptop');
    // Act
    await sendMessageHandler(services)(messageEvent('alice-1', frame, 'sendMessage'));
    // Assess
    expect(metrics.flushed).toEqual([{ requests: 1, deliveries: 2, notify_jobs: 1 }]);
    expect(metrics.pending.size).toBe(0);
  });

  it('counts a rate_limited answer', async () => {
    // Prepare
    const { fake, metrics, services } = metered();
    fake.connect('alice-1', 'alice', 'phone');
    fake.services.limiter.admit.mockResolvedValue(false);
    // Act
    await sendMessageHandler(services)(messageEvent('alice-1', frame, 'sendMessage'));
    // Assess
    expect(metrics.flushed).toEqual([{ requests: 1, rate_limited: 1 }]);
  });

  it('counts an unavailable answer', async () => {
    // Prepare
    const { fake, metrics, services } = metered();
    fake.connect('alice-1', 'alice', 'phone');
    fake.services.registry.connection.mockRejectedValue(new UnavailableError('DynamoDB is down'));
    // Act
    await sendMessageHandler(services)(messageEvent('alice-1', frame, 'sendMessage'));
    // Assess
    expect(metrics.flushed).toEqual([{ requests: 1, unavailable: 1 }]);
  });

  it('counts other refusals as requests only', async () => {
    // Prepare: a connection that is not subscribed to the conversation (forbidden)
    const { metrics, services } = metered();
    const typing = typingRoute.create(async () => ({ ...services, callbackUrl: ENDPOINT }));
    // Act
    await typing(messageEvent('stranger', { action: 'typing', conversationId: 'conv' }, 'typing'));
    // Assess
    expect(metrics.flushed).toEqual([{ requests: 1 }]);
  });

  it('counts nothing for a frame refused before its services (not JSON)', async () => {
    // Prepare
    const { metrics, services } = metered();
    // Act
    await sendMessageHandler(services)(messageEvent('alice-1', '{not json', 'sendMessage'));
    // Assess
    expect(metrics.flushed).toEqual([]);
  });

  it('counts an unavailable answer through bootMetrics when the services cannot be built', async () => {
    // Prepare
    const count = vi.spyOn(bootMetrics, 'count');
    const flush = vi.spyOn(bootMetrics, 'flush');
    const handler = sendMessageRoute.create(async () => {
      throw new UnavailableError('secret store down');
    });
    // Act
    await handler(messageEvent('alice-1', frame, 'sendMessage'));
    // Assess
    expect(count.mock.calls).toEqual([['requests'], ['unavailable']]);
    expect(flush).toHaveBeenCalledTimes(1);
  });

  it('serves the frame when EMF metrics cannot be written: the failure is logged, the frame not failed', async () => {
    // Prepare
    const { fake, services } = metered();
    fake.connect('alice-1', 'alice', 'phone');
    const emf = new EmfMetrics('dev', services.log);
    vi.spyOn(PowertoolsMetrics.prototype, 'publishStoredMetrics').mockImplementation(() => {
      throw new RangeError('stdout closed');
    });
    const handler = sendMessageRoute.create(async () => ({ ...services, metrics: emf, callbackUrl: ENDPOINT }));
    // Act
    const result = await handler(messageEvent('alice-1', frame, 'sendMessage'));
    // Assess
    expect(result.statusCode).toBe(200);
    expect(fake.posted.map((p) => (JSON.parse(p.data) as { type: string }).type)).toEqual(['sent']);
    expect(fake.logs).toEqual(expect.arrayContaining([expect.objectContaining({ level: 'warn', message: 'metrics not published' })]));
  });
});

describe('$connect answers', () => {
  function connectHandler(services: ReturnType<typeof metered>['services']) {
    return connectRoute.create(async () => ({ ...services, callbackUrl: ENDPOINT }));
  }

  it('counts an accepted handshake as a request only', async () => {
    // Prepare
    const { metrics, services } = metered();
    // Act
    const result = await connectHandler(services)(connectEvent('c-1', { token: 'good', clientId: 'phone' }));
    // Assess
    expect(result.statusCode).toBe(200);
    expect(metrics.flushed).toEqual([{ requests: 1 }]);
  });

  it('counts a 429 (too many connections) as rate_limited', async () => {
    // Prepare
    const { metrics, services } = metered({ maxConnectionsPerUser: 1 });
    const handler = connectHandler(services);
    await handler(connectEvent('c-1', { token: 'good', clientId: 'phone' }));
    // Act
    const result = await handler(connectEvent('c-2', { token: 'good', clientId: 'laptop' }));
    // Assess
    expect(result.statusCode).toBe(429);
    expect(metrics.flushed).toEqual([{ requests: 1 }, { requests: 1, rate_limited: 1 }]);
  });

  it('counts a 503 as unavailable and a 401 as neither', async () => {
    // Prepare
    const { fake, metrics, services } = metered();
    fake.services.registry.open.mockRejectedValueOnce(new UnavailableError('DynamoDB is down'));
    const handler = connectHandler(services);
    // Act
    const unavailable = await handler(connectEvent('c-1', { token: 'good', clientId: 'phone' }));
    const refused = await handler(connectEvent('c-2', { token: 'bad', clientId: 'phone' }));
    // Assess
    expect([unavailable.statusCode, refused.statusCode]).toEqual([503, 401]);
    expect(metrics.flushed).toEqual([{ requests: 1, unavailable: 1 }, { requests: 1 }]);
  });
});

describe('fan-out worker', () => {
  it('flushes once per batch: the posts of all its jobs in one line', async () => {
    // Prepare
    const { fake, metrics, services } = metered();
    fake.outcomes.set('G3', 'gone');
    const worker = fanoutWorkerRoute.create(async () => services);
    const job = (ids: string[]) => JSON.stringify({ kind: 'typing', conversationId: 'conv', userId: 'alice', state: 'start', at: 5, connectionIds: ids });
    // Act
    await worker({ Records: [sqsRecord('r1', job(['G1', 'G2'])), sqsRecord('r2', job(['G3'])), sqsRecord('bad', '{not json')] });
    // Assess
    expect(metrics.flushed).toEqual([{ deliveries: 2, gone: 1 }]);
  });

  it('emits nothing for a batch that posted nothing', async () => {
    // Prepare
    const { metrics, services } = metered();
    const worker = fanoutWorkerRoute.create(async () => services);
    // Act
    await worker({ Records: [sqsRecord('bad', '{not json')] });
    // Assess
    expect(metrics.flushed).toEqual([]);
  });
});

describe('EmfMetrics (Powertools Metrics)', () => {
  const quietLog: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

  function captureStdout(): string[] {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    return lines;
  }

  it('writes one EMF line per flush, the counts summed, in namespace RelayWs with service and stage', () => {
    // Prepare
    const lines = captureStdout();
    const metrics = new EmfMetrics('prod', quietLog);
    // Act
    metrics.count('deliveries');
    metrics.count('deliveries', 4);
    metrics.count('failed');
    metrics.flush();
    // Assess
    const emf = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => '_aws' in line);
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Namespace: METRICS_NAMESPACE, Dimensions: [expect.arrayContaining(['service', 'stage'])] }] },
      service: METRICS_SERVICE,
      stage: 'prod',
      deliveries: 5,
      failed: 1,
    });
  });

  it('writes nothing when nothing was counted, and ignores counts that are not positive', () => {
    // Prepare
    const lines = captureStdout();
    const metrics = new EmfMetrics('prod', quietLog);
    // Act
    metrics.count('gone', 0);
    metrics.count('gone', -3);
    metrics.count('gone', Number.NaN);
    metrics.flush();
    // Assess
    expect(lines).toEqual([]);
  });

  it('starts each flush afresh', () => {
    // Prepare
    const lines = captureStdout();
    const metrics = new EmfMetrics('dev', quietLog);
    // Act
    metrics.count('requests', 2);
    metrics.flush();
    metrics.count('unavailable');
    metrics.flush();
    // Assess
    const values = lines.map((line) => JSON.parse(line) as Record<string, unknown>).map(({ requests, unavailable }) => ({ requests, unavailable }));
    expect(values).toEqual([
      { requests: 2, unavailable: undefined },
      { requests: undefined, unavailable: 1 },
    ]);
  });
});

describe('metricsOf', () => {
  const log: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

  it('builds EMF metrics only with METRICS=emf', () => {
    expect(metricsOf({ METRICS: 'emf', METRICS_STAGE: 'dev' }, log)).toBeInstanceOf(EmfMetrics);
    expect(metricsOf({ METRICS: 'off', METRICS_STAGE: 'dev' }, log)).toBeInstanceOf(NoMetrics);
  });
});
