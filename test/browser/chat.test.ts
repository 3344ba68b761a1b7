import { mkdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startLocalBackend, type LocalBackend } from '../../local/backend.js';
import { ChatClient } from '../support/chat.js';
import { uniqueId } from '../support/env.js';

/**
 * The chat page of `npm start` in a real browser (Debian's chromium): two pages as two users in one
 * conversation, against a backend of its own.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('./artifacts/', import.meta.url);
const WAIT = { timeout: 10_000, interval: 50 };

let backend: LocalBackend;
let browser: Browser;
let base: string;
const conversationId = uniqueId('web');
const otherConversationId = uniqueId('web-other');
const alice = uniqueId('alice');
const bob = uniqueId('bob');
let alicePage: Page;
let bobPage: Page;
let bobConnectionId: string;

/** Records every text the status element shows, so a passing `recovering` is not missed between two polls. */
const RECORD_STATUSES = `
  window.__statuses = [];
  addEventListener('DOMContentLoaded', () => {
    const status = document.querySelector('[data-testid=status]');
    window.__statuses.push(status.textContent);
    new MutationObserver(() => window.__statuses.push(status.textContent)).observe(status, { childList: true, characterData: true, subtree: true });
  });
`;

async function openAs(userId: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 900, height: 560 } });
  const page = await context.newPage();
  await page.addInitScript(RECORD_STATUSES);
  await page.goto(`${base}/?user=${userId}&conversation=${conversationId}`);
  await expect.poll(() => page.getByTestId('status').textContent(), WAIT).toBe('open');
  return page;
}

async function send(page: Page, body: string): Promise<void> {
  await page.getByTestId('composer').fill(body);
  await page.getByTestId('send').click();
}

/** The messages a page shows, in page order. */
async function shown(page: Page): Promise<{ seq: number; messageId: string; body: string }[]> {
  const items = page.getByTestId('message');
  const out: { seq: number; messageId: string; body: string }[] = [];
  for (const item of await items.all()) {
    out.push({
      seq: Number(await item.getAttribute('data-seq')),
      messageId: (await item.getAttribute('data-message-id')) ?? '',
      body: (await item.getByTestId('body').textContent()) ?? '',
    });
  }
  return out;
}

async function statuses(page: Page): Promise<string[]> {
  const value: unknown = await page.evaluate('window.__statuses');
  return Array.isArray(value) ? value.map(String) : [];
}

beforeAll(async () => {
  backend = await startLocalBackend({ redisUrl: inject('redisUrl'), web: true, env: { LOG_LEVEL: 'SILENT' } });
  base = `http://127.0.0.1:${backend.port}`;
});

afterAll(async () => {
  await browser?.close();
  await backend?.close();
});

/**
 * The browser and both pages, started by the first test that needs them (not in a hook: a chromium that
 * cannot start fails each test, never skips one).
 */
let session: Promise<void> | undefined;
function pagesOpen(): Promise<void> {
  session ??= (async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    await mkdir(ARTIFACTS, { recursive: true });
    // Both are members of a second conversation too, for bob's unread badge.
    for (const userId of [alice, bob]) {
      const joined = await fetch(`${base}/dev/join?user=${userId}&conversation=${otherConversationId}`, { method: 'POST' });
      expect(joined.status).toBe(200);
    }
    alicePage = await openAs(alice);
    const before = new Set(backend.connectionIds());
    bobPage = await openAs(bob);
    bobConnectionId = backend.connectionIds().find((id) => !before.has(id)) ?? '';
  })();
  return session;
}

