import { PushFailedError } from '../errors.js';
import type { PushNotification, PushResult, PushSender, StoredPushTarget } from '../ports.js';
import type { SnsPushSender } from './sns-push-sender.js';
import type { WebPushSender } from './web-push-sender.js';

/**
 * The push services by kind of target: Web Push directly, APNs and FCM through SNS. A kind this stage has no
 * provider for fails (the job goes to the DLQ and the alarm fires): registration refuses it, so it only happens
 * when a stage's configuration changed under stored targets.
 */
export class PushProviders implements PushSender {
  constructor(
    private readonly webPush: WebPushSender | undefined,
    private readonly sns: SnsPushSender | undefined,
  ) {}

  async send(stored: StoredPushTarget, notification: PushNotification): Promise<PushResult> {
    const target = stored.target;
    if (target.kind === 'webPush') {
      if (this.webPush === undefined) throw new PushFailedError('Web Push is not configured (no VAPID keys)');
      return this.webPush.send(target.subscription, notification);
    }
    if (this.sns === undefined) throw new PushFailedError(`${target.kind} push is not configured`);
    // A preview is for Web Push's end-to-end encrypted payload only.
    const { preview: _preview, ...ids } = notification;
    return this.sns.send(target.kind, target.token, stored.endpointArn, ids);
  }
}
