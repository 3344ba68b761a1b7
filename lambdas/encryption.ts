import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { DecryptionError } from './errors.js';
import type { Sealer } from './ports.js';

/**
 * Message bodies at rest: AES-256-GCM under a per-conversation key derived with HKDF-SHA256 from the master
 * key. The nonce is random per message; the conversation and message ids are bound as associated data, so a
 * sealed body moved to another message fails to open. Sealed form: `v1.<nonce b64url>.<ciphertext+tag b64url>`.
 */
const VERSION = 'v1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const SALT = Buffer.from('relay-ws/message-key/v1', 'utf8');
const KEY_CACHE_LIMIT = 1024;


export function deriveConversationKey(masterKey: Buffer, conversationId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, SALT, `conversation:${conversationId}`, 32));
}

export class MessageCipher implements Sealer {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly masterKey: Buffer) {
    if (masterKey.length < 32) throw new RangeError('the master key must be at least 32 bytes');
  }

  seal(conversationId: string, messageId: string, body: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keyFor(conversationId), nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad(conversationId, messageId));
    const ciphertext = Buffer.concat([cipher.update(body, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${nonce.toString('base64url')}.${ciphertext.toString('base64url')}`;
  }

  open(conversationId: string, messageId: string, sealed: string): string {
    const [version, nonceText, dataText] = sealed.split('.');
    if (version !== VERSION || nonceText === undefined || dataText === undefined) {
      throw new DecryptionError('unrecognised sealed message format');
    }
    const nonce = Buffer.from(nonceText, 'base64url');
    const data = Buffer.from(dataText, 'base64url');
    if (nonce.length !== NONCE_BYTES || data.length < TAG_BYTES) throw new DecryptionError('truncated sealed message');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.keyFor(conversationId), nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad(conversationId, messageId));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      return Buffer.concat([decipher.update(data.subarray(0, data.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new DecryptionError('sealed message failed authentication', { cause: error });
    }
  }

  private keyFor(conversationId: string): Buffer {
    let key = this.keys.get(conversationId);
    if (key === undefined) {
      if (this.keys.size >= KEY_CACHE_LIMIT) this.keys.clear();
      key = deriveConversationKey(this.masterKey, conversationId);
      this.keys.set(conversationId, key);
    }
    return key;
  }
}

function aad(conversationId: string, messageId: string): Buffer {
  return Buffer.from(`${conversationId}\n${messageId}`, 'utf8');
}
