import fc from 'fast-check';

/**
 * Hostile input for the fuzz suite: JSON values that JSON.stringify cannot write (1e400, -0, 2^53+1 spelled
 * exactly, `__proto__` as a plain key, duplicate keys), unicode edge cases, huge and deeply nested frames, and
 * valid frames with one field mutated.
 */

/** A JSON number literal written as is. */
export class RawNumber {
  constructor(readonly text: string) {}
}

/** A JSON object as an entry list, so `__proto__` stays a plain key and a key may repeat. */
export class Entries {
  constructor(readonly entries: [string, FuzzValue][]) {}
}

export type FuzzValue = null | boolean | number | string | RawNumber | Entries | FuzzValue[];

/** How strings are written: `escaped` as JSON.stringify does, `raw` with every non-ASCII (and lone surrogate) as is. */
export type StringStyle = 'escaped' | 'raw';

function encodeString(text: string, style: StringStyle): string {
  if (style === 'escaped') return JSON.stringify(text);
  // Only what JSON requires is escaped; lone surrogates and other code points go into the text unchanged.
  let out = '"';
  for (const c of text) {
    const code = c.charCodeAt(0);
    out += c === '"' || c === '\\' || code < 0x20 ? `\\u${code.toString(16).padStart(4, '0')}` : c;
  }
  return `${out}"`;
}

export function encode(value: FuzzValue, style: StringStyle = 'escaped'): string {
  if (value instanceof RawNumber) return value.text;
  if (value instanceof Entries) {
    return `{${value.entries.map(([key, inner]) => `${encodeString(key, style)}:${encode(inner, style)}`).join(',')}}`;
  }
  if (Array.isArray(value)) return `[${value.map((inner) => encode(inner, style)).join(',')}]`;
  if (typeof value === 'string') return encodeString(value, style);
  if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
  return JSON.stringify(value);
}

/** Every string value and key in a JSON text (for "the error never echoes the frame" checks). */
export function stringLeaves(text: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [text];
  }
  const out: string[] = [];
  const walk = (value: unknown, depth: number): void => {
    if (depth > 200) return;
    if (typeof value === 'string') out.push(value);
    else if (Array.isArray(value)) for (const inner of value) walk(inner, depth + 1);
    else if (typeof value === 'object' && value !== null) {
      for (const [key, inner] of Object.entries(value)) {
        out.push(key);
        walk(inner, depth + 1);
      }
    }
  };
  walk(parsed, 0);
  return out;
}

// ---- strings ---------------------------------------------------------------------------------------------

export const SPECIAL_STRINGS: readonly string[] = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000',
  '\uD800',
  '\uDFFF',
  'x\uD83D',
  '\uDE00y',
  '\uDBFF\uDBFF',
  '\u202Eevil-rtl-override',
  '\u200Fright-to-left-mark',
  'שלום עולם',
  'مرحبا بالعالم',
  '\u200B',
  '\u200D\u200D',
  '\uFEFF',
  '👩‍👩‍👧‍👦',
  'e\u0301\u0301\u0301',
  '\u0085\u2028\u2029',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '{"action":"sendMessage"}',
  '${process.env.APP_SECRET_JSON}',
  '%s%s%s%n',
  '../../../../etc/passwd',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '\\',
  '"',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-0',
  '1e400',
  ' typing',
  'typing ',
  'TYPING',
  'sendmessage',
  '$default',
  '$connect',
  '$disconnect',
  'typing\u0000',
];

/** One UTF-16 code unit that is a lone surrogate half. */
export const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));

/** Mixed code units: ASCII, any code point, lone surrogates, zero-width and direction marks, NUL. */
export const edgeUnit = fc.oneof(
  { arbitrary: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }), weight: 4 },
  { arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), weight: 3 },
  { arbitrary: loneSurrogate, weight: 2 },
  { arbitrary: fc.constantFrom('\u0000', '\u200B', '\u200D', '\u202E', '\u200F', '\uFEFF', '\u0301', '"', '\\'), weight: 2 },
);

export const edgeString = (maxLength = 40) => fc.string({ unit: edgeUnit, maxLength });

