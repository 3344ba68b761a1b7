import { connect as tcpConnect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { CreateQueueCommand, ListQueuesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSqsServer, type RunningService } from '../../local/services.js';
import { DUMMY_CREDENTIALS } from '../support/dynalite.js';

/** This machine's addresses other than loopback (IPv4 and IPv6, link-local left out: it needs a scope). */
function outsideAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((entries) => entries ?? [])
    .filter((entry) => !entry.internal && !entry.address.startsWith('fe80:'))
    .map((entry) => entry.address);
}

/** Whether a TCP connection to host:port is accepted (refused or timed out: false). */
function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port, timeout: 2000 });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

describe('the local SQS server (fauxqs)', () => {
  let sqs: RunningService;
  let client: SQSClient;
  let port: number;

  beforeAll(async () => {
    sqs = await startSqsServer();
    port = Number(new URL(sqs.endpoint).port);
    client = new SQSClient({ endpoint: sqs.endpoint, region: 'us-east-1', credentials: DUMMY_CREDENTIALS, maxAttempts: 1 });
  });
  afterAll(async () => {
    client.destroy();
    await sqs.stop();
  });

  it('serves the SQS API on loopback', async () => {
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: 'exposure-probe' }));
    await client.send(new SendMessageCommand({ QueueUrl, MessageBody: 'a queued job' }));
    expect((await client.send(new ListQueuesCommand({}))).QueueUrls).toEqual([QueueUrl]);
    expect(await reachable('127.0.0.1', port)).toBe(true);
  });

  it('is not reachable on any other address of this machine', async () => {
    const addresses = outsideAddresses();
    const answers = await Promise.all(addresses.map(async (address) => [address, await reachable(address, port)] as const));
    // A machine with no address but loopback has nothing to check: the list is then empty.
    expect(answers).toEqual(addresses.map((address) => [address, false]));
  });

  it('answers 404 to the inspection pages, the health page and the S3 emulation', async () => {
    for (const path of ['/_fauxqs/queues', '/_fauxqs/queues/exposure-probe', '/health', '/some-bucket/some-key']) {
      const response = await fetch(`${sqs.endpoint}${path}`);
      expect([path, response.status]).toEqual([path, 404]);
      expect(await response.text()).not.toContain('a queued job');
    }
    const put = await fetch(`${sqs.endpoint}/some-bucket/some-key`, { method: 'PUT', body: 'x' });
    expect(put.status).toBe(404);
  });
});
