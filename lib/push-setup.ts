import { CustomResource, Stack, type RemovalPolicy } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Provider } from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { FunctionSpec } from '../deploy/routes.js';
import type { RelayFunction } from './functions.js';
import { acknowledge, nagNotation } from './nag.js';

/**
 * The function behind the push custom resources (lambdas/handlers/push-setup.ts): run by CloudFormation at deploy,
 * never by traffic. No tables, no Redis; its grants are the few below.
 */
export const pushSetup: FunctionSpec = {
  name: 'pushSetup',
  entry: 'lambdas/handlers/push-setup.ts',
  access: { tables: {}, enqueue: false, posts: false, redis: false },
};

export type ApplePlatform = 'APNS' | 'APNS_SANDBOX';

export interface PushSetupProps {
  /** The pushSetup function (made like every other function of the stage). */
  setupFunction: RelayFunction;
  /** `relay-ws-{stage}`: the SNS platform applications are named `{prefix}-apns` / `{prefix}-fcm`. */
  namePrefix: string;
  vapidSecret: ISecret;
  vapidSubject: string;
  /** The operator's secret with the APNs token credentials, and which APNs environment. */
  apns?: { credentialsSecretArn: string; platform: ApplePlatform };
  /** The operator's secret with the FCM service account. */
  fcm?: { credentialsSecretArn: string };
  /** Changing it makes CloudFormation update the platform applications (re-read their credentials). */
  credentialsVersion?: string;
  logRetention: RetentionDays;
  logRemovalPolicy: RemovalPolicy;
}

/** An SNS platform application the stack made: the ARN to push through, and the name-based one IAM grants name. */
export interface MadePlatform {
  /** From the custom resource (so whatever reads it is deployed after the application exists). */
  arn: string;
  /** `arn:…:app/{platform}/{name}`, known at synth time: the resource of the IAM grants. */
  grantArn: string;
}

/**
 * What CloudFormation cannot make for push: the VAPID key pair (generated once, into the VAPID secret, never
 * replaced) and, when the operator gives their credentials, the SNS platform applications of APNs and FCM.
 */
export class PushSetup extends Construct {
  /** The VAPID public key (base64url): the apps' `applicationServerKey`. */
  readonly vapidPublicKey: string;
  readonly apns: MadePlatform | undefined;
  readonly fcm: MadePlatform | undefined;

  constructor(scope: Construct, id: string, props: PushSetupProps) {
    super(scope, id);
    const role = props.setupFunction.role;
    role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue'], resources: [props.vapidSecret.secretArn] }),
    );

    const provider = new Provider(this, 'Provider', {
      onEventHandler: props.setupFunction.function,
      logGroup: new LogGroup(this, 'ProviderLogs', { retention: props.logRetention, removalPolicy: props.logRemovalPolicy }),
    });
    acknowledge(
      provider,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'The CDK Provider framework function (it only relays CloudFormation events to the push setup function) comes with this managed policy.',
    );
    acknowledge(
      provider,
      'AwsSolutions-L1',
      'The CDK Provider framework picks its own runtime for its relay function; our code runs in the push setup function (nodejs22.x).',
    );
    acknowledge(
      provider,
      `AwsSolutions-IAM5[Resource::${nagNotation(this, `${props.setupFunction.function.functionArn}:*`)}]`,
      'The Provider framework may invoke any version of the push setup function (and only that function).',
    );

    const vapid = new CustomResource(this, 'VapidKeys', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::RelayVapidKeys',
      properties: { Kind: 'vapidKeys', SecretId: props.vapidSecret.secretArn, Subject: props.vapidSubject },
    });
    this.vapidPublicKey = vapid.getAttString('PublicKey');

    const stack = Stack.of(this);
    const platform = (id: string, name: string, kind: ApplePlatform | 'GCM', credentialsSecretArn: string): MadePlatform => {
      const grantArn = `arn:${stack.partition}:sns:${stack.region}:${stack.account}:app/${kind}/${name}`;
      role.addToPrincipalPolicy(new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [credentialsSecretArn] }));
      role.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['sns:CreatePlatformApplication', 'sns:SetPlatformApplicationAttributes', 'sns:DeletePlatformApplication'],
          resources: [grantArn],
        }),
      );
      const made = new CustomResource(this, id, {
        serviceToken: provider.serviceToken,
        resourceType: 'Custom::RelayPlatformApplication',
        properties: {
          Kind: 'platformApplication',
          Name: name,
          Platform: kind,
          CredentialsSecretId: credentialsSecretArn,
          ...(props.credentialsVersion === undefined ? {} : { CredentialsVersion: props.credentialsVersion }),
        },
      });
      return { arn: made.getAttString('Arn'), grantArn };
    };
    this.apns = props.apns === undefined ? undefined : platform('ApnsApplication', `${props.namePrefix}-apns`, props.apns.platform, props.apns.credentialsSecretArn);
    this.fcm = props.fcm === undefined ? undefined : platform('FcmApplication', `${props.namePrefix}-fcm`, 'GCM', props.fcm.credentialsSecretArn);
  }
}
