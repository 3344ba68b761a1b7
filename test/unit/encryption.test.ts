import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageCipher, deriveConversationKey, keyIdOf } from '../../lambdas/encryption.js';
import { DecryptionError, SecretError } from '../../lambdas/errors.js';
import type { SealedFields } from '../../lambdas/ports.js';
import { appKeysFrom } from '../../lambdas/secret.js';

const master = Buffer.from('a-master-key-of-at-least-thirty-two-characters', 'utf8');
const older = Buffer.from('the-previous-master-key-before-the-rotation!', 'utf8');
const fields: SealedFields = {
  conversationId: 'conv',
  seq: 7,
  messageId: 'm1',
  senderId: 'alice',
  senderDevice: 'phone',
  clientMessageId: 'c1',
  sentAt: 1_700_000_000_000,
};

/** The error `fn` throws (or undefined). */
function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Every run of `size` characters of `secret` found in `text`. */
function leakedParts(text: string, secret: string, size = 5): string[] {
  const parts: string[] = [];
  for (let i = 0; i + size <= secret.length; i += 1) {
    const part = secret.slice(i, i + size);
    if (text.includes(part)) parts.push(part);
  }
  return parts;
}

/** A sealed form with one part replaced. */
function withPart(sealed: string, index: number, change: (part: string) => string): string {
  return sealed
    .split('.')
    .map((part, i) => (i === index ? change(part) : part))
    .join('.');
}

