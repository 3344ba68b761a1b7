import { routes as deployedRoutes } from '../../../deploy/routes.js';
import { selectRoute } from '../../../local/gateway/routing.js';
import { clientFrameSchemas, MAX_MESSAGE_BYTES } from '../../../lambdas/protocol.js';
import { DEFAULT_PUSH_WEB_HOSTS } from '../../../lambdas/config.js';
import { webPushEndpointSchema } from '../../../lambdas/domain/push.js';
import { ACTIONS, conversationsCursor, isRequestId, stringLeaves, type Binding } from './fuzz-values.js';

/** The protocol's error codes (shared PROTOCOL.md). */
export const ERROR_CODES: readonly string[] = [
  'bad_request',
  'forbidden',
  'not_found',
  'payload_too_large',
  'rate_limited',
  'unavailable',
  'internal',
];

/** "Messages are short": an error message longer than this is a bug. */
export const MAX_ERROR_MESSAGE = 300;

/** Words of the protocol itself: an error message may name them, so they prove nothing about echoing. */
const VOCABULARY = new Set([
  'action',
  'conversationId',
  'conversationIds',
  'conversation',
  'conversations',
  'clientMessageId',
  'messageIds',
  'requestId',
  'userId',
  'state',
  'limit',
  'afterSeq',
  'body',
  'subscribe',
  'unsubscribe',
  'subscribed',
  'unsubscribed',
  'ping',
  'typing',
  'sendMessage',
  'getUnacked',
  'getHistory',
  'editMessage',
  'deleteMessage',
  'messageId',
  'markRead',
  'getConversations',
  'cursor',
  'getPresence',
  'presence',
  'registerPush',
  'unregisterPush',
  'webPush',
  'endpoint',
  'p256dh',
  'upToSeq',
  'beforeSeq',
  'ack',
  'start',
  'stop',
  'expected',
  'forbidden',
]);

export type Frame = Record<string, unknown>;

export function parseFrame(text: string): Frame {
  const value: unknown = JSON.parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`answer is not an object: ${text.slice(0, 200)}`);
  return value as Frame;
}

/**
 * What is wrong with an error frame answering `sentText`: unknown keys, a code outside the protocol, a long
 * message, or one that echoes any string of the frame (8+ characters that are not protocol words).
 */
export function errorFrameProblems(frame: Frame, sentText: string): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(frame)) {
    if (!['type', 'code', 'message', 'action', 'requestId'].includes(key)) problems.push(`unexpected key ${key}`);
  }
  if (frame.type !== 'error') problems.push(`type is ${String(frame.type)}`);
  if (typeof frame.code !== 'string' || !ERROR_CODES.includes(frame.code)) problems.push(`code ${String(frame.code)} is not in the protocol`);
  const message = frame.message;
  if (typeof message !== 'string' || message.length === 0) problems.push('no message');
  else {
    if (message.length > MAX_ERROR_MESSAGE) problems.push(`message is ${message.length} characters long`);
    for (const leaf of stringLeaves(sentText)) {
      if (leaf.length >= 8 && !VOCABULARY.has(leaf) && message.includes(leaf)) problems.push(`message echoes ${JSON.stringify(leaf.slice(0, 40))}`);
    }
  }
  if (frame.action !== undefined && (typeof frame.action !== 'string' || !/^[A-Za-z0-9_$-]{1,32}$/.test(frame.action))) {
    problems.push('action is not a short identifier');
  }
  if (frame.requestId !== undefined && typeof frame.requestId !== 'string') problems.push('requestId is not a string');
  return problems;
}

// ---- routes ----------------------------------------------------------------------------------------------

/** The routes a client frame can select (deploy/routes.ts), and `$default`. */
export const ROUTES = [...ACTIONS, '$default'] as const;
export type Route = (typeof ROUTES)[number];

const isRoute = (key: string | undefined): key is Route => (ROUTES as readonly (string | undefined)[]).includes(key);

/** The deployed route table, as API Gateway (and the emulator, which loads the same table) selects from it. */
const DEPLOYED = Object.fromEntries(
  deployedRoutes.map((r) => [r.routeKey, { handler: () => undefined }]),
);
{
  const clientRoutes = Object.keys(DEPLOYED).filter((key) => key !== '$connect' && key !== '$disconnect');
  const unknown = clientRoutes.filter((key) => !isRoute(key));
  if (unknown.length > 0) throw new Error(`deploy/routes.ts has routes the fuzz contract does not know: ${unknown.join(', ')}`);
}

