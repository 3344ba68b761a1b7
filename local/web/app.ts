/**
 * The local chat page (`npm start`, then http://127.0.0.1:3001/?user=alice&conversation=demo): one user in one
 * conversation, built on the client library. It signs in through the emulator's dev endpoints (local only).
 * State lives in a few maps; every change re-renders the part it touched.
 */
import { RelayClient, type ConversationSummary, type ReceivedMessage } from '../../client/index.js';

interface Shown {
  messageId: string;
  seq: number;
  senderId: string;
  sentAt: number;
  body: string;
  deleted: boolean;
  editedAt: number | undefined;
  undecryptable: boolean;
}

const params = new URLSearchParams(location.search);
const userId = params.get('user') ?? 'alice';
const conversationId = params.get('conversation') ?? 'demo';
// One device per tab (delivery state is per device); a reload of the tab is the same device.
const deviceId = sessionStorage.getItem('relay-device') ?? `web-${userId}-${crypto.randomUUID().slice(0, 8)}`;
sessionStorage.setItem('relay-device', deviceId);

const messages = new Map<string, Shown>();
const pending = new Map<number, string>();
let nextPending = 0;
/** Each other member's read position in this conversation, from `read` frames. */
const readBy = new Map<string, number>();
const online = new Set<string>();
const members = new Set<string>([userId]);
const typingUntil = new Map<string, number>();
let conversations: ConversationSummary[] = [];
let editing: string | undefined;
let typingTimer: ReturnType<typeof setTimeout> | undefined;

function element<T extends HTMLElement>(selector: string): T {
  const found = document.querySelector<T>(selector);
  if (found === null) throw new Error(`the page has no ${selector}`);
  return found;
}
function make(tag: string, props: { className?: string; text?: string; data?: Record<string, string> } = {}): HTMLElement {
  const node = document.createElement(tag);
  if (props.className !== undefined) node.className = props.className;
  if (props.text !== undefined) node.textContent = props.text;
  for (const [key, value] of Object.entries(props.data ?? {})) node.dataset[key] = value;
  return node;
}

const ui = {
  status: element('[data-testid=status]'),
  conversations: element('#conversations'),
  members: element('#members'),
  messages: element('#messages'),
  pending: element('#pending'),
  typing: element('#typing'),
  form: element<HTMLFormElement>('#compose'),
  composer: element<HTMLTextAreaElement>('[data-testid=composer]'),
  send: element<HTMLButtonElement>('[data-testid=send]'),
  cancel: element<HTMLButtonElement>('[data-testid=cancel-edit]'),
  problem: element('#problem'),
  notify: element<HTMLButtonElement>('[data-testid=notify]'),
  pushes: element('#pushes'),
  pushesTitle: element('#pushes-title'),
};
element('#me').textContent = `${userId} in ${conversationId}`;

function setStatus(state: string): void {
  ui.status.textContent = state;
  ui.status.dataset.state = state;
}
function showProblem(error: unknown): void {
  ui.problem.hidden = false;
  ui.problem.textContent = error instanceof Error ? error.message : String(error);
}

function remember(m: ReceivedMessage, senderFallback = '?'): void {
  const known = messages.get(m.messageId);
  const shown: Shown =
    'error' in m
      ? { messageId: m.messageId, seq: m.seq, senderId: known?.senderId ?? senderFallback, sentAt: known?.sentAt ?? 0, body: '(could not be opened)', deleted: false, editedAt: undefined, undecryptable: true }
      : 'deleted' in m
        ? { messageId: m.messageId, seq: m.seq, senderId: m.senderId, sentAt: m.sentAt, body: '', deleted: true, editedAt: undefined, undecryptable: false }
        : { messageId: m.messageId, seq: m.seq, senderId: m.senderId, sentAt: m.sentAt, body: m.body, deleted: false, editedAt: m.editedAt, undecryptable: false };
  messages.set(m.messageId, shown);
  if (shown.senderId !== '?') members.add(shown.senderId);
}

const time = (at: number) => new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/** Which own message shows "seen by" whom: each reader on the last own message at or below their read seq. */
function receipts(): Map<string, string[]> {
  const own = [...messages.values()].filter((m) => m.senderId === userId).map((m) => m.seq).sort((a, b) => a - b);
  const at = new Map<string, string[]>();
  for (const [reader, readSeq] of readBy) {
    const seen = own.filter((seq) => seq <= readSeq).pop();
    if (seen === undefined) continue;
    const message = [...messages.values()].find((m) => m.seq === seen);
    if (message !== undefined) at.set(message.messageId, [...(at.get(message.messageId) ?? []), reader]);
  }
  return at;
}

