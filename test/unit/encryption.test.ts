import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageCipher, deriveConversationKey } from '../../lambdas/encryption.js';
import { DecryptionError, SecretError } from '../../lambdas/errors.js';
import { appKeysFrom } from '../../lambdas/secret.js';

const master = Buffer.from('a-master-key-of-at-least-thirty-two-characters', 'utf8');

describe('encryption at rest', () => {
  it('derives a deterministic, distinct key per conversation', () => {
    expect(deriveConversationKey(master, 'c1').equals(deriveConversationKey(master, 'c1'))).toBe(true);
    expect(deriveConversationKey(master, 'c1').equals(deriveConversationKey(master, 'c2'))).toBe(false);
    expect(deriveConversationKey(master, 'c1')).toHaveLength(32);
  });

  it('round-trips any body and never leaves plaintext in the sealed form', () => {
    const cipher = new MessageCipher(master);
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 4 }), (body) => {
        const sealed = cipher.seal('conv', 'm1', body);
        expect(cipher.open('conv', 'm1', sealed)).toBe(body);
        expect(sealed).not.toContain(body);
      }),
      { numRuns: 200 },
    );
  });

  it('uses a fresh nonce each time', () => {
    const cipher = new MessageCipher(master);
    expect(cipher.seal('c', 'm', 'same')).not.toBe(cipher.seal('c', 'm', 'same'));
  });

  it.each([
    ['a flipped ciphertext bit', (s: string) => { const [v, n, d] = s.split('.'); const b = Buffer.from(d ?? '', 'base64url'); b[0] = (b[0] ?? 0) ^ 1; return `${v}.${n}.${b.toString('base64url')}`; }],
    ['a truncated value', (s: string) => s.slice(0, 20)],
    ['an unknown version', (s: string) => s.replace(/^v1/, 'v9')],
  ])('fails loudly on %s', (_label, tamper) => {
    const cipher = new MessageCipher(master);
    const sealed = cipher.seal('conv', 'm1', 'hello');
    expect(() => cipher.open('conv', 'm1', tamper(sealed))).toThrow(DecryptionError);
  });

  it('binds the sealed body to its conversation and message', () => {
    const cipher = new MessageCipher(master);
    const sealed = cipher.seal('conv', 'm1', 'hello');
    expect(() => cipher.open('conv', 'm2', sealed)).toThrow(DecryptionError);
    expect(() => cipher.open('other', 'm1', sealed)).toThrow(DecryptionError);
    expect(() => new MessageCipher(master).open('conv', 'm1', sealed)).not.toThrow();
    expect(() => new MessageCipher(Buffer.from('x'.repeat(40))).open('conv', 'm1', sealed)).toThrow(DecryptionError);
  });

  it('reads the app secret: derives the JWT secret when absent, refuses short keys without echoing them', () => {
    const keys = appKeysFrom({ masterKey: 'k'.repeat(40) });
    expect(keys.jwtSecret).toHaveLength(32);
    expect(appKeysFrom(JSON.stringify({ masterKey: 'k'.repeat(40) })).jwtSecret).toEqual(keys.jwtSecret);
    expect(() => appKeysFrom({ masterKey: 'short-secret' })).toThrow(SecretError);
    expect(() => appKeysFrom({ masterKey: 'short-secret' })).not.toThrow(/short-secret/);
    expect(() => appKeysFrom('not json')).toThrow(SecretError);
  });
});