/** The route API Gateway (and the local emulator) picks for a frame text. */
export function routeOf(text: string): Route {
  const key = selectRoute(DEPLOYED, text, ['action']);
  return isRoute(key) ? key : '$default';
}

// ---- the connection as the fuzz test knows it ------------------------------------------------------------

/**
 * The fuzzed connection: its user, the conversations the user is a member of, and what the connection is
 * subscribed to now (kept up to date by `applyExpected`, and re-read from the registry after a failure).
 */
export interface Session extends Binding {
  subscribed: Set<string>;
  /** MAX_SUBSCRIPTIONS_PER_CONNECTION. */
  maxSubscriptions: number;
}

const isMember = (session: Session, conversationId: string) =>
  conversationId === session.conversationId || session.alsoMemberOf.includes(conversationId);

// ---- requestId -------------------------------------------------------------------------------------------

/** What a frame text carries as `requestId`: nothing, a well-formed one (every answer echoes it), or a malformed one. */
export type RequestIdCase = { kind: 'none' } | { kind: 'valid'; requestId: string } | { kind: 'malformed'; value: unknown };

export function requestIdCase(text: string): RequestIdCase {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { kind: 'none' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !Object.prototype.hasOwnProperty.call(raw, 'requestId')) {
    return { kind: 'none' };
  }
  const value = (raw as Frame).requestId;
  return isRequestId(value) ? { kind: 'valid', requestId: value } : { kind: 'malformed', value };
}

/**
 * The `requestId` rule for one answer frame: a well-formed one is echoed exactly (by every answer, errors
 * included); none is never invented; a malformed one is never echoed.
 */
function requestIdProblems(frame: Frame, sent: RequestIdCase): string[] {
  const has = Object.prototype.hasOwnProperty.call(frame, 'requestId');
  const echoed = JSON.stringify(frame.requestId);
  switch (sent.kind) {
    case 'valid':
      return frame.requestId === sent.requestId ? [] : [`requestId ${has ? echoed : 'missing'}, expected ${JSON.stringify(sent.requestId)}`];
    case 'none':
      return has ? [`requestId ${echoed} invented (the frame carried none)`] : [];
    case 'malformed':
      return has ? [`${String(frame.type)} echoes the malformed requestId ${echoed}`] : [];
  }
}

// ---- expectations ----------------------------------------------------------------------------------------

export interface ConversationExpectation {
  conversationId: string;
  status: 'ok' | 'forbidden';
}

/** What the contract says a route answers to a frame text from the fuzzed connection. */
export type Expected =
  | { kind: 'silent' }
  | { kind: 'answer'; type: 'sent' | 'acked' | 'unacked' | 'history' | 'read' | 'conversations' | 'presence' | 'pushRegistered' | 'pushUnregistered' }
  /** `subscribed`, then (for each `ok` conversation with an `afterSeq`) one `unacked` page, in that order. */
  | { kind: 'subscribed'; conversations: ConversationExpectation[]; resumes: { conversationId: string; afterSeq: number }[] }
  | { kind: 'unsubscribed'; conversationIds: string[] }
  | { kind: 'pong' }
  | { kind: 'error'; codes: readonly string[] }
  /** A message right at the 128 KB limit once encoded: either is contract. */
  | { kind: 'sent-or-too-large' };

/** How many frames answer a frame with this expectation. */
export function answerCount(expected: Expected): number {
  if (expected.kind === 'silent') return 0;
  if (expected.kind === 'subscribed') return 1 + expected.resumes.length;
  return 1;
}

/** What the route does to the connection's subscriptions, when the answer is by contract. */
export function applyExpected(session: Session, expected: Expected): void {
  if (expected.kind === 'subscribed') {
    for (const c of expected.conversations) if (c.status === 'ok') session.subscribed.add(c.conversationId);
  }
  if (expected.kind === 'unsubscribed') for (const c of expected.conversationIds) session.subscribed.delete(c);
}