function renderMessages(): void {
  const stick = ui.messages.scrollTop + ui.messages.clientHeight >= ui.messages.scrollHeight - 8;
  const seenBy = receipts();
  const items = [...messages.values()].sort((a, b) => a.seq - b.seq).map((m) => {
    const li = make('li', { data: { testid: 'message', seq: String(m.seq), messageId: m.messageId, sender: m.senderId } });
    li.classList.toggle('own', m.senderId === userId);
    li.classList.toggle('deleted', m.deleted);
    const meta = make('div', { className: 'meta' });
    meta.append(make('span', { className: 'sender', text: m.senderId }), make('time', { text: time(m.sentAt) }));
    if (m.editedAt !== undefined && !m.deleted) meta.append(make('span', { text: 'edited' }));
    if (m.senderId === userId && !m.deleted && !m.undecryptable) {
      const edit = make('button', { text: 'edit', data: { testid: 'edit' } });
      edit.onclick = () => startEditing(m);
      const remove = make('button', { text: 'delete', data: { testid: 'delete' } });
      remove.onclick = () => void client.delete(conversationId, m.messageId).then(
        (done) => applyDeleted(done.messageId),
        showProblem,
      );
      meta.append(edit, remove);
    }
    li.append(meta, make('div', { className: 'body', text: m.deleted ? 'message deleted' : m.body, data: { testid: 'body' } }));
    const readers = seenBy.get(m.messageId);
    if (readers !== undefined) li.append(make('div', { className: 'seen', text: `Seen by ${readers.sort().join(', ')}`, data: { testid: 'seen' } }));
    return li;
  });
  ui.messages.replaceChildren(...items);
  if (stick) ui.messages.scrollTop = ui.messages.scrollHeight;
}

function renderPending(): void {
  ui.pending.replaceChildren(...[...pending.values()].map((body) => make('li', { text: `${body} (sending…)`, data: { testid: 'pending-message' } })));
}

function renderConversations(): void {
  ui.conversations.replaceChildren(
    ...conversations.map((c) => {
      const a = document.createElement('a');
      a.href = `?${new URLSearchParams({ user: userId, conversation: c.conversationId }).toString()}`;
      if (c.conversationId === conversationId) a.setAttribute('aria-current', 'page');
      const count = String(c.conversationId === conversationId ? 0 : c.unreadCount);
      a.append(make('span', { text: c.conversationId }), make('span', { className: 'badge', text: count, data: { testid: 'unread', conversation: c.conversationId, count } }));
      const li = make('li');
      li.append(a);
      return li;
    }),
  );
}

function renderMembers(): void {
  ui.members.replaceChildren(
    ...[...members].sort().map((member) => {
      const state = online.has(member) ? 'online' : 'offline';
      const span = make('span', { data: { testid: 'presence', user: member, state }, text: member === userId ? `${member} (you)` : member });
      span.prepend(make('span', { className: 'dot' }));
      span.title = state;
      return span;
    }),
  );
}

function renderTyping(): void {
  clearTimeout(typingTimer);
  const now = Date.now();
  for (const [who, until] of typingUntil) if (until <= now) typingUntil.delete(who);
  const who = [...typingUntil.keys()].sort();
  ui.typing.textContent = who.length === 0 ? '' : `${who.join(', ')} ${who.length === 1 ? 'is' : 'are'} typing…`;
  if (who.length > 0) typingTimer = setTimeout(renderTyping, Math.max(50, Math.min(...typingUntil.values()) - now));
}

function startEditing(m: Shown): void {
  editing = m.messageId;
  ui.composer.value = m.body;
  ui.send.textContent = 'Save';
  ui.cancel.hidden = false;
  ui.composer.focus();
}
function stopEditing(): void {
  editing = undefined;
  ui.composer.value = '';
  ui.send.textContent = 'Send';
  ui.cancel.hidden = true;
}
function applyEdited(messageId: string, body: string, editedAt: number): void {
  const m = messages.get(messageId);
  if (m === undefined) return;
  messages.set(messageId, { ...m, body, editedAt });
  renderMessages();
}
function applyDeleted(messageId: string): void {
  const m = messages.get(messageId);
  if (m === undefined) return;
  messages.set(messageId, { ...m, body: '', deleted: true });
  renderMessages();
}

/** Marks everything shown as read, at most one request in flight (the newest seq wins). */
let readTarget = 0;
let readSent = 0;
let reading = false;
function markAllRead(): void {
  readTarget = Math.max(readTarget, ...[...messages.values()].map((m) => m.seq));
  if (reading || readTarget <= readSent) return;
  reading = true;
  const seq = readTarget;
  client.markRead(conversationId, seq).then(
    () => {
      readSent = seq;
      reading = false;
      markAllRead();
    },
    (error: unknown) => {
      reading = false;
      showProblem(error);
    },
  );
}

