import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { DecryptionError } from './errors.js';
import type { SealedFields, Sealer } from './ports.js';

/**
 * Message bodies at rest: AES-256-GCM under a per-conversation key derived with HKDF-SHA256 from a master key.
 * The nonce is random per message. The associated data binds every field of the message (conversation, id,
 * seq, sender, sender device, clientMessageId, sentAt, and `editedAt` once edited), so a sealed body moved to
 * another message, an edit replayed over a later one, or a message whose metadata was altered, fails to open.
 *
 * Sealed form: `v2.<key id>.<nonce b64url>.<ciphertext+tag b64url>`. The key id names the master key that sealed
 * it, so a keyring (the current key first, older keys after it) opens messages sealed before a rotation.
 */
const VERSION = 'v2';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const SALT = Buffer.from('relay-ws/message-key/v1', 'utf8');
const KEY_CACHE_LIMIT = 1024;

export function deriveConversationKey(masterKey: Buffer, conversationId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, SALT, `conversation:${conversationId}`, 32));
}

/** A short public name of a master key (it reveals nothing of the key): 8 characters of base64url. */
export function keyIdOf(masterKey: Buffer): string {
  return Buffer.from(hkdfSync('sha256', masterKey, SALT, 'key-id', 6)).toString('base64url');
}

function associatedData(fields: SealedFields): Buffer {
  // JSON of a fixed-order array: unambiguous whatever characters the ids hold.
  return Buffer.from(
    JSON.stringify([
      VERSION,
      fields.conversationId,
      fields.messageId,
      fields.seq,
      fields.senderId,
      fields.senderDevice,
      fields.clientMessageId,
      fields.sentAt,
      // Only edited bodies bind editedAt: bodies sealed before edits existed keep opening unchanged.
      ...(fields.editedAt === undefined ? [] : [fields.editedAt]),
    ]),
    'utf8',
  );
}

export class MessageCipher implements Sealer {
  private readonly keyring: Map<string, Buffer>;
  private readonly currentId: string;
  private readonly keys = new Map<string, Buffer>();

  /** `masterKeys`: the current key first, then the older ones still needed to open older messages. */
  constructor(masterKeys: readonly Buffer[]) {
    const [current] = masterKeys;
    if (current === undefined) throw new RangeError('the keyring needs at least one master key');
    for (const key of masterKeys) if (key.length < 32) throw new RangeError('a master key must be at least 32 bytes');
    this.keyring = new Map(masterKeys.map((key) => [keyIdOf(key), key]));
    this.currentId = keyIdOf(current);
  }

  /** The id of the key new messages are sealed with. */
  get currentKeyId(): string {
    return this.currentId;
  }

  seal(fields: SealedFields, body: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.keyFor(this.currentId, fields.conversationId), nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(fields));
    const ciphertext = Buffer.concat([cipher.update(body, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${this.currentId}.${nonce.toString('base64url')}.${ciphertext.toString('base64url')}`;
  }

  open(fields: SealedFields, sealed: string): string {
    const [version, keyId, nonceText, dataText, extra] = sealed.split('.');
    if (version !== VERSION || keyId === undefined || nonceText === undefined || dataText === undefined || extra !== undefined) {
      throw new DecryptionError('unrecognised sealed message format');
    }
    if (!this.keyring.has(keyId)) throw new DecryptionError('sealed under a key this keyring does not hold');
    const nonce = Buffer.from(nonceText, 'base64url');
    const data = Buffer.from(dataText, 'base64url');
    if (nonce.length !== NONCE_BYTES || data.length < TAG_BYTES) throw new DecryptionError('truncated sealed message');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.keyFor(keyId, fields.conversationId), nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(associatedData(fields));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      return Buffer.concat([decipher.update(data.subarray(0, data.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new DecryptionError('sealed message failed authentication', { cause: error });
    }
  }

  private keyFor(keyId: string, conversationId: string): Buffer {
    const cacheKey = `${keyId}\n${conversationId}`;
    let key = this.keys.get(cacheKey);
    if (key === undefined) {
      const master = this.keyring.get(keyId);
      if (master === undefined) throw new DecryptionError('sealed under a key this keyring does not hold');
      if (this.keys.size >= KEY_CACHE_LIMIT) this.keys.clear();
      key = deriveConversationKey(master, conversationId);
      this.keys.set(cacheKey, key);
    }
    return key;
  }
}