/** Size of the `message` frame a body would be delivered in (widest seq, uuid, epoch ms). */
function messageFrameBytes(conversationId: string, senderId: string, clientMessageId: string, body: string): number {
  return Buffer.byteLength(
    JSON.stringify({
      type: 'message',
      conversationId,
      messageId: '00000000-0000-0000-0000-000000000000',
      seq: Number.MAX_SAFE_INTEGER,
      senderId,
      clientMessageId,
      body,
      sentAt: 1_800_000_000_000,
    }),
    'utf8',
  );
}

const hasOwn = (value: unknown, key: string): boolean =>
  typeof value === 'object' && value !== null && Object.prototype.hasOwnProperty.call(value, key);

export function expectedAnswer(route: Route, text: string, session: Session): Expected {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { kind: 'error', codes: ['bad_request'] };
  }
  if (route === '$default') return { kind: 'error', codes: ['bad_request'] };
  const parsed = clientFrameSchemas[route].safeParse(raw);
  if (!parsed.success) return { kind: 'error', codes: ['bad_request'] };
  const frame = parsed.data;
  switch (frame.action) {
    case 'subscribe': {
      const added = frame.conversationIds.filter((c) => !session.subscribed.has(c));
      if (session.subscribed.size + added.length > session.maxSubscriptions) return { kind: 'error', codes: ['bad_request'] };
      const conversations = frame.conversationIds.map((conversationId): ConversationExpectation => ({
        conversationId,
        status: isMember(session, conversationId) ? 'ok' : 'forbidden',
      }));
      // The frame's own keys (a key such as `constructor` or `__proto__` is a conversation id like any other).
      const afterSeq: unknown = (raw as Frame).afterSeq;
      const resumes = conversations
        .filter((c) => c.status === 'ok' && hasOwn(afterSeq, c.conversationId))
        .map((c) => ({ conversationId: c.conversationId, afterSeq: Number((afterSeq as Frame)[c.conversationId]) }));
      return { kind: 'subscribed', conversations, resumes };
    }
    case 'unsubscribe':
      return { kind: 'unsubscribed', conversationIds: frame.conversationIds };
    case 'ping':
      return { kind: 'pong' };
    case 'registerPush': {
      // `npm start`'s settings: the default push services and loopback; no APNs or FCM platform.
      const allowed = webPushEndpointSchema({ webAllowedHosts: DEFAULT_PUSH_WEB_HOSTS.split(','), allowLoopback: true });
      const ok = frame.webPush !== undefined && allowed.safeParse(frame.webPush.endpoint).success;
      return ok ? { kind: 'answer', type: 'pushRegistered' } : { kind: 'error', codes: ['bad_request'] };
    }
    case 'unregisterPush':
      return { kind: 'answer', type: 'pushUnregistered' };
    case 'getConversations':
      // About the user, not a conversation: never forbidden. A cursor the server did not make is refused.
      return frame.cursor === undefined || isServersCursor(frame.cursor) ? { kind: 'answer', type: 'conversations' } : { kind: 'error', codes: ['bad_request'] };
    default:
      break;
  }
  if (!session.subscribed.has(frame.conversationId) || !isMember(session, frame.conversationId)) return { kind: 'error', codes: ['forbidden'] };
  switch (frame.action) {
    case 'typing':
      return frame.userId !== undefined && frame.userId !== session.userId ? { kind: 'error', codes: ['forbidden'] } : { kind: 'silent' };
    case 'sendMessage': {
      const bytes = messageFrameBytes(frame.conversationId, session.userId, frame.clientMessageId, frame.body);
      if (bytes > MAX_MESSAGE_BYTES) return { kind: 'error', codes: ['payload_too_large'] };
      if (bytes > MAX_MESSAGE_BYTES - 4096) return { kind: 'sent-or-too-large' };
      return { kind: 'answer', type: 'sent' };
    }
    case 'ack':
      return { kind: 'answer', type: 'acked' };
    case 'getUnacked':
      return { kind: 'answer', type: 'unacked' };
    case 'getHistory':
      return { kind: 'answer', type: 'history' };
    case 'editMessage':
    case 'deleteMessage':
      // The fuzzed ids name no stored message (the fuzz never learns the ids of what it sent).
      return { kind: 'error', codes: ['not_found'] };
    case 'markRead':
      return { kind: 'answer', type: 'read' };
    case 'getPresence':
      return { kind: 'answer', type: 'presence' };
  }
}