async function dev(path: string, method: 'GET' | 'POST'): Promise<{ token?: string; url?: string }> {
  const response = await fetch(path, { method });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status}`);
  return (await response.json()) as { token?: string; url?: string };
}
const tokenPath = `/dev/token?${new URLSearchParams({ user: userId }).toString()}`;

async function refreshConversations(): Promise<void> {
  conversations = (await client.conversations({ limit: 50 })).conversations;
  renderConversations();
}

// Push, locally: Chromium's PushManager talks to FCM, out of reach offline, so the page gets its subscription from
// the local push service (through /dev/push/subscribe), registers it like a real one, and polls what the service
// received for it. A subscription belongs to this tab's device, so it is kept where the device id is.
const PUSH_KEY = 'relay-push-endpoint';
const PUSH_POLL_MS = 1000;
let pushEndpoint = sessionStorage.getItem(PUSH_KEY) ?? undefined;
let pushTimer: ReturnType<typeof setTimeout> | undefined;

interface ReceivedPush {
  payload?: string;
  at: number;
}

/** What a push says (the backend's notification: conversation, sender, seq, count, and a preview only if enabled). */
function describePush(payload: string | undefined): { conversation: string; seq: string; text: string } {
  let value: unknown;
  try {
    value = payload === undefined ? undefined : JSON.parse(payload);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null) return { conversation: '', seq: '', text: payload === undefined ? 'push without payload' : 'push' };
  const n = value as { conversationId?: unknown; senderId?: unknown; seq?: unknown; count?: unknown; preview?: unknown };
  const conversation = typeof n.conversationId === 'string' ? n.conversationId : '';
  const count = typeof n.count === 'number' ? n.count : 1;
  const sender = typeof n.senderId === 'string' ? n.senderId : 'someone';
  const preview = typeof n.preview === 'string' ? `: ${n.preview}` : '';
  return { conversation, seq: typeof n.seq === 'number' ? String(n.seq) : '', text: `${sender} in ${conversation}: ${count} new${preview}` };
}

function renderPushes(pushes: ReceivedPush[]): void {
  ui.pushesTitle.hidden = pushEndpoint === undefined;
  ui.pushes.replaceChildren(
    ...[...pushes].reverse().map((push) => {
      const { conversation, seq, text } = describePush(push.payload);
      const li = make('li', { data: { testid: 'push', conversation, seq } });
      li.append(make('time', { text: time(push.at) }), make('span', { text }));
      return li;
    }),
  );
}

function setNotify(on: boolean): void {
  ui.notify.dataset.state = on ? 'on' : 'off';
  ui.notify.textContent = on ? 'Notifications on' : 'Notify me';
}

async function pollPushes(): Promise<void> {
  clearTimeout(pushTimer);
  const endpoint = pushEndpoint;
  if (endpoint === undefined) return;
  try {
    const response = await fetch(`/dev/push/received?${new URLSearchParams({ endpoint }).toString()}`);
    if (response.ok && endpoint === pushEndpoint) renderPushes(((await response.json()) as { pushes: ReceivedPush[] }).pushes);
  } finally {
    if (endpoint === pushEndpoint) pushTimer = setTimeout(() => void pollPushes().catch(showProblem), PUSH_POLL_MS);
  }
}

async function toggleNotify(): Promise<void> {
  if (pushEndpoint !== undefined) {
    await client.unregisterPush();
    pushEndpoint = undefined;
    sessionStorage.removeItem(PUSH_KEY);
    clearTimeout(pushTimer);
    renderPushes([]);
    setNotify(false);
    return;
  }
  const response = await fetch('/dev/push/subscribe', { method: 'POST' });
  if (!response.ok) throw new Error(`no local push service (POST /dev/push/subscribe: ${response.status})`);
  const subscription = (await response.json()) as { endpoint: string; keys: Record<string, string> };
  await client.registerPush({ webPush: subscription });
  pushEndpoint = subscription.endpoint;
  sessionStorage.setItem(PUSH_KEY, pushEndpoint);
  setNotify(true);
  await pollPushes();
}

let client: RelayClient;

async function main(): Promise<void> {
  await dev(`/dev/join?${new URLSearchParams({ user: userId, conversation: conversationId }).toString()}`, 'POST');
  const first = await dev(tokenPath, 'GET');
  let token = first.token;
  client = new RelayClient({
    url: first.url ?? `ws://${location.host}/local`,
    clientId: deviceId,
    // The first token is the one fetched above; every reconnect asks for a fresh one.
    token: async () => {
      const ready = token;
      token = undefined;
      return ready ?? (await dev(tokenPath, 'GET')).token ?? '';
    },
    reconnect: { baseMs: 200, capMs: 3000 },
  });

  let dropped = false;
  client.on('connecting', () => setStatus(dropped ? 'reconnecting' : 'connecting'));
  client.on('reconnecting', () => {
    dropped = true;
    setStatus('reconnecting');
  });
  client.on('open', () => {
    if (!dropped) return;
    // Open again, but the resubscribe and its resume pages are still to come: requests wait for them.
    setStatus('recovering');
    refreshConversations().then(() => setStatus('open'), showProblem);
  });
  client.on('closed', () => setStatus('closed'));
  client.on('error', (error) => showProblem(error));
  client.on('message', (m) => {
    if (m.conversationId !== conversationId) {
      const summary = conversations.find((c) => c.conversationId === m.conversationId);
      if (summary !== undefined && !('deleted' in m)) summary.unreadCount += 1;
      renderConversations();
      return;
    }
    remember(m);
    if ('senderId' in m) typingUntil.delete(m.senderId);
    renderMessages();
    renderMembers();
    renderTyping();
    if (document.visibilityState === 'visible') markAllRead();
  });
  client.on('messageEdited', (e) => {
    if (e.conversationId === conversationId) applyEdited(e.messageId, e.body, e.editedAt);
  });
  client.on('messageDeleted', (e) => {
    if (e.conversationId === conversationId) applyDeleted(e.messageId);
  });
  client.on('typing', (t) => {
    if (t.conversationId !== conversationId || t.userId === userId) return;
    if (t.state === 'start') typingUntil.set(t.userId, t.expiresAt);
    else typingUntil.delete(t.userId);
    members.add(t.userId);
    renderTyping();
  });
  client.on('read', (r) => {
    if (r.conversationId !== conversationId || r.userId === userId) return;
    readBy.set(r.userId, Math.max(readBy.get(r.userId) ?? 0, r.seq));
    members.add(r.userId);
    renderMessages();
    renderMembers();
  });
  client.on('presence', (p) => {
    if (p.conversationId !== conversationId) return;
    if ('online' in p) {
      online.clear();
      for (const member of p.online) online.add(member);
    }
    if ('state' in p) {
      if (p.state === 'online') online.add(p.userId);
      else online.delete(p.userId);
    }
    for (const member of online) members.add(member);
    renderMembers();
  });

  ui.notify.onclick = () => {
    ui.notify.disabled = true;
    toggleNotify()
      .catch(showProblem)
      .finally(() => {
        ui.notify.disabled = false;
      });
  };
  if (pushEndpoint !== undefined) {
    setNotify(true);
    pollPushes().catch(showProblem);
  }

  await client.connect();
  setStatus('open');
  await refreshConversations();
  // Follow every conversation (for the unread badges), each after its last seq now: what is newer comes live
  // or in the resume pages; this conversation's earlier messages come from its history.
  const afterSeq: Record<string, number> = Object.fromEntries(conversations.map((c) => [c.conversationId, c.lastSeq]));
  await client.subscribe([...new Set([conversationId, ...conversations.map((c) => c.conversationId)])], { afterSeq });
  const history = await client.history(conversationId, { beforeSeq: (afterSeq[conversationId] ?? 0) + 1, limit: 100 });
  for (const m of history.messages) if (!messages.has(m.messageId)) remember(m);
  await client.getPresence(conversationId);
  renderMessages();
  renderMembers();
  markAllRead();
}