/** Strings far larger than anything the protocol accepts, or right at its limits (none over `maxBytes`). */
export function hugeString(maxBytes: number): fc.Arbitrary<string> {
  const repeat = (unit: string, bytesPerUnit: number) =>
    fc.integer({ min: 1, max: Math.max(1, Math.floor(maxBytes / bytesPerUnit)) }).map((n) => unit.repeat(n));
  // Exact sizes around the 32 KiB body limit, in 1-, 2- and 4-byte characters (only those that fit).
  const atLimit = [
    ...[32 * 1024 - 1, 32 * 1024, 32 * 1024 + 1].map((n) => ['x', n] as const),
    ...[16 * 1024, 16 * 1024 + 1].map((n) => ['é', n] as const),
    ...[8 * 1024, 8 * 1024 + 1].map((n) => ['😀', n] as const),
  ].filter(([unit, n]) => Buffer.byteLength(unit) * n <= maxBytes);
  const choices = [repeat('x', 1), repeat('é', 2), repeat('😀', 4), repeat('\u0001', 6), repeat('\uD800', 6)];
  if (atLimit.length > 0) choices.push(fc.constantFrom(...atLimit).map(([unit, n]) => unit.repeat(n)));
  return fc.oneof(...choices);
}

export function nastyString(maxBytes: number): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...SPECIAL_STRINGS), weight: 4 },
    { arbitrary: edgeString(), weight: 4 },
    { arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }), weight: 1 },
    { arbitrary: hugeString(maxBytes), weight: 1 },
  );
}

// ---- numbers ---------------------------------------------------------------------------------------------

export const nastyNumber: fc.Arbitrary<FuzzValue> = fc.oneof(
  fc.constantFrom<FuzzValue>(
    new RawNumber('1e400'),
    new RawNumber('-1e400'),
    new RawNumber('-0'),
    new RawNumber('-0.0'),
    new RawNumber('9007199254740993'),
    new RawNumber('-9007199254740993'),
    new RawNumber('123456789012345678901234567890'),
    new RawNumber('1E2'),
    new RawNumber('1.0'),
    new RawNumber('5e-324'),
    new RawNumber('0.1e1'),
    0,
    1,
    -1,
    0.5,
    50,
    100,
    101,
    2 ** 31,
    2 ** 32,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 1,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

// ---- structures ------------------------------------------------------------------------------------------

const keyArb = fc.oneof(
  { arbitrary: fc.constantFrom('__proto__', 'constructor', 'prototype', 'action', 'conversationId', 'body', 'userId', 'type'), weight: 2 },
  { arbitrary: edgeString(12), weight: 3 },
);

/** Any JSON value, including raw numbers and hostile keys, to a bounded depth. */
export function fuzzValue(maxBytes: number, maxDepth = 4): fc.Arbitrary<FuzzValue> {
  const { value } = fc.letrec<{ value: FuzzValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth },
      { arbitrary: fc.constant(null), weight: 1 },
      { arbitrary: fc.boolean(), weight: 1 },
      { arbitrary: nastyNumber, weight: 2 },
      { arbitrary: nastyString(maxBytes), weight: 3 },
      { arbitrary: fc.array(tie('value'), { maxLength: 4 }), weight: 1 },
      {
        arbitrary: fc.array(fc.tuple(keyArb, tie('value')), { maxLength: 4 }).map((entries) => new Entries(entries)),
        weight: 1,
      },
    ),
  }));
  return value;
}

