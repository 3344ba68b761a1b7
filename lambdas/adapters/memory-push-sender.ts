import type { PushNotification, PushResult, PushSender, StoredPushTarget } from '../ports.js';

/**
 * The push services' twin for domain tests and the bench: records what each target was sent, answers `gone` for
 * targets expired with `expire` (as a push service answers 410, or SNS EndpointDisabled), and a made-up SNS
 * endpoint ARN for APNs and FCM targets, as SnsPushSender remembers one.
 */
export class MemoryPushSender implements PushSender {
  readonly sent: { stored: StoredPushTarget; notification: PushNotification }[] = [];
  private readonly expired = new Set<string>();

  async send(stored: StoredPushTarget, notification: PushNotification): Promise<PushResult> {
    if (this.expired.has(keyOf(stored))) return { outcome: 'gone' };
    this.sent.push({ stored, notification });
    if (stored.target.kind === 'webPush') return { outcome: 'delivered' };
    return { outcome: 'delivered', endpointArn: stored.endpointArn ?? `arn:aws:sns:us-east-1:000000000000:endpoint/${stored.target.kind}/${stored.deviceId}` };
  }

  /** The target is gone from now on. */
  expire(stored: Pick<StoredPushTarget, 'target'>): void {
    this.expired.add(keyOf(stored));
  }
}

function keyOf(stored: Pick<StoredPushTarget, 'target'>): string {
  const target = stored.target;
  return target.kind === 'webPush' ? `webPush ${target.subscription.endpoint}` : `${target.kind} ${target.token}`;
}
