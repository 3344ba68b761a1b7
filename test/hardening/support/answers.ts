import { selectRoute } from '../../../local/gateway/routing.js';
import { clientFrameSchemas, MAX_MESSAGE_BYTES } from '../../../lambdas/protocol.js';
import { stringLeaves, type Binding } from './fuzz-values.js';

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
  'clientMessageId',
  'messageIds',
  'userId',
  'state',
  'limit',
  'afterSeq',
  'body',
  'typing',
  'sendMessage',
  'getUnacked',
  'getHistory',
  'upToSeq',
  'beforeSeq',
  'ack',
  'start',
  'stop',
  'expected',
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

export type Route = 'typing' | 'sendMessage' | 'ack' | 'getUnacked' | 'getHistory' | '$default';

/** What the contract says a route answers to a frame text from the bound connection. */
export type Expected =
  | { kind: 'silent' }
  | { kind: 'answer'; type: 'sent' | 'acked' | 'unacked' | 'history' }
  | { kind: 'error'; codes: readonly string[] }
  /** A message right at the 128 KB limit once encoded: either is contract. */
  | { kind: 'sent-or-too-large' };

/** Size of the `message` frame a body would be delivered in (widest seq, uuid, epoch ms). */
function messageFrameBytes(binding: Binding, clientMessageId: string, body: string): number {
  return Buffer.byteLength(
    JSON.stringify({
      type: 'message',
      conversationId: binding.conversationId,
      messageId: '00000000-0000-0000-0000-000000000000',
      seq: Number.MAX_SAFE_INTEGER,
      senderId: binding.userId,
      clientMessageId,
      body,
      sentAt: 1_800_000_000_000,
    }),
    'utf8',
  );
}

export function expectedAnswer(route: Route, text: string, binding: Binding): Expected {
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
  if (frame.conversationId !== binding.conversationId) return { kind: 'error', codes: ['forbidden'] };
  switch (frame.action) {
    case 'typing':
      return frame.userId !== undefined && frame.userId !== binding.userId ? { kind: 'error', codes: ['forbidden'] } : { kind: 'silent' };
    case 'sendMessage': {
      const bytes = messageFrameBytes(binding, frame.clientMessageId, frame.body);
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
  }
}

/** The route API Gateway (and the local emulator) picks for a frame text. */
export function routeOf(text: string): Route {
  const table = { typing: {}, sendMessage: {}, ack: {}, getUnacked: {}, getHistory: {}, $default: {} };
  const key = selectRoute(
    Object.fromEntries(Object.keys(table).map((k) => [k, { handler: () => undefined }])),
    text,
    ['action'],
  );
  return key === 'typing' || key === 'sendMessage' || key === 'ack' || key === 'getUnacked' || key === 'getHistory' ? key : '$default';
}

/** Problems with an answer given the expectation; empty when the answer is by contract. */
export function answerProblems(expected: Expected, body: string | undefined, sentText: string, binding: Binding): string[] {
  if (expected.kind === 'silent') return body === undefined ? [] : [`expected no answer, got ${body.slice(0, 200)}`];
  // `sent` goes to the sender's connection through the Management API (before the fan-out); the route then
  // answers nothing. Whoever calls the route checks what was posted.
  const sentExpected = (expected.kind === 'answer' && expected.type === 'sent') || expected.kind === 'sent-or-too-large';
  if (body === undefined) return sentExpected ? [] : ['no answer'];
  let frame: Frame;
  try {
    frame = parseFrame(body);
  } catch (error) {
    return [`answer is not a JSON object: ${String(error)}`];
  }
  if (frame.type === 'error') {
    const problems = errorFrameProblems(frame, sentText);
    const allowed = expected.kind === 'error' ? expected.codes : expected.kind === 'sent-or-too-large' ? ['payload_too_large'] : [];
    if (!allowed.includes(String(frame.code))) problems.push(`error ${String(frame.code)} (${String(frame.message)}), expected ${JSON.stringify(expected)}`);
    return problems;
  }
  const type = expected.kind === 'answer' ? expected.type : expected.kind === 'sent-or-too-large' ? 'sent' : undefined;
  if (frame.type !== type) return [`answered ${String(frame.type)}, expected ${JSON.stringify(expected)}`];
  return normalAnswerProblems(frame, sentText, binding);
}

/** Shape checks of `sent`, `acked` and `unacked` against the frame that asked. */
function normalAnswerProblems(frame: Frame, sentText: string, binding: Binding): string[] {
  const problems: string[] = [];
  const request = JSON.parse(sentText) as Frame;
  if (frame.conversationId !== binding.conversationId) problems.push('wrong conversationId');
  if (frame.type === 'sent') {
    if (frame.clientMessageId !== request.clientMessageId) problems.push('clientMessageId differs');
    if (typeof frame.messageId !== 'string' || frame.messageId === '') problems.push('no messageId');
    if (!Number.isSafeInteger(frame.seq) || Number(frame.seq) < 1) problems.push(`bad seq ${String(frame.seq)}`);
    if (typeof frame.sentAt !== 'number') problems.push('no sentAt');
    if (typeof frame.duplicate !== 'boolean') problems.push('no duplicate flag');
  }
  if (frame.type === 'acked' && JSON.stringify(frame.messageIds) !== JSON.stringify(request.messageIds ?? [])) problems.push('acked ids differ');
  if (frame.type === 'acked' && frame.upToSeq !== request.upToSeq) problems.push('acked upToSeq differs');
  if (frame.type === 'unacked' || frame.type === 'history') {
    if (!Array.isArray(frame.messages)) problems.push('messages is not an array');
    if (typeof frame.hasMore !== 'boolean') problems.push('hasMore is not a boolean');
  }
  return problems;
}

/** A frame a passive member may receive: a `message` or a `typing` of its conversation. */
export function pushedFrameProblems(frame: Frame, conversationId: string): string[] {
  if (frame.conversationId !== conversationId) return [`pushed frame of another conversation: ${String(frame.conversationId)}`];
  if (frame.type === 'typing') {
    return typeof frame.userId === 'string' && (frame.state === 'start' || frame.state === 'stop') && typeof frame.at === 'number'
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
  return [`unexpected pushed frame type ${String(frame.type)}`];
}