/** Deeply nested arrays/objects, alone or inside an otherwise valid frame. */
export function deepNesting(conversationId: string, maxDepth: number): fc.Arbitrary<string> {
  return fc
    .record({
      depth: fc.integer({ min: 20, max: maxDepth }),
      shape: fc.constantFrom('array', 'object', 'body', 'conversationId', 'messageIds', 'conversationIds', 'afterSeq', 'requestId', 'extra'),
    })
    .map(({ depth, shape }) => {
      const arrays = '['.repeat(depth) + ']'.repeat(depth);
      const objects = '{"a":'.repeat(depth) + 'null' + '}'.repeat(depth);
      const conv = JSON.stringify(conversationId);
      switch (shape) {
        case 'array':
          return arrays;
        case 'object':
          return objects;
        case 'body':
          return `{"action":"sendMessage","conversationId":${conv},"clientMessageId":"deep","body":${arrays}}`;
        case 'conversationId':
          return `{"action":"getUnacked","conversationId":${objects}}`;
        case 'messageIds':
          return `{"action":"ack","conversationId":${conv},"messageIds":${arrays}}`;
        case 'conversationIds':
          return `{"action":"subscribe","conversationIds":${arrays}}`;
        case 'afterSeq':
          return `{"action":"subscribe","conversationIds":[${conv}],"afterSeq":${objects}}`;
        case 'requestId':
          return `{"action":"ping","requestId":${objects}}`;
        default:
          return `{"action":"typing","conversationId":${conv},"x":${objects}}`;
      }
    });
}

// ---- valid frames with one field mutated -----------------------------------------------------------------

export const ACTIONS = [
  'subscribe',
  'unsubscribe',
  'ping',
  'typing',
  'sendMessage',
  'editMessage',
  'deleteMessage',
  'ack',
  'getUnacked',
  'getHistory',
  'markRead',
  'getConversations',
  'getPresence',
  'registerPush',
  'unregisterPush',
] as const;
export type Action = (typeof ACTIONS)[number];

export interface Binding {
  /** The conversation the connection subscribed to at $connect: the one the generated v1 frames name (unless spoofed). */
  conversationId: string;
  userId: string;
  /** Other conversations the user is a member of: `subscribe` answers `ok` for them (and these only). */
  alsoMemberOf: readonly string[];
}

// ---- requestId -------------------------------------------------------------------------------------------

const REQUEST_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** True when a frame's `requestId` value is one the protocol allows (1–64 of A-Z a-z 0-9 _ -). */
export function isRequestId(value: unknown): value is string {
  return typeof value === 'string' && REQUEST_ID.test(value);
}

/** A `requestId` the protocol allows, edge lengths included. */
export const validRequestId: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.stringMatching(REQUEST_ID), weight: 4 },
  { arbitrary: fc.constantFrom('r', '-', '_', '0', 'req-1', 'A'.repeat(64), 'conversationIds', 'subscribe'), weight: 1 },
);

/** Characters outside the requestId alphabet; each makes an otherwise valid id malformed. */
const NOT_IN_REQUEST_ID = [' ', '.', '/', '+', '=', '#', "'", '"', '\\', '\n', '\u0000', 'é', '\u202E', '\uD800', '😀', '$', '{', '}'];

/** A `requestId` the protocol does not allow: wrong length, a foreign character, or not a string at all. */
export const invalidRequestId: fc.Arbitrary<FuzzValue> = fc.oneof(
  { arbitrary: fc.constantFrom<FuzzValue>('', 'A'.repeat(65), 'x'.repeat(200)), weight: 2 },
  {
    arbitrary: fc
      .tuple(fc.stringMatching(/^[A-Za-z0-9_-]{0,63}$/), fc.constantFrom(...NOT_IN_REQUEST_ID), fc.nat())
      .map(([id, bad, at]) => id.slice(0, at % (id.length + 1)) + bad + id.slice(at % (id.length + 1))),
    weight: 4,
  },
  { arbitrary: nastyString(300), weight: 2 },
  {
    arbitrary: fc.constantFrom<FuzzValue>(
      null,
      true,
      false,
      0,
      1,
      -1,
      1.5,
      new RawNumber('1e400'),
      [],
      ['r-1'],
      new Entries([]),
      new Entries([['requestId', 'r-1']]),
      new Entries([['toString', 'x']]),
      new Entries([['valueOf', 1]]),
    ),
    weight: 2,
  },
);