/** A cursor the server makes: the tagged base64url of a conversation id, and nothing else decodes to one. */
function isServersCursor(cursor: string): boolean {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const conversationId = text.startsWith('c:') ? text.slice(2) : '';
  return /^[A-Za-z0-9_-]{1,128}$/.test(conversationId) && conversationsCursor(conversationId) === cursor;
}

// ---- checking answers ------------------------------------------------------------------------------------

/**
 * Problems with the frames that answered `sentText` (a route's body and what it posted to the connection, in
 * arrival order); empty when they are by contract. `sent` and, on resume, `subscribed` and its `unacked` pages
 * are posted through the Management API, so the route's body is then empty: the caller collects those frames.
 */
export function answerProblems(expected: Expected, answers: readonly string[], sentText: string): string[] {
  const count = answerCount(expected);
  if (answers.length !== count) {
    return [`${answers.length} answer frames, expected ${count} (${JSON.stringify(expected)}): ${answers.map((a) => a.slice(0, 200)).join(' | ')}`];
  }
  if (count === 0) return [];
  const frames: Frame[] = [];
  for (const text of answers) {
    try {
      frames.push(parseFrame(text));
    } catch (error) {
      return [`answer is not a JSON object: ${String(error)}: ${text.slice(0, 200)}`];
    }
  }
  const [frame] = frames;
  if (frame === undefined) return ['no answer'];
  const sentId = requestIdCase(sentText);
  const problems = requestIdProblems(frame, sentId);
  if (frame.type === 'error') {
    problems.push(...errorFrameProblems(frame, sentText));
    const allowed = expected.kind === 'error' ? expected.codes : expected.kind === 'sent-or-too-large' ? ['payload_too_large'] : [];
    if (!allowed.includes(String(frame.code))) problems.push(`error ${String(frame.code)} (${String(frame.message)}), expected ${JSON.stringify(expected)}`);
    if (frames.length > 1) problems.push('more frames after an error');
    return problems;
  }
  const type =
    expected.kind === 'answer' ? expected.type
    : expected.kind === 'sent-or-too-large' ? 'sent'
    : expected.kind === 'subscribed' || expected.kind === 'unsubscribed' || expected.kind === 'pong' ? expected.kind
    : undefined;
  if (frame.type !== type) return [...problems, `answered ${String(frame.type)}, expected ${JSON.stringify(expected)}`];
  problems.push(...normalAnswerProblems(frame, sentText, expected));
  if (expected.kind === 'subscribed') {
    expected.resumes.forEach((resume, i) => {
      const page = frames[i + 1] ?? {};
      const at = `resume page ${i + 1} (${resume.conversationId})`;
      if (page.type !== 'unacked') {
        problems.push(`${at} is ${JSON.stringify(page).slice(0, 300)}, expected unacked`);
        return;
      }
      if (page.conversationId !== resume.conversationId) problems.push(`${at} is of ${String(page.conversationId)}`);
      problems.push(...pageProblems(page, resume.afterSeq).map((p) => `${at}: ${p}`));
      problems.push(...requestIdProblems(page, sentId).map((p) => `${at}: ${p}`));
    });
  }
  return problems;
}

const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  sent: ['type', 'conversationId', 'clientMessageId', 'messageId', 'seq', 'sentAt', 'duplicate', 'requestId'],
  subscribed: ['type', 'conversations', 'requestId'],
  unsubscribed: ['type', 'conversations', 'requestId'],
  pong: ['type', 'at', 'requestId'],
  read: ['type', 'conversationId', 'userId', 'seq', 'at', 'requestId'],
  conversations: ['type', 'conversations', 'cursor', 'requestId'],
  presence: ['type', 'conversationId', 'online', 'occupancy', 'requestId'],
};