describe('encryption at rest', () => {
  it('derives a deterministic, distinct key per conversation', () => {
    // Act
    const c1 = deriveConversationKey(master, 'c1');
    // Assess
    expect(c1.equals(deriveConversationKey(master, 'c1'))).toBe(true);
    expect(c1.equals(deriveConversationKey(master, 'c2'))).toBe(false);
    expect(c1.equals(deriveConversationKey(older, 'c1'))).toBe(false);
    expect(c1).toHaveLength(32);
  });

  it('round-trips any body and never leaves plaintext in the sealed form', () => {
    const cipher = new MessageCipher([master]);
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 4 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (body, seq) => {
        // Act
        const sealed = cipher.seal({ ...fields, seq }, body);
        // Assess
        expect(cipher.open({ ...fields, seq }, sealed)).toBe(body);
        expect(sealed).not.toContain(body);
      }),
      { numRuns: 200 },
    );
  });

  it('seals as v2.<key id>.<nonce>.<ciphertext+tag>, with a fresh nonce each time', () => {
    // Prepare
    const cipher = new MessageCipher([master]);
    // Act
    const first = cipher.seal(fields, 'same');
    const second = cipher.seal(fields, 'same');
    // Assess
    expect(first).toMatch(/^v2\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(first.split('.')[1]).toBe(keyIdOf(master));
    expect(first.split('.')[2]).not.toBe(second.split('.')[2]);
    expect(first).not.toBe(second);
  });

  it.each([
    ['a flipped ciphertext bit', (s: string) => withPart(s, 3, (d) => { const b = Buffer.from(d, 'base64url'); b[0] = (b[0] ?? 0) ^ 1; return b.toString('base64url'); })],
    ['a flipped nonce bit', (s: string) => withPart(s, 2, (n) => { const b = Buffer.from(n, 'base64url'); b[0] = (b[0] ?? 0) ^ 1; return b.toString('base64url'); })],
    ['a truncated value', (s: string) => s.slice(0, 20)],
    ['a cut-off tag', (s: string) => withPart(s, 3, (d) => Buffer.from(d, 'base64url').subarray(0, 10).toString('base64url'))],
    ['an unknown version', (s: string) => s.replace(/^v2/, 'v9')],
    ['an extra part', (s: string) => `${s}.extra`],
    ['an unknown key id', (s: string) => withPart(s, 1, () => 'AAAAAAAA')],
  ])('fails with DecryptionError on %s', (_label, tamper) => {
    // Prepare
    const cipher = new MessageCipher([master]);
    const sealed = cipher.seal(fields, 'hello');
    // Act
    const error = thrownBy(() => cipher.open(fields, tamper(sealed)));
    // Assess
    expect(error).toBeInstanceOf(DecryptionError);
  });

  const altered: { [K in keyof SealedFields]: SealedFields[K] } = {
    conversationId: 'other',
    messageId: 'm2',
    seq: 8,
    senderId: 'mallory',
    senderDevice: 'laptop',
    clientMessageId: 'c2',
    sentAt: fields.sentAt + 1,
  };

  it('has an altered value for every field a sealed body is bound to', () => {
    // Assess
    expect(Object.keys(altered).sort()).toEqual(Object.keys(fields).sort());
  });

  it.each(Object.keys(altered) as (keyof SealedFields)[])('fails with DecryptionError when %s was altered', (field) => {
    // Prepare
    const cipher = new MessageCipher([master]);
    const sealed = cipher.seal(fields, 'hello');
    // Act
    const error = thrownBy(() => cipher.open({ ...fields, [field]: altered[field] }, sealed));
    // Assess
    expect(error).toBeInstanceOf(DecryptionError);
    expect(cipher.open(fields, sealed)).toBe('hello');
  });

  it('opens with any cipher holding the key, and with no other key', () => {
    // Prepare
    const sealed = new MessageCipher([master]).seal(fields, 'hello');
    // Act
    const opened = new MessageCipher([master]).open(fields, sealed);
    const stranger = thrownBy(() => new MessageCipher([Buffer.from('x'.repeat(40))]).open(fields, sealed));
    // Assess
    expect(opened).toBe('hello');
    expect(stranger).toBeInstanceOf(DecryptionError);
  });

  describe('key rotation', () => {
    it('a keyring [new, old] opens what [old] sealed, and seals new messages with the new key id', () => {
      // Prepare
      const before = new MessageCipher([older]).seal(fields, 'sealed before the rotation');
      const rotated = new MessageCipher([master, older]);
      // Act
      const opened = rotated.open(fields, before);
      const after = rotated.seal(fields, 'sealed after the rotation');
      // Assess
      expect(opened).toBe('sealed before the rotation');
      expect(rotated.currentKeyId).toBe(keyIdOf(master));
      expect(after.split('.')[1]).toBe(keyIdOf(master));
      expect(before.split('.')[1]).toBe(keyIdOf(older));
      expect(new MessageCipher([master]).open(fields, after)).toBe('sealed after the rotation');
    });

    it('a keyring without the old key cannot open what it sealed', () => {
      // Prepare
      const before = new MessageCipher([older]).seal(fields, 'sealed before the rotation');
      // Act
      const error = thrownBy(() => new MessageCipher([master]).open(fields, before));
      // Assess
      expect(error).toBeInstanceOf(DecryptionError);
    });

    it('a body relabelled with another key id of the keyring does not open', () => {
      // Prepare
      const rotated = new MessageCipher([master, older]);
      const sealed = rotated.seal(fields, 'hello');
      // Act
      const error = thrownBy(() => rotated.open(fields, withPart(sealed, 1, () => keyIdOf(older))));
      // Assess
      expect(error).toBeInstanceOf(DecryptionError);
    });

    it('refuses an empty keyring and keys shorter than 32 bytes', () => {
      // Act / Assess
      expect(() => new MessageCipher([])).toThrow(RangeError);
      expect(() => new MessageCipher([master, Buffer.from('too-short')])).toThrow(RangeError);
    });
  });

  describe('keyIdOf', () => {
    it('is short, stable, distinct per key, and shows nothing of the key', () => {
      // Act
      const id = keyIdOf(master);
      // Assess
      expect(id).toMatch(/^[A-Za-z0-9_-]{8}$/);
      expect(keyIdOf(Buffer.from(master))).toBe(id);
      expect(keyIdOf(older)).not.toBe(id);
      for (const encoding of ['utf8', 'hex', 'base64', 'base64url'] as const) {
        const text = master.toString(encoding);
        expect(text.startsWith(id)).toBe(false);
        expect(leakedParts(text, id, 4)).toEqual([]);
      }
    });
  });
});