/** How a frame carries `requestId`: not at all, a valid one, a malformed one, or twice (JSON.parse keeps the last). */
const requestIdEntries: fc.Arbitrary<[string, FuzzValue][]> = fc.oneof(
  { arbitrary: fc.constant<[string, FuzzValue][]>([]), weight: 12 },
  { arbitrary: validRequestId.map((id): [string, FuzzValue][] => [['requestId', id]]), weight: 8 },
  { arbitrary: invalidRequestId.map((id): [string, FuzzValue][] => [['requestId', id]]), weight: 3 },
  {
    arbitrary: fc
      .tuple(fc.oneof(validRequestId, invalidRequestId), fc.oneof(validRequestId, invalidRequestId))
      .map(([a, b]): [string, FuzzValue][] => [['requestId', a], ['requestId', b]]),
    weight: 2,
  },
);

/** `entries` with `requestId` entries (if any) inserted at one place. */
export function withRequestId(entries: fc.Arbitrary<[string, FuzzValue][]>): fc.Arbitrary<[string, FuzzValue][]> {
  return fc.tuple(entries, requestIdEntries, fc.nat()).map(([frame, ids, at]) => {
    const i = at % (frame.length + 1);
    return [...frame.slice(0, i), ...ids, ...frame.slice(i)];
  });
}

/** Conversation ids no member has: `subscribe` answers them `forbidden`. */
function strangers(binding: Binding): string[] {
  const c = binding.conversationId;
  return ['someone-elses', `${c}x`, c.toUpperCase(), '__proto__', 'hasOwnProperty', 'valueOf', 'x'.repeat(128)].filter(
    (id) => id !== c && !binding.alsoMemberOf.includes(id),
  );
}

/**
 * A valid `conversationIds` list (1–100 distinct ids): a few of the user's and others' conversations (the bound
 * one with probability `withBound`), or now and then close to 100 (around the per-connection cap).
 */
function conversationIdsArb(binding: Binding): (withBound: number) => fc.Arbitrary<string[]> {
  const known = fc.constantFrom(...binding.alsoMemberOf, ...strangers(binding));
  const shaped = fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/);
  const others = (maxLength: number) =>
    fc.uniqueArray(fc.oneof({ arbitrary: known, weight: 3 }, { arbitrary: shaped, weight: 1 }), { maxLength }).map((ids) => ids.filter((id) => id !== binding.conversationId));
  return (withBound) => {
    const few = fc
      .tuple(others(5), fc.noBias(fc.integer({ min: 0, max: 99 })), fc.nat())
      .map(([ids, draw, at]) => (draw < withBound * 100 ? [...ids.slice(0, at % (ids.length + 1)), binding.conversationId, ...ids.slice(at % (ids.length + 1))] : ids))
      .filter((ids) => ids.length > 0);
    const many = fc
      .tuple(fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), { minLength: 95, maxLength: 100 }), fc.noBias(fc.integer({ min: 0, max: 99 })))
      .map(([ids, draw]) => {
        const rest = ids.filter((id) => id !== binding.conversationId);
        return draw < withBound * 100 ? [binding.conversationId, ...rest.slice(0, 99)] : rest;
      });
    return fc.oneof({ arbitrary: few, weight: 12 }, { arbitrary: many, weight: 1 });
  };
}

const seqArb = fc.oneof({ arbitrary: fc.integer({ min: 0, max: 1000 }), weight: 4 }, { arbitrary: fc.constant(Number.MAX_SAFE_INTEGER), weight: 1 });

/** A valid `subscribe`: its conversations and, half the time, `afterSeq` for some of them (resume). */
function subscribeFrame(binding: Binding): fc.Arbitrary<{ ids: string[]; afterSeq: [string, FuzzValue][] | undefined }> {
  return conversationIdsArb(binding)(0.7).chain((ids) =>
    fc
      .option(
        fc.subarray(ids).chain((named) => fc.tuple(...named.map(() => seqArb)).map((seqs) => named.map((c, i): [string, FuzzValue] => [c, seqs[i] ?? 0]))),
        { freq: 2, nil: undefined },
      )
      .map((afterSeq) => ({ ids, afterSeq })),
  );
}