/** Shape checks of the normal answers against the frame that asked. */
function normalAnswerProblems(frame: Frame, sentText: string, expected: Expected): string[] {
  const problems: string[] = [];
  const type = String(frame.type);
  for (const key of Object.keys(frame)) {
    if (KNOWN_KEYS[type] !== undefined && !KNOWN_KEYS[type].includes(key)) problems.push(`unexpected key ${key} in ${type}`);
  }
  if (type === 'pong') {
    if (!Number.isSafeInteger(frame.at) || Math.abs(Number(frame.at) - Date.now()) > 60_000) problems.push(`pong at ${String(frame.at)} is not the server time`);
    return problems;
  }
  const request = JSON.parse(sentText) as Frame;
  if (expected.kind === 'subscribed' || expected.kind === 'unsubscribed') {
    const listed = Array.isArray(frame.conversations) ? (frame.conversations as unknown[]) : undefined;
    if (listed === undefined) return [...problems, 'conversations is not an array'];
    const wanted = expected.kind === 'subscribed' ? expected.conversations : expected.conversationIds.map((conversationId) => ({ conversationId, status: undefined }));
    if (listed.length !== wanted.length) problems.push(`${listed.length} conversations listed, the frame named ${wanted.length}`);
    listed.forEach((entry, i) => {
      const c = (typeof entry === 'object' && entry !== null ? entry : {}) as Frame;
      const want = wanted[i];
      const at = `conversations[${i}]`;
      for (const key of Object.keys(c)) if (!['conversationId', 'status', 'lastSeq'].includes(key)) problems.push(`${at}: unexpected key ${key}`);
      if (c.conversationId !== want?.conversationId) problems.push(`${at} is ${JSON.stringify(c.conversationId)}, expected ${JSON.stringify(want?.conversationId)}`);
      if (c.status !== 'ok' && c.status !== 'forbidden') problems.push(`${at}: status ${JSON.stringify(c.status)}`);
      if (want?.status !== undefined && c.status !== want.status) problems.push(`${at} (${String(c.conversationId)}) is ${String(c.status)}, expected ${want.status}`);
      if (expected.kind === 'subscribed') {
        if (c.status === 'ok' && (!Number.isSafeInteger(c.lastSeq) || Number(c.lastSeq) < 0)) problems.push(`${at}: ok without a lastSeq`);
        if (c.status === 'forbidden' && c.lastSeq !== undefined) problems.push(`${at}: forbidden with a lastSeq`);
      }
    });
    return problems;
  }
  if (frame.conversationId !== request.conversationId) problems.push('wrong conversationId');
  if (frame.type === 'sent') {
    if (frame.clientMessageId !== request.clientMessageId) problems.push('clientMessageId differs');
    if (typeof frame.messageId !== 'string' || frame.messageId === '') problems.push('no messageId');
    if (!Number.isSafeInteger(frame.seq) || Number(frame.seq) < 1) problems.push(`bad seq ${String(frame.seq)}`);
    if (typeof frame.sentAt !== 'number') problems.push('no sentAt');
    if (typeof frame.duplicate !== 'boolean') problems.push('no duplicate flag');
  }
  if (frame.type === 'acked' && JSON.stringify(frame.messageIds) !== JSON.stringify(request.messageIds ?? [])) problems.push('acked ids differ');
  if (frame.type === 'acked' && frame.upToSeq !== request.upToSeq) problems.push('acked upToSeq differs');
  if (frame.type === 'unacked' || frame.type === 'history') problems.push(...pageProblems(frame, undefined));
  if (frame.type === 'presence') {
    const listed = Array.isArray(frame.online) && (frame.online as unknown[]).every((u) => typeof u === 'string');
    if (!listed && !Number.isSafeInteger(frame.occupancy)) problems.push('presence answer has neither online nor occupancy');
  }
  if (frame.type === 'read') {
    // The position now stored: the frame's seq (clamped to the log's end), or a higher one stored before.
    if (!Number.isSafeInteger(frame.seq) || Number(frame.seq) < 0) problems.push(`read seq ${String(frame.seq)} is not a seq`);
    if (typeof frame.userId !== 'string' || typeof frame.at !== 'number') problems.push('read without userId or at');
  }
  if (frame.type === 'conversations') problems.push(...conversationsProblems(frame, request));
  return problems;
}