describe('appKeysFrom', () => {
  it('derives the JWT secret when absent, and uses the given one otherwise', () => {
    // Act
    const keys = appKeysFrom({ masterKey: 'k'.repeat(40) });
    const fromText = appKeysFrom(JSON.stringify({ masterKey: 'k'.repeat(40) }));
    const given = appKeysFrom({ masterKey: 'k'.repeat(40), jwtSecret: 'j'.repeat(32) });
    // Assess
    expect(keys.jwtSecret).toHaveLength(32);
    expect(fromText.jwtSecret).toEqual(keys.jwtSecret);
    expect(Buffer.from(given.jwtSecret).toString('utf8')).toBe('j'.repeat(32));
    expect(keys.masterKeys).toEqual([Buffer.from('k'.repeat(40), 'utf8')]);
  });

  it('puts previousMasterKeys after the current key, so a rotated secret opens old messages', () => {
    // Prepare
    const oldKey = 'o'.repeat(48);
    const sealed = new MessageCipher([Buffer.from(oldKey, 'utf8')]).seal(fields, 'from before');
    // Act
    const keys = appKeysFrom(JSON.stringify({ masterKey: 'n'.repeat(40), previousMasterKeys: [oldKey] }));
    const cipher = new MessageCipher(keys.masterKeys);
    // Assess
    expect(keys.masterKeys.map((k) => k.toString('utf8'))).toEqual(['n'.repeat(40), oldKey]);
    expect(cipher.open(fields, sealed)).toBe('from before');
    expect(cipher.currentKeyId).toBe(keyIdOf(Buffer.from('n'.repeat(40), 'utf8')));
  });

  it.each([
    ['a short masterKey', { masterKey: 'Zq9kWpL2xVb7' }, 'Zq9kWpL2xVb7'],
    ['a short previous key', { masterKey: 'k'.repeat(40), previousMasterKeys: ['Hn4tRw8yQm2e'] }, 'Hn4tRw8yQm2e'],
    ['a short jwtSecret', { masterKey: 'k'.repeat(40), jwtSecret: 'Gf5dSa3uJk1o' }, 'Gf5dSa3uJk1o'],
    ['a masterKey of the wrong type', { masterKey: 7_351_904_126_888 }, '7351904126888'],
  ])('refuses %s without any part of the secret in the error', (_label, secret, text) => {
    // Act
    const fromObject = thrownBy(() => appKeysFrom(secret));
    const fromJson = thrownBy(() => appKeysFrom(JSON.stringify(secret)));
    // Assess
    for (const error of [fromObject, fromJson]) {
      expect(error).toBeInstanceOf(SecretError);
      expect(leakedParts(String(error), text)).toEqual([]);
      expect(error instanceof Error ? error.cause : undefined).toBeUndefined();
    }
  });

  it('refuses a secret that is not JSON without any part of it in the error', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Z][A-Za-z0-9]{11,60}$/),
        fc.constantFrom(
          (t: string) => t,
          (t: string) => `{"masterKey": ${t}}`,
          (t: string) => `{"masterKey": "${t}`,
          (t: string) => `{"masterKey": "${t}" ${t}}`,
        ),
        (text, shape) => {
          // Prepare: each shape is invalid JSON whatever `text` is (it holds no quote, brace or colon).
          const secret = shape(text);
          // Act
          const error = thrownBy(() => appKeysFrom(secret));
          // Assess
          expect(error).toBeInstanceOf(SecretError);
          expect(leakedParts(String(error), text)).toEqual([]);
          expect(error instanceof Error ? error.cause : undefined).toBeUndefined();
        },
      ),
      { numRuns: 200 },
    );
  });
});