/** A valid `subscribe` whose `afterSeq` has one entry more: a key it does not list, a hostile key, or a value that is no seq. */
function afterSeqMutated(binding: Binding): fc.Arbitrary<[string, FuzzValue][]> {
  return subscribeFrame(binding).chain(({ ids, afterSeq }) =>
    fc
      .tuple(
        fc.oneof(fc.constantFrom(...ids), fc.constantFrom(...binding.alsoMemberOf, ...strangers(binding)), fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/), nastyString(300)),
        fc.oneof(seqArb, fuzzValue(1000, 2)),
        fc.nat(),
      )
      .map(([key, value, at]): [string, FuzzValue][] => {
        const entries = afterSeq ?? [];
        const i = at % (entries.length + 1);
        return [['action', 'subscribe'], ['conversationIds', ids], ['afterSeq', new Entries([...entries.slice(0, i), [key, value], ...entries.slice(i)])]];
      }),
  );
}

/** A valid frame of each action, as entries, for the bound connection. */
function validFrame(binding: Binding, maxBytes: number): fc.Arbitrary<[string, FuzzValue][]> {
  const conv: [string, FuzzValue] = ['conversationId', binding.conversationId];
  const bodies = [
    { arbitrary: fc.string({ maxLength: 60 }), weight: 4 },
    { arbitrary: edgeString(60), weight: 3 },
    { arbitrary: hugeString(Math.min(maxBytes, 32 * 1024)), weight: 1 },
  ];
  if (maxBytes >= 6 * 32 * 1024) {
    // Within the 32 KiB body limit but six times larger once JSON-escaped: around and over the 128 KB frame limit.
    bodies.push({ arbitrary: fc.integer({ min: 20_000, max: 32 * 1024 }).map((n) => '\u0001'.repeat(n)), weight: 2 });
  }
  const bodyArb = fc.oneof(...bodies);
  const conversationIds = conversationIdsArb(binding);
  return fc.oneof(
    subscribeFrame(binding).map(({ ids, afterSeq }) => {
      const entries: [string, FuzzValue][] = [['action', 'subscribe'], ['conversationIds', ids]];
      if (afterSeq !== undefined) entries.push(['afterSeq', new Entries(afterSeq)]);
      return entries;
    }),
    // Rarely the bound conversation: frames for it are `forbidden` until a `subscribe` names it again.
    conversationIds(0.15).map((ids): [string, FuzzValue][] => [['action', 'unsubscribe'], ['conversationIds', ids]]),
    fc.constant<[string, FuzzValue][]>([['action', 'ping']]),
    fc.constant<[string, FuzzValue][]>([['action', 'getPresence'], conv]),
    fc.constant<[string, FuzzValue][]>([['action', 'unregisterPush']]),
    fc
      .constantFrom('https://fcm.googleapis.com/fcm/send/fuzz', 'http://127.0.0.1:9/push/fuzz', 'https://evil.example/push')
      .map((endpoint): [string, FuzzValue][] => [
        ['action', 'registerPush'],
        ['webPush', new Entries([['endpoint', endpoint], ['keys', new Entries([['p256dh', 'B'.repeat(87)], ['auth', 'A'.repeat(22)]])]])],
      ]),
    fc
      .record({ userId: fc.option(fc.constant(binding.userId)), state: fc.option(fc.constantFrom('start', 'stop')) })
      .map(({ userId, state }) => {
        const entries: [string, FuzzValue][] = [['action', 'typing'], conv];
        if (userId !== null) entries.push(['userId', userId]);
        if (state !== null) entries.push(['state', state]);
        return entries;
      }),
    fc
      .record({ clientMessageId: fc.string({ unit: edgeUnit, minLength: 1, maxLength: 64 }), body: bodyArb })
      .map(({ clientMessageId, body }): [string, FuzzValue][] => [
        ['action', 'sendMessage'],
        conv,
        ['clientMessageId', clientMessageId],
        ['body', body],
      ]),
    fc
      .record({ messageId: fc.oneof(fc.uuid(), fc.string({ unit: edgeUnit, minLength: 1, maxLength: 128 })), body: bodyArb })
      .map(({ messageId, body }): [string, FuzzValue][] => [['action', 'editMessage'], conv, ['messageId', messageId], ['body', body]]),
    fc
      .oneof(fc.uuid(), fc.string({ unit: edgeUnit, minLength: 1, maxLength: 128 }))
      .map((messageId): [string, FuzzValue][] => [['action', 'deleteMessage'], conv, ['messageId', messageId]]),
    fc
      .array(fc.oneof(fc.uuid(), fc.string({ unit: edgeUnit, minLength: 1, maxLength: 128 })), { minLength: 1, maxLength: 5 })
      .map((ids): [string, FuzzValue][] => [['action', 'ack'], conv, ['messageIds', ids]]),
    fc.integer({ min: 0, max: 1000 }).map((upToSeq): [string, FuzzValue][] => [['action', 'ack'], conv, ['upToSeq', upToSeq]]),
    fc
      .record({
        limit: fc.option(fc.integer({ min: 1, max: 100 })),
        bound: fc.option(fc.tuple(fc.constantFrom('beforeSeq', 'afterSeq'), fc.integer({ min: 0, max: 1000 }))),
      })
      .map(({ limit, bound }) => {
        const entries: [string, FuzzValue][] = [['action', 'getHistory'], conv];
        if (limit !== null) entries.push(['limit', limit]);
        if (bound !== null) entries.push(bound);
        return entries;
      }),
    fc
      .record({ limit: fc.option(fc.integer({ min: 1, max: 100 })), afterSeq: fc.option(fc.integer({ min: 0, max: 1000 })) })
      .map(({ limit, afterSeq }) => {
        const entries: [string, FuzzValue][] = [['action', 'getUnacked'], conv];
        if (limit !== null) entries.push(['limit', limit]);
        if (afterSeq !== null) entries.push(['afterSeq', afterSeq]);
        return entries;
      }),
    seqArb.map((seq): [string, FuzzValue][] => [['action', 'markRead'], conv, ['seq', seq]]),
    fc
      .record({
        limit: fc.option(fc.integer({ min: 1, max: 100 })),
        // A cursor the server makes (after one of the user's conversations or any id), or one it never made.
        cursor: fc.option(
          fc.oneof(
            fc.constantFrom(binding.conversationId, ...binding.alsoMemberOf).map(conversationsCursor),
            fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/).map(conversationsCursor),
            fc.stringMatching(/^[A-Za-z0-9_-]{1,256}$/),
          ),
        ),
      })
      .map(({ limit, cursor }) => {
        const entries: [string, FuzzValue][] = [['action', 'getConversations']];
        if (limit !== null) entries.push(['limit', limit]);
        if (cursor !== null) entries.push(['cursor', cursor]);
        return entries;
      }),
  );
}

