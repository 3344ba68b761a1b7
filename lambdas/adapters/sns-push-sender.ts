import { CreatePlatformEndpointCommand, DeleteEndpointCommand, PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { PushFailedError } from '../errors.js';
import type { PushNotification, PushResult } from '../ports.js';
import { callAws } from './aws-errors.js';

const WHAT = 'SNS mobile push';

export interface SnsPlatforms {
  /** `arn:aws:sns:…:app/APNS/<name>` or `…/APNS_SANDBOX/<name>`. */
  apnsArn?: string | undefined;
  /** `arn:aws:sns:…:app/GCM/<name>` (SNS calls FCM "GCM"). */
  fcmArn?: string | undefined;
}

/**
 * APNs and FCM through Amazon SNS mobile push: one platform endpoint per device token (made on its first push and
 * remembered with the target), one Publish per push. A disabled endpoint (APNs or FCM said the token is
 * unregistered) is deleted and the target reported gone. The payload is ids and a count only: a preview never
 * goes to Apple or Google. Apps build the notification they show from those ids (APNs: a background push).
 */
export class SnsPushSender {
  constructor(
    private readonly sns: SNSClient,
    private readonly platforms: SnsPlatforms,
  ) {}

  async send(kind: 'apns' | 'fcm', token: string, endpointArn: string | undefined, notification: PushNotification): Promise<PushResult> {
    const platformArn = kind === 'apns' ? this.platforms.apnsArn : this.platforms.fcmArn;
    if (platformArn === undefined) throw new PushFailedError(`this stage has no ${kind === 'apns' ? 'APNs' : 'FCM'} platform application`);
    let arn = endpointArn ?? (await this.createEndpoint(platformArn, token));
    try {
      await this.publish(arn, platformArn, notification);
    } catch (error) {
      if (isNamed(error, 'EndpointDisabledException')) return this.gone(arn);
      if (!isNamed(error, 'NotFoundException') || endpointArn === undefined) throw error;
      // The remembered endpoint was deleted (by us, or in the console): make it again, once.
      arn = await this.createEndpoint(platformArn, token);
      try {
        await this.publish(arn, platformArn, notification);
      } catch (retryError) {
        if (isNamed(retryError, 'EndpointDisabledException')) return this.gone(arn);
        throw retryError;
      }
    }
    return { outcome: 'delivered', endpointArn: arn };
  }

  private async createEndpoint(platformArn: string, token: string): Promise<string> {
    // Idempotent for the same token: SNS answers the existing endpoint's ARN.
    const created = await callAws(WHAT, () => this.sns.send(new CreatePlatformEndpointCommand({ PlatformApplicationArn: platformArn, Token: token })));
    if (created.EndpointArn === undefined) throw new PushFailedError('SNS made no platform endpoint');
    return created.EndpointArn;
  }

  private async publish(endpointArn: string, platformArn: string, notification: PushNotification): Promise<void> {
    await callAws(WHAT, () =>
      this.sns.send(new PublishCommand({ TargetArn: endpointArn, MessageStructure: 'json', Message: messageFor(platformArn, notification) })),
    );
  }

  private async gone(endpointArn: string): Promise<PushResult> {
    await callAws(WHAT, () => this.sns.send(new DeleteEndpointCommand({ EndpointArn: endpointArn })));
    return { outcome: 'gone' };
  }
}

/** The platform of an application ARN (`…:app/<platform>/<name>`). */
export function platformOf(platformArn: string): string {
  return /:app\/([A-Z_]+)\//.exec(platformArn)?.[1] ?? 'GCM';
}

/** The SNS `json` message: ids and a count for the app, no text (never a preview: APNs and FCM are third parties). */
export function messageFor(platformArn: string, notification: PushNotification): string {
  const data = {
    conversationId: notification.conversationId,
    senderId: notification.senderId,
    seq: String(notification.seq),
    count: String(notification.count),
  };
  const platform = platformOf(platformArn);
  const payload =
    platform === 'APNS' || platform === 'APNS_SANDBOX'
      ? { aps: { 'content-available': 1 }, ...data }
      : { data, android: { priority: 'high' } };
  return JSON.stringify({ default: 'new message', [platform]: JSON.stringify(payload) });
}

function isNamed(error: unknown, name: string): boolean {
  return error instanceof Error && (error.name === name || (error.cause instanceof Error && error.cause.name === name));
}
