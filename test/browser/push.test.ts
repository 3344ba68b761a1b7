import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import type { ReceivedPush } from '../../local/push-service.js';
import { uniqueId } from '../support/env.js';

/**
 * Push from the chat page: bob asks to be notified (the page registers a subscription of the local push service,
 * its stand-in for the browser's PushManager), leaves, and alice writes. The real notifier sends real Web Push
 * requests (VAPID, aes128gcm) to the local push service, which decrypts them with the subscription's keys.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WAIT = { timeout: 15_000, interval: 50 };

let backend: LocalBackend;
let browser: Browser | undefined;
let sqs: SQSClient;
let base: string;
const conversationId = uniqueId('web-push');
const alice = uniqueId('alice');
const bob = uniqueId('bob');
/** Every push the service accepted (a later one of the same Topic replaces an earlier in `received`, not here). */
const accepted: ReceivedPush[] = [];

beforeAll(async () => {
  backend = await startLocalBackend({ redisUrl: inject('redisUrl'), web: true, env: { LOG_LEVEL: 'SILENT' } });
  base = `http://127.0.0.1:${backend.port}`;
  backend.pushService?.onPush((push) => accepted.push(push));
  sqs = new SQSClient({ endpoint: backend.sqsEndpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
});

afterAll(async () => {
  await browser?.close();
  sqs?.destroy();
  await backend?.close();
});

async function openAs(userId: string): Promise<Page> {
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  const page = await (await browser.newContext({ viewport: { width: 900, height: 560 } })).newPage();
  await page.goto(`${base}/?user=${userId}&conversation=${conversationId}`);
  await expect.poll(() => page.getByTestId('status').textContent(), WAIT).toBe('open');
  return page;
}

async function send(page: Page, body: string): Promise<void> {
  await page.getByTestId('composer').fill(body);
  await page.getByTestId('send').click();
}

/** Waits until the notifier has taken every job off its queue and finished it (nothing visible, nothing in flight). */
async function notifierDrained(): Promise<void> {
  let quiet = 0;
  await expect
    .poll(async () => {
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: backend.notifyQueueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
      );
      const busy = Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
      quiet = busy === 0 ? quiet + 1 : 0;
      return quiet >= 3;
    }, { timeout: 15_000, interval: 200 })
    .toBe(true);
}

describe('push from the web chat page', () => {
  it('bob asks to be notified and leaves; three messages from alice wake his device once, without their text', async () => {
    // Prepare: both pages open; bob turns notifications on.
    const alicePage = await openAs(alice);
    const bobPage = await openAs(bob);
    await bobPage.getByTestId('notify').click();
    await expect.poll(() => bobPage.getByTestId('notify').getAttribute('data-state'), WAIT).toBe('on');
    const stored: unknown = await bobPage.evaluate("sessionStorage.getItem('relay-push-endpoint')");
    const endpoint = String(stored);
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/push\//);
    // While he is on the page, nothing is pushed.
    await send(alicePage, 'while bob is here');
    await expect.poll(() => bobPage.getByTestId('message').count(), WAIT).toBe(1);
    await notifierDrained();
    expect(accepted.filter((push) => push.endpoint === endpoint)).toEqual([]);

    // Act: bob leaves (the tab keeps its device and subscription), alice writes three messages.
    const connected = backend.connectionIds().length;
    await bobPage.goto('about:blank');
    // His socket is closed (its $disconnect may still be running: the first message may find him still online).
    await expect.poll(() => backend.connectionIds().length, WAIT).toBe(connected - 1);
    const bodies = ['first while away', 'second while away', 'third while away'];
    for (const body of bodies) await send(alicePage, body);
    await expect.poll(() => alicePage.getByTestId('message').count(), WAIT).toBe(4);
    await expect.poll(() => alicePage.getByTestId('pending-message').count(), WAIT).toBe(0);
    await notifierDrained();

    // Assess: exactly one push, naming the conversation, the sender and a missed seq; no message text.
    const toBob = accepted.filter((push) => push.endpoint === endpoint);
    expect(toBob).toHaveLength(1);
    const payload = toBob[0]?.payload ?? '';
    const notice = JSON.parse(payload) as { seq?: unknown };
    expect(notice).toMatchObject({ conversationId, senderId: alice });
    expect([2, 3, 4]).toContain(notice.seq);
    for (const body of [...bodies, 'while bob is here']) expect(payload).not.toContain(body);
    expect(payload).not.toContain('preview');

    // Back on the page (same tab: same device), the push is in his notifications list.
    await bobPage.goto(`${base}/?user=${bob}&conversation=${conversationId}`);
    await expect.poll(() => bobPage.getByTestId('push').count(), WAIT).toBe(1);
    const item = bobPage.getByTestId('push').first();
    expect(await item.getAttribute('data-conversation')).toBe(conversationId);
    expect(await item.getAttribute('data-seq')).toBe(String(notice.seq));
    await expect.poll(() => bobPage.getByTestId('message').count(), WAIT).toBe(4);
  });
});