/** The `getConversations` cursor of the page after a conversation, as the protocol defines it (docs/protocol.md). */
export function conversationsCursor(conversationId: string): string {
  return Buffer.from(`c:${conversationId}`, 'utf8').toString('base64url');
}

type Mutation =
  | { op: 'none' }
  | { op: 'replace'; index: number; value: FuzzValue }
  | { op: 'delete'; index: number }
  | { op: 'add'; key: string; value: FuzzValue }
  | { op: 'duplicate'; index: number; value: FuzzValue };

function mutate(entries: [string, FuzzValue][], mutation: Mutation): [string, FuzzValue][] {
  const at = (index: number) => index % entries.length;
  switch (mutation.op) {
    case 'none':
      return entries;
    case 'replace':
      return entries.map(([key, value], i) => [key, i === at(mutation.index) ? mutation.value : value]);
    case 'delete':
      return entries.filter((_, i) => i !== at(mutation.index));
    case 'add':
      return [...entries, [mutation.key, mutation.value]];
    case 'duplicate': {
      const [key] = entries[at(mutation.index)] ?? ['action'];
      return [...entries, [key, mutation.value]];
    }
  }
}

export function mutatedFrame(binding: Binding, maxBytes: number): fc.Arbitrary<FuzzValue> {
  const value = fuzzValue(Math.min(maxBytes, 40 * 1024), 2);
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    { arbitrary: fc.constant<Mutation>({ op: 'none' }), weight: 6 },
    { arbitrary: fc.record({ op: fc.constant('replace' as const), index: fc.nat(), value }), weight: 5 },
    { arbitrary: fc.record({ op: fc.constant('delete' as const), index: fc.nat() }), weight: 1 },
    {
      arbitrary: fc.record({
        op: fc.constant('add' as const),
        key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'deviceId', 'clientId', 'senderId', 'seq'), edgeString(10)),
        value,
      }),
      weight: 2,
    },
    { arbitrary: fc.record({ op: fc.constant('duplicate' as const), index: fc.nat(), value }), weight: 1 },
  );
  // Not the bound conversation: another's, or one of the user's own that the connection may not be subscribed to.
  const otherConversation = fc.constantFrom('someone-elses', `${binding.conversationId}x`, binding.conversationId.toUpperCase(), ...binding.alsoMemberOf);
  const valid = withRequestId(validFrame(binding, maxBytes));
  return fc.oneof(
    { arbitrary: fc.tuple(valid, mutation).map(([entries, m]) => new Entries(mutate(entries, m))), weight: 8 },
    // The one nested object of a frame (`subscribe`'s afterSeq), one entry mutated.
    { arbitrary: withRequestId(afterSeqMutated(binding)).map((entries) => new Entries(entries)), weight: 1 },
    // Spoofed bindings: valid in shape, wrong conversation or user.
    {
      arbitrary: fc.tuple(valid, otherConversation).map(
        ([entries, other]) => new Entries(entries.map(([k, v]): [string, FuzzValue] => [k, k === 'conversationId' ? other : v])),
      ),
      weight: 1,
    },
    {
      arbitrary: fc
        .constantFrom('bob', 'mallory', `${binding.userId} `, binding.userId.toUpperCase())
        .map((userId) => new Entries([['action', 'typing'], ['conversationId', binding.conversationId], ['userId', userId]])),
      weight: 1,
    },
    // The right frame in the wrong container (its requestId is not the frame's then).
    { arbitrary: valid.map((entries): FuzzValue => [new Entries(entries)]), weight: 1 },
    { arbitrary: valid.map((entries) => new Entries([['frame', new Entries(entries)]])), weight: 1 },
  );
}

