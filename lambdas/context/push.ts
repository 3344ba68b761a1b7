import { SNSClient } from '@aws-sdk/client-sns';
import { PushProviders } from '../adapters/push-providers.js';
import { SnsPushSender } from '../adapters/sns-push-sender.js';
import { WebPushSender } from '../adapters/web-push-sender.js';
import type { PushSender } from '../ports.js';
import { credentialsOption } from './credentials.js';
import type { Env, Scope } from './lazy.js';
import { readVapidKeys } from './secrets.js';

/** Web Push (when the VAPID keys are there) and SNS mobile push (when a platform application is given). */
export async function pushProviders(
  config: {
    AWS_REGION: string;
    SECRETS_ENDPOINT?: string | undefined;
    PUSH_VAPID_SECRET_ID?: string | undefined;
    PUSH_VAPID_JSON?: string | undefined;
    PUSH_APNS_PLATFORM_ARN?: string | undefined;
    PUSH_FCM_PLATFORM_ARN?: string | undefined;
    PUSH_TTL_SECONDS: number;
  },
  scope: Scope,
  env: Env,
): Promise<PushSender> {
  const vapid = await readVapidKeys(config, env);
  const webPush = vapid === undefined ? undefined : new WebPushSender({ vapid, ttlSeconds: config.PUSH_TTL_SECONDS });
  const platforms = { apnsArn: config.PUSH_APNS_PLATFORM_ARN, fcmArn: config.PUSH_FCM_PLATFORM_ARN };
  const sns =
    platforms.apnsArn === undefined && platforms.fcmArn === undefined
      ? undefined
      : new SnsPushSender(scope.adopt(new SNSClient({ region: config.AWS_REGION, ...credentialsOption(env) }), (c) => c.destroy()), platforms);
  return new PushProviders(webPush, sns);
}
