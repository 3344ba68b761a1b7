import { createHash } from 'node:crypto';
import webPush from 'web-push';
import { PushFailedError, UnavailableError } from '../errors.js';
import type { PushNotification, PushResult, WebPushSubscription } from '../ports.js';

/** The VAPID key pair (RFC 8292) and the contact the push services see. */
export interface VapidKeys {
  publicKey: string;
  privateKey: string;
  /** `mailto:` or `https:` contact of the operator. */
  subject: string;
}

export interface WebPushSenderOptions {
  vapid: VapidKeys;
  /** How long the push service keeps an undelivered push (TTL header), seconds. */
  ttlSeconds: number;
  /** Per request. @default 5000 */
  timeoutMs?: number;
  /** Tests give their own. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

/**
 * Web Push (RFC 8030) with VAPID (RFC 8292) and an RFC 8291 (aes128gcm) encrypted payload, built by `web-push`
 * and sent with fetch (web-push's own sender speaks https only, and follows nothing we want followed: here a
 * redirect is a failure, so an endpoint can never send the backend elsewhere). 404 and 410 mean the subscription
 * is gone; 429 and 5xx are retried through the queue.
 */
export class WebPushSender {
  private readonly fetch: typeof globalThis.fetch;
  private readonly timeoutMs: number;

  constructor(private readonly options: WebPushSenderOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs ?? 5000;
  }

  async send(subscription: WebPushSubscription, notification: PushNotification): Promise<PushResult> {
    const details = webPush.generateRequestDetails(subscription, JSON.stringify(notification), {
      vapidDetails: this.options.vapid,
      TTL: this.options.ttlSeconds,
      contentEncoding: 'aes128gcm',
      urgency: 'normal',
      // One pending push per conversation at the push service: a newer one replaces an undelivered older one.
      topic: topicOf(notification.conversationId),
    });
    let response: Response;
    try {
      response = await this.fetch(details.endpoint, {
        method: 'POST',
        headers: Object.fromEntries(Object.entries(details.headers).map(([name, value]) => [name, String(value)])),
        body: details.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new UnavailableError('the push service did not answer', { cause: error });
    }
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { outcome: 'delivered' };
    if (response.status === 404 || response.status === 410) return { outcome: 'gone' };
    if (response.status === 429 || response.status >= 500) throw new UnavailableError(`the push service answered ${response.status}`);
    throw new PushFailedError(`the push service refused the push (${response.status})`);
  }
}

/** A Topic header value: at most 32 base64url characters, the same for every push of a conversation. */
function topicOf(conversationId: string): string {
  return createHash('sha256').update(conversationId).digest('base64url').slice(0, 32);
}

/** A fresh VAPID key pair (the local backend's; a stage keeps its own in Secrets Manager). */
export function generateVapidKeys(subject = 'mailto:relay-ws@localhost'): VapidKeys {
  const { publicKey, privateKey } = webPush.generateVAPIDKeys();
  return { publicKey, privateKey, subject };
}
