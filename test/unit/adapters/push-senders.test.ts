import { CreatePlatformEndpointCommand, DeleteEndpointCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryPushSender } from '../../../lambdas/adapters/memory-push-sender.js';
import { PushProviders } from '../../../lambdas/adapters/push-providers.js';
import { messageFor, SnsPushSender } from '../../../lambdas/adapters/sns-push-sender.js';
import { generateVapidKeys, WebPushSender } from '../../../lambdas/adapters/web-push-sender.js';
import { PushFailedError, UnavailableError } from '../../../lambdas/errors.js';
import type { PushSender, StoredPushTarget } from '../../../lambdas/ports.js';
import { startLocalPushService, type LocalPushService } from '../../../local/push-service.js';

const NOTIFICATION = { conversationId: 'conv', senderId: 'alice', seq: 7, count: 3 };
const APNS_APP = 'arn:aws:sns:us-east-1:123456789012:app/APNS/relay';
const FCM_APP = 'arn:aws:sns:us-east-1:123456789012:app/GCM/relay';
const ENDPOINT_ARN = 'arn:aws:sns:us-east-1:123456789012:endpoint/APNS/relay/1';

let service: LocalPushService;
beforeAll(async () => {
  service = await startLocalPushService();
});
afterAll(async () => {
  await service.close();
});

/**
 * The contract every push sender keeps, run against the real Web Push sender (real VAPID and RFC 8291 encryption,
 * to the local push service) and the twin domain tests use: a live target is delivered, a gone one says so.
 */
describe.each([
  ['WebPushSender to the local push service', () => {
    const vapid = generateVapidKeys();
    return { sender: new PushProviders(new WebPushSender({ vapid, ttlSeconds: 60 }), undefined), expire: (t: StoredPushTarget) => t.target.kind === 'webPush' && service.expire(t.target.subscription.endpoint), vapid };
  }],
  ['MemoryPushSender', () => {
    const sender = new MemoryPushSender();
    return { sender: sender as PushSender, expire: (t: StoredPushTarget) => sender.expire(t), vapid: undefined };
  }],
] as const)('push sender contract: %s', (_name, make) => {
  const target = async (applicationServerKey: string | undefined): Promise<StoredPushTarget> => ({
    userId: 'bob',
    deviceId: 'phone',
    target: { kind: 'webPush', subscription: await service.subscribe(applicationServerKey === undefined ? {} : { applicationServerKey }) },
    registeredAt: 1,
  });

  it('delivers to a live target, and reports a gone one', async () => {
    const { sender, expire, vapid } = make();
    const live = await target(vapid?.publicKey);
    expect(await sender.send(live, NOTIFICATION)).toMatchObject({ outcome: 'delivered' });
    expire(live);
    expect(await sender.send(live, NOTIFICATION)).toEqual({ outcome: 'gone' });
  });
});

describe('WebPushSender', () => {
  const subscription = { endpoint: 'https://fcm.googleapis.com/fcm/send/abc', keys: { p256dh: '', auth: '' } };
  beforeAll(async () => {
    subscription.keys = (await service.subscribe()).keys;
  });
  const answering = (status: number, headers: Record<string, string> = {}) =>
    new WebPushSender({ vapid: generateVapidKeys(), ttlSeconds: 60, fetch: async () => new Response(null, { status, headers }) });

  it('encrypts the payload (no plaintext on the wire) and signs with VAPID', async () => {
    const seen: RequestInit[] = [];
    const sender = new WebPushSender({
      vapid: generateVapidKeys(),
      ttlSeconds: 60,
      fetch: async (_url, init) => {
        if (init !== undefined) seen.push(init);
        return new Response(null, { status: 201 });
      },
    });
    await sender.send(subscription, { ...NOTIFICATION, preview: 'secret words' });
    const init = seen[0];
    const headers = new Headers(init?.headers);
    expect(headers.get('content-encoding')).toBe('aes128gcm');
    expect(headers.get('authorization')).toMatch(/^vapid t=/);
    expect(init?.redirect).toBe('manual');
    expect(Buffer.from(init?.body as Uint8Array).toString('latin1')).not.toContain('secret words');
  });

  it('maps answers: 404/410 gone, 429/5xx unavailable (retried), a redirect or another 4xx fails', async () => {
    expect(await answering(410).send(subscription, NOTIFICATION)).toEqual({ outcome: 'gone' });
    expect(await answering(404).send(subscription, NOTIFICATION)).toEqual({ outcome: 'gone' });
    await expect(answering(503).send(subscription, NOTIFICATION)).rejects.toBeInstanceOf(UnavailableError);
    await expect(answering(429).send(subscription, NOTIFICATION)).rejects.toBeInstanceOf(UnavailableError);
    await expect(answering(301, { location: 'http://169.254.169.254/' }).send(subscription, NOTIFICATION)).rejects.toBeInstanceOf(PushFailedError);
    await expect(answering(403).send(subscription, NOTIFICATION)).rejects.toBeInstanceOf(PushFailedError);
  });
});