ui.composer.addEventListener('input', () => {
  if (ui.composer.value.trim() !== '' && editing === undefined) client.typing(conversationId, 'start');
});
ui.composer.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    ui.form.requestSubmit();
  }
  if (event.key === 'Escape' && editing !== undefined) stopEditing();
});
ui.cancel.onclick = () => stopEditing();
ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const body = ui.composer.value.trim();
  if (body === '') return;
  if (editing !== undefined) {
    const messageId = editing;
    stopEditing();
    client.edit(conversationId, messageId, body).then((done) => applyEdited(done.messageId, done.body, done.editedAt), showProblem);
    return;
  }
  ui.composer.value = '';
  client.typing(conversationId, 'stop');
  const key = nextPending++;
  pending.set(key, body);
  renderPending();
  client.send(conversationId, body).then(
    (sent) => {
      pending.delete(key);
      remember({ conversationId, messageId: sent.messageId, seq: sent.seq, senderId: userId, clientMessageId: sent.clientMessageId, body, sentAt: sent.sentAt });
      renderPending();
      renderMessages();
    },
    (error: unknown) => {
      pending.delete(key);
      renderPending();
      showProblem(error);
    },
  );
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') markAllRead();
});

main().catch((error: unknown) => {
  setStatus('closed');
  showProblem(error);
});