/** A `conversations` page: at most `limit` entries in conversationId order, each consistent in itself. */
function conversationsProblems(frame: Frame, request: Frame): string[] {
  if (!Array.isArray(frame.conversations)) return ['conversations is not an array'];
  const problems: string[] = [];
  const entries = (frame.conversations as unknown[]).map((entry) => (typeof entry === 'object' && entry !== null ? (entry as Frame) : {}));
  const limit = typeof request.limit === 'number' ? request.limit : 50;
  if (entries.length > limit) problems.push(`${entries.length} conversations, limit ${limit}`);
  if (frame.cursor !== undefined && (typeof frame.cursor !== 'string' || !isServersCursor(frame.cursor))) problems.push('cursor is not one the server makes');
  const ids = entries.map((e) => String(e.conversationId));
  if (ids.some((id, i) => i > 0 && id <= (ids[i - 1] ?? ''))) problems.push('conversations are not in conversationId order');
  entries.forEach((e, i) => {
    const at = `conversations[${i}]`;
    for (const key of Object.keys(e)) if (!['conversationId', 'lastSeq', 'readSeq', 'unreadCount', 'lastMessageAt'].includes(key)) problems.push(`${at}: unexpected key ${key}`);
    const [lastSeq, readSeq, unread] = [Number(e.lastSeq), Number(e.readSeq), Number(e.unreadCount)];
    if (![e.lastSeq, e.readSeq, e.unreadCount].every((n) => Number.isSafeInteger(n) && Number(n) >= 0)) problems.push(`${at}: counts are not integers ≥ 0`);
    else if (readSeq > lastSeq || unread > lastSeq - readSeq) problems.push(`${at}: readSeq or unreadCount beyond lastSeq`);
    if (e.lastMessageAt !== null && typeof e.lastMessageAt !== 'number') problems.push(`${at}: lastMessageAt is neither a number nor null`);
  });
  return problems;
}

/** An `unacked` / `history` page: messages in ascending seq (after `afterSeq`, when given) and `hasMore`. */
function pageProblems(page: Frame, afterSeq: number | undefined): string[] {
  const problems: string[] = [];
  if (typeof page.hasMore !== 'boolean') problems.push('hasMore is not a boolean');
  if (!Array.isArray(page.messages)) return [...problems, 'messages is not an array'];
  const seqs = (page.messages as unknown[]).map((m) => (typeof m === 'object' && m !== null ? (m as Frame).seq : undefined));
  if (!seqs.every((seq) => Number.isSafeInteger(seq))) problems.push('a message without a seq');
  else {
    const numbers = seqs as number[];
    if (numbers.some((seq, i) => i > 0 && seq <= (numbers[i - 1] ?? 0))) problems.push('messages are not in ascending seq');
    if (afterSeq !== undefined && numbers.some((seq) => seq <= afterSeq)) problems.push(`a message at or before afterSeq ${afterSeq}`);
  }
  return problems;
}

/** A frame a passive member may receive: a `message`, a `typing`, a `read` or a `presence` of its conversation. */
export function pushedFrameProblems(frame: Frame, conversationId: string): string[] {
  if (frame.conversationId !== conversationId) return [`pushed frame of another conversation: ${String(frame.conversationId)}`];
  if (frame.type === 'presence') {
    const change = typeof frame.userId === 'string' && (frame.state === 'online' || frame.state === 'offline') && typeof frame.at === 'number';
    return change || Number.isSafeInteger(frame.occupancy) ? [] : ['malformed presence frame'];
  }
  if (frame.type === 'typing') {
    const expiresAt = frame.state === 'start' ? Number(frame.at) + 1 : Number(frame.at);
    return typeof frame.userId === 'string' &&
      (frame.state === 'start' || frame.state === 'stop') &&
      typeof frame.at === 'number' &&
      typeof frame.expiresAt === 'number' &&
      frame.expiresAt >= expiresAt
      ? []
      : ['malformed typing frame'];
  }
  if (frame.type === 'message') {
    const ok =
      typeof frame.messageId === 'string' &&
      Number.isSafeInteger(frame.seq) &&
      typeof frame.senderId === 'string' &&
      typeof frame.clientMessageId === 'string' &&
      typeof frame.body === 'string' &&
      typeof frame.sentAt === 'number';
    return ok ? [] : ['malformed message frame'];
  }
  if (frame.type === 'read') {
    return typeof frame.userId === 'string' && Number.isSafeInteger(frame.seq) && typeof frame.at === 'number' && frame.requestId === undefined
      ? []
      : ['malformed read frame'];
  }
  return [`unexpected pushed frame type ${String(frame.type)}`];
}