describe('SnsPushSender', () => {
  const sns = mockClient(SNSClient);
  const sender = new SnsPushSender(new SNSClient({ region: 'us-east-1' }), { apnsArn: APNS_APP, fcmArn: FCM_APP });
  beforeEach(() => sns.reset());

  it('makes a platform endpoint on the first push and publishes ids only', async () => {
    sns.on(CreatePlatformEndpointCommand).resolves({ EndpointArn: ENDPOINT_ARN });
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    expect(await sender.send('apns', 'ab'.repeat(32), undefined, NOTIFICATION)).toEqual({ outcome: 'delivered', endpointArn: ENDPOINT_ARN });
    expect(sns.commandCalls(CreatePlatformEndpointCommand)[0]?.args[0].input).toEqual({ PlatformApplicationArn: APNS_APP, Token: 'ab'.repeat(32) });
    const publish = sns.commandCalls(PublishCommand)[0]?.args[0].input;
    expect(publish).toMatchObject({ TargetArn: ENDPOINT_ARN, MessageStructure: 'json' });
    const apns = JSON.parse(JSON.parse(publish?.Message ?? '{}').APNS) as Record<string, unknown>;
    expect(apns).toEqual({ aps: { 'content-available': 1 }, conversationId: 'conv', senderId: 'alice', seq: '7', count: '3' });
  });

  it('reuses a remembered endpoint, and deletes a disabled one (gone)', async () => {
    sns.on(PublishCommand).rejects(Object.assign(new Error('Endpoint is disabled'), { name: 'EndpointDisabledException', $metadata: { httpStatusCode: 400 } }));
    sns.on(DeleteEndpointCommand).resolves({});
    expect(await sender.send('apns', 'ab'.repeat(32), ENDPOINT_ARN, NOTIFICATION)).toEqual({ outcome: 'gone' });
    expect(sns.commandCalls(CreatePlatformEndpointCommand)).toHaveLength(0);
    expect(sns.commandCalls(DeleteEndpointCommand)[0]?.args[0].input).toEqual({ EndpointArn: ENDPOINT_ARN });
  });

  it('makes the endpoint again when the remembered one was deleted', async () => {
    sns.on(PublishCommand, { TargetArn: ENDPOINT_ARN }).rejects(Object.assign(new Error('no such endpoint'), { name: 'NotFoundException', $metadata: { httpStatusCode: 404 } }));
    sns.on(PublishCommand, { TargetArn: `${ENDPOINT_ARN}-new` }).resolves({ MessageId: 'm' });
    sns.on(CreatePlatformEndpointCommand).resolves({ EndpointArn: `${ENDPOINT_ARN}-new` });
    expect(await sender.send('fcm', 'f'.repeat(40), ENDPOINT_ARN, NOTIFICATION)).toEqual({ outcome: 'delivered', endpointArn: `${ENDPOINT_ARN}-new` });
  });

  it('throws on throttling (the job is retried) and refuses a kind the stage has no application for', async () => {
    sns.on(CreatePlatformEndpointCommand).resolves({ EndpointArn: ENDPOINT_ARN });
    sns.on(PublishCommand).rejects(Object.assign(new Error('slow down'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }));
    await expect(sender.send('apns', 'ab'.repeat(32), undefined, NOTIFICATION)).rejects.toBeInstanceOf(UnavailableError);
    const apnsOnly = new SnsPushSender(new SNSClient({ region: 'us-east-1' }), { apnsArn: APNS_APP });
    await expect(apnsOnly.send('fcm', 'f'.repeat(40), undefined, NOTIFICATION)).rejects.toBeInstanceOf(PushFailedError);
  });

  it('never carries a preview to APNs or FCM', async () => {
    sns.on(CreatePlatformEndpointCommand).resolves({ EndpointArn: ENDPOINT_ARN });
    sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const providers = new PushProviders(undefined, sender);
    const stored: StoredPushTarget = { userId: 'bob', deviceId: 'phone', target: { kind: 'fcm', token: 'f'.repeat(40) }, registeredAt: 1 };
    await providers.send(stored, { ...NOTIFICATION, preview: 'the secret text' });
    expect(sns.commandCalls(PublishCommand)[0]?.args[0].input.Message).not.toContain('secret');
    expect(JSON.parse(JSON.parse(messageFor(FCM_APP, NOTIFICATION)).GCM)).toEqual({
      data: { conversationId: 'conv', senderId: 'alice', seq: '7', count: '3' },
      android: { priority: 'high' },
    });
  });
});