export interface FuzzFrame {
  kind: string;
  text: string;
}

/** Every kind of hostile frame text, at most `maxBytes` of UTF-8. */
export function fuzzFrame(binding: Binding, maxBytes: number, maxDepth: number): fc.Arbitrary<FuzzFrame> {
  const style = fc.constantFrom<StringStyle>('escaped', 'raw');
  const arb = fc.oneof(
    {
      arbitrary: fc.tuple(mutatedFrame(binding, maxBytes), style).map(([v, s]) => ({ kind: 'mutated', text: encode(v, s) })),
      weight: 14,
    },
    {
      // Any value; an object may carry a requestId too (a frame that is not one still has its answer echo it).
      arbitrary: fc
        .tuple(fuzzValue(maxBytes), withRequestId(fc.constant([])), style)
        .map(([v, ids, s]) => ({ kind: 'value', text: encode(v instanceof Entries ? new Entries([...v.entries, ...ids]) : v, s) })),
      weight: 3,
    },
    { arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => ({ kind: 'json', text: JSON.stringify(v) ?? 'null' })), weight: 2 },
    { arbitrary: edgeString(200).map((text) => ({ kind: 'text', text })), weight: 2 },
    { arbitrary: deepNesting(binding.conversationId, maxDepth).map((text) => ({ kind: 'deep', text })), weight: 1 },
  );
  return arb.filter((frame) => Buffer.byteLength(frame.text, 'utf8') <= maxBytes);
}

// ---- run budget ------------------------------------------------------------------------------------------

/** The fuzz budget: FUZZ_RUNS (npm run fuzz sets 10,000), else 2,400 for `npm test` (3,000 cases with the shares). */
export const TOTAL_RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? '') || 2400);

/**
 * This property's share of the total. The shares add up to 1.25, so the suite runs at least TOTAL_RUNS cases
 * even while a property or two stop early on a counterexample.
 */
export function runsFor(share: number): number {
  return Math.max(1, Math.ceil(TOTAL_RUNS * share));
}