describe('the web chat page', () => {
  it('lets two users chat: messages both ways, typing, presence, seen-by receipts, unread badges', async () => {
    // Prepare: both pages are open in the conversation.
    await pagesOpen();

    // Act: alice types, then sends; bob answers.
    // A typing frame is best effort (it is not stored, and one that reaches bob's connection before his page
    // listens is gone): alice keeps typing, as a person does, and the client sends `start` again every 2 s.
    await expect
      .poll(async () => {
        await alicePage.getByTestId('composer').press('l');
        return bobPage.getByTestId('typing').textContent();
      }, { timeout: WAIT.timeout, interval: 2_100 })
      .toBe(`${alice} is typing…`);
    await alicePage.getByTestId('composer').fill('');
    await send(alicePage, 'hello bob');
    await expect.poll(() => bobPage.getByTestId('message').last().getByTestId('body').textContent(), WAIT).toBe('hello bob');
    await send(bobPage, 'hi alice');

    // Assess: each sees the other's message with its sender, the typing line clears with the message,
    // both are online, and alice sees bob has read hers (he had the page open).
    await expect.poll(() => alicePage.getByTestId('message').last().getByTestId('body').textContent(), WAIT).toBe('hi alice');
    expect(await alicePage.getByTestId('message').last().getAttribute('data-sender')).toBe(bob);
    expect(await bobPage.getByTestId('typing').textContent()).toBe('');
    await expect.poll(() => alicePage.locator(`[data-testid=presence][data-user="${bob}"]`).getAttribute('data-state'), WAIT).toBe('online');
    await expect.poll(() => bobPage.locator(`[data-testid=presence][data-user="${alice}"]`).getAttribute('data-state'), WAIT).toBe('online');
    await expect.poll(() => alicePage.getByTestId('seen').textContent(), WAIT).toBe(`Seen by ${bob}`);
    await expect.poll(() => bobPage.getByTestId('seen').textContent(), WAIT).toBe(`Seen by ${alice}`);

    // Act: a message for bob in the other conversation (from alice's other device, not a page).
    const device = await ChatClient.connectDevice(backend, alice, 'alice-cli');
    await device.request({ action: 'subscribe', conversationIds: [otherConversationId] }, 'subscribed');
    await device.request({ action: 'sendMessage', conversationId: otherConversationId, clientMessageId: 'elsewhere-1', body: 'over here' }, 'sent');
    await device.close();

    // Assess: bob's list counts it; the open conversation counts nothing.
    const badge = (conversation: string) => bobPage.locator(`[data-testid=unread][data-conversation="${conversation}"]`).textContent();
    await expect.poll(() => badge(otherConversationId), WAIT).toBe('1');
    expect(await badge(conversationId)).toBe('0');
    await alicePage.screenshot({ path: new URL('alice.png', ARTIFACTS).pathname });
    await bobPage.screenshot({ path: new URL('bob.png', ARTIFACTS).pathname });
  });

  it('edits and deletes one of her own messages, and bob sees both', async () => {
    // Prepare: alice's last own message.
    await pagesOpen();
    await send(alicePage, 'typo herre');
    const own = alicePage.locator(`[data-testid=message][data-sender="${alice}"]`).last();
    await expect.poll(() => own.getByTestId('body').textContent(), WAIT).toBe('typo herre');
    const messageId = (await own.getAttribute('data-message-id')) ?? '';
    const onBob = bobPage.locator(`[data-testid=message][data-message-id="${messageId}"]`);
    await expect.poll(() => onBob.count(), WAIT).toBe(1);

    // Act: edit it.
    await own.getByTestId('edit').click();
    await alicePage.getByTestId('composer').fill('typo here');
    await alicePage.getByTestId('send').click();

    // Assess
    await expect.poll(() => onBob.getByTestId('body').textContent(), WAIT).toBe('typo here');
    expect(await onBob.textContent()).toContain('edited');
    expect(await bobPage.locator('[data-testid=message][data-sender] [data-testid=edit]').count()).toBe(
      await bobPage.locator(`[data-testid=message][data-sender="${bob}"]`).count(),
    );

    // Act: delete it.
    await own.getByTestId('delete').click();

    // Assess: a tombstone on both pages, still in its place.
    await expect.poll(() => onBob.getByTestId('body').textContent(), WAIT).toBe('message deleted');
    await expect.poll(() => own.getByTestId('body').textContent(), WAIT).toBe('message deleted');
    expect(await own.getByTestId('edit').count()).toBe(0);
  });

  it('bob loses his connection, shows reconnecting and recovering, and afterwards no message is missing or twice', async () => {
    // Prepare: bob's reconnects wait (his page asks for a token before each) until the test lets them through.
    await pagesOpen();
    expect(bobConnectionId).not.toBe('');
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    await bobPage.route('**/dev/token?*', async (route) => {
      await held;
      await route.continue();
    });
    const before = (await shown(alicePage)).length;

    // Act: the socket drops without a $disconnect (a lost network); both keep writing while bob is away.
    expect(backend.loseConnection(bobConnectionId)).toBe(true);
    await expect.poll(() => bobPage.getByTestId('status').textContent(), WAIT).toBe('reconnecting');
    for (const n of [1, 2, 3]) await send(alicePage, `while away ${n}`);
    await send(bobPage, 'written offline');
    await expect.poll(() => bobPage.getByTestId('pending-message').count(), WAIT).toBe(1);
    await expect.poll(async () => (await shown(alicePage)).length, WAIT).toBe(before + 3);
    await bobPage.screenshot({ path: new URL('bob-reconnecting.png', ARTIFACTS).pathname });
    release();
    await expect.poll(() => bobPage.getByTestId('status').textContent(), WAIT).toBe('open');
    await send(alicePage, 'after the return');

    // Assess: both pages show the same messages, each once, in ascending seq; bob went through recovering.
    await expect.poll(async () => (await shown(bobPage)).length, WAIT).toBe(before + 5);
    await expect.poll(async () => (await shown(alicePage)).length, WAIT).toBe(before + 5);
    const onBob = await shown(bobPage);
    const onAlice = await shown(alicePage);
    expect(onBob).toEqual(onAlice);
    const seqs = onBob.map((m) => m.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(new Set(onBob.map((m) => m.messageId)).size).toBe(onBob.length);
    const bodies = onBob.map((m) => m.body);
    for (const body of ['while away 1', 'while away 2', 'while away 3', 'written offline', 'after the return']) {
      expect(bodies.filter((b) => b === body)).toHaveLength(1);
    }
    expect(await bobPage.getByTestId('pending-message').count()).toBe(0);
    const seen = await statuses(bobPage);
    expect(seen.slice(seen.indexOf('reconnecting'))).toEqual(expect.arrayContaining(['reconnecting', 'recovering', 'open']));
    await bobPage.screenshot({ path: new URL('bob-after.png', ARTIFACTS).pathname });
  });
});
