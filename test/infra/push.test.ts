import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifier, routes } from '../../deploy/routes.js';
import { parseSettings, stackNameFor } from '../../lib/settings.js';
import {
  actionsOf,
  asArray,
  flat,
  functionNamed,
  getAttTarget,
  props,
  refTarget,
  removeAssembly,
  resourcesOfType,
  statementsOf,
  synthesize,
  violationsIn,
  type Synthesized,
} from './synth.js';

/** The push notification parts of the stack: the notifier and its queue, the VAPID secret, SNS only when given. */
const STACK = stackNameFor('dev');
const APNS = 'arn:aws:sns:us-east-1:123456789012:app/APNS/relay-ios';
const FCM = 'arn:aws:sns:us-east-1:123456789012:app/GCM/relay-android';

const APNS_SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:relay-apns-AbCdEf';
const FCM_SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:relay-fcm-AbCdEf';

let plain: Synthesized;
let mobile: Synthesized;
let made: Synthesized;

beforeAll(() => {
  plain = synthesize({}, { bundle: false });
  mobile = synthesize({ pushApnsPlatformArn: APNS, pushFcmPlatformArn: FCM, pushPreview: 'true' }, { bundle: false });
  made = synthesize(
    { pushApnsCredentialsSecretArn: APNS_SECRET, pushApnsSandbox: 'true', pushFcmCredentialsSecretArn: FCM_SECRET, pushCredentialsVersion: '2', pushVapidSubject: 'mailto:ops@chat.example' },
    { bundle: false },
  );
});

afterAll(() => {
  removeAssembly(plain);
  removeAssembly(mobile);
  removeAssembly(made);
});

const customResources = (synth: Synthesized, type: string) => resourcesOfType(synth.json, type).map(([id, r]) => ({ id, properties: props(r) }));
const environmentOf = (synth: Synthesized, name: string) => {
  const [, fn] = functionNamed(synth.json, STACK, name);
  return (props(fn).Environment as { Variables: Record<string, unknown> }).Variables;
};

const snsStatements = (synth: Synthesized, name: string) => {
  const [functionId] = functionNamed(synth.json, STACK, name);
  return statementsOf(synth.json, functionId).filter((s) => actionsOf(s).some((a) => a.startsWith('sns:')));
};

describe('push notifications in the stack', () => {
  it('runs the notifier from its own queue, with partial batch failures, and that queue has a DLQ', () => {
    const [notifierId] = functionNamed(plain.json, STACK, notifier.name);
    const mappings = resourcesOfType(plain.json, 'AWS::Lambda::EventSourceMapping').filter(([, m]) => flat(props(m).FunctionName) === `<${notifierId}>`);
    expect(mappings).toHaveLength(1);
    const [, mapping] = mappings[0] ?? ['', { Type: '' }];
    expect(props(mapping)).toMatchObject({ BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'] });
    const queueId = getAttTarget(props(mapping).EventSourceArn) ?? '';
    expect(queueId.startsWith('Notify')).toBe(true);
    const redrive = props(plain.json.Resources[queueId] ?? { Type: '' }).RedrivePolicy as { deadLetterTargetArn: unknown; maxReceiveCount: number };
    expect(getAttTarget(redrive.deadLetterTargetArn)?.startsWith('NotifyDeadLetterQueue')).toBe(true);
  });

  it('lets only sendMessage send notify jobs (resource policy), and gives the notifier no Redis and no posts', () => {
    const policies = resourcesOfType(plain.json, 'AWS::SQS::QueuePolicy').filter(([, p]) => flat(props(p).Queues).includes('NotifyQueue'));
    const text = JSON.stringify(policies.map(([, p]) => props(p).PolicyDocument));
    expect(text).toContain('ArnNotEquals');
    const [sendId] = functionNamed(plain.json, STACK, 'sendMessage');
    const senders = routes.filter((r) => r.access.notifies === true).map((r) => r.name);
    expect(senders).toEqual(['sendMessage']);
    expect(text).toContain(sendId.replace(/Function.*$/, ''));
    const [, fn] = functionNamed(plain.json, STACK, notifier.name);
    expect(props(fn).VpcConfig).toBeUndefined();
  });

  it('gives the notifier the VAPID secret and previews off by default; SNS only with a platform application', () => {
    const [, fn] = functionNamed(plain.json, STACK, notifier.name);
    const variables = (props(fn).Environment as { Variables: Record<string, unknown> }).Variables;
    expect(variables).toMatchObject({ PUSH_PREVIEW: 'false' });
    expect(variables.PUSH_VAPID_SECRET_ID).toBeDefined();
    expect(variables.PUSH_APNS_PLATFORM_ARN).toBeUndefined();
    expect(snsStatements(plain, notifier.name)).toEqual([]);
  });

  it('with platform applications: endpoints made in them, Publish and DeleteEndpoint on their endpoints only', () => {
    const statements = snsStatements(mobile, notifier.name);
    const byAction = new Map(statements.flatMap((s) => actionsOf(s).map((a) => [a, asArray(s.Resource).map(flat).sort()] as const)));
    expect(byAction.get('sns:CreatePlatformEndpoint')).toEqual([APNS, FCM].sort());
    const endpoints = [APNS, FCM].map((arn) => `${arn.replace(':app/', ':endpoint/')}/*`).sort();
    expect(byAction.get('sns:Publish')).toEqual(endpoints);
    expect(byAction.get('sns:DeleteEndpoint')).toEqual(endpoints);
    expect([...byAction.keys()].sort()).toEqual(['sns:CreatePlatformEndpoint', 'sns:DeleteEndpoint', 'sns:Publish']);
    // Registration learns only that a platform exists; it never calls SNS.
    for (const name of ['registerPush', 'sendMessage']) expect(snsStatements(mobile, name)).toEqual([]);
    const [, register] = functionNamed(mobile.json, STACK, 'registerPush');
    expect((props(register).Environment as { Variables: Record<string, unknown> }).Variables).toMatchObject({ PUSH_APNS_PLATFORM_ARN: APNS, PUSH_FCM_PLATFORM_ARN: FCM });
    const [, fn] = functionNamed(mobile.json, STACK, notifier.name);
    expect((props(fn).Environment as { Variables: Record<string, unknown> }).Variables).toMatchObject({ PUSH_PREVIEW: 'true' });
  });

  it('leaves no cdk-nag finding unacknowledged, with or without SNS', () => {
    expect(violationsIn(plain.report)).toEqual([]);
    expect(violationsIn(mobile.report)).toEqual([]);
    expect(violationsIn(made.report)).toEqual([]);
  });
});

describe('what CloudFormation cannot make: the push custom resources', () => {
  it('generates the VAPID pair into its secret at deploy (a custom resource), and outputs the public key', () => {
    const [vapid, ...others] = customResources(plain, 'Custom::RelayVapidKeys');
    expect(others).toEqual([]);
    const { ServiceToken: _token, ...properties } = vapid?.properties ?? {};
    // What it acts on, never a key: the pair is made in the function and stays in the secret.
    expect(Object.keys(properties).sort()).toEqual(['Kind', 'SecretId', 'Subject']);
    expect(properties).toMatchObject({ Kind: 'vapidKeys', Subject: 'mailto:webpush@example.com' });
    expect(refTarget(properties.SecretId)?.startsWith('VapidSecret')).toBe(true);
    expect(getAttTarget(plain.json.Outputs?.VapidPublicKey?.Value)).toBe(vapid?.id);
    expect(customResources(plain, 'Custom::RelayPlatformApplication')).toEqual([]);
    expect(customResources(made, 'Custom::RelayVapidKeys')[0]?.properties.Subject).toBe('mailto:ops@chat.example');
  });

  it('gives the push setup function the VAPID secret only, and SNS only for the applications it makes', () => {
    const [setupId] = functionNamed(plain.json, STACK, 'pushSetup');
    const statements = statementsOf(plain.json, setupId).filter((s) => !actionsOf(s).some((a) => a.startsWith('logs:')));
    expect(statements.map((s) => [actionsOf(s).sort(), asArray(s.Resource).map(flat)])).toEqual([
      [['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue'], [expect.stringMatching(/^<VapidSecret/)]],
    ]);
    const [madeSetupId] = functionNamed(made.json, STACK, 'pushSetup');
    const madeStatements = statementsOf(made.json, madeSetupId);
    const sns = madeStatements.filter((s) => actionsOf(s).some((a) => a.startsWith('sns:')));
    const app = (kind: string, name: string) => `arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:app/${kind}/${name}`;
    expect(sns.flatMap((s) => asArray(s.Resource).map(flat)).sort()).toEqual([app('APNS_SANDBOX', 'relay-ws-dev-apns'), app('GCM', 'relay-ws-dev-fcm')].sort());
    for (const statement of sns) {
      expect(actionsOf(statement).sort()).toEqual(['sns:CreatePlatformApplication', 'sns:DeletePlatformApplication', 'sns:SetPlatformApplicationAttributes']);
    }
    const reads = madeStatements.filter((s) => actionsOf(s).join() === 'secretsmanager:GetSecretValue').flatMap((s) => asArray(s.Resource).map(flat));
    expect(reads.sort()).toEqual([APNS_SECRET, FCM_SECRET].sort());
  });

  it('makes the SNS platform applications from the credentials secrets, and pushes through them', () => {
    const apps = customResources(made, 'Custom::RelayPlatformApplication');
    expect(apps.map(({ properties: { ServiceToken: _token, ...rest } }) => rest).sort((a, b) => String(a.Name).localeCompare(String(b.Name)))).toEqual([
      { Kind: 'platformApplication', Name: 'relay-ws-dev-apns', Platform: 'APNS_SANDBOX', CredentialsSecretId: APNS_SECRET, CredentialsVersion: '2' },
      { Kind: 'platformApplication', Name: 'relay-ws-dev-fcm', Platform: 'GCM', CredentialsSecretId: FCM_SECRET, CredentialsVersion: '2' },
    ]);
    const apnsId = apps.find((a) => a.properties.Name === 'relay-ws-dev-apns')?.id;
    const fcmId = apps.find((a) => a.properties.Name === 'relay-ws-dev-fcm')?.id;
    // The functions read the ARN from the custom resource: CloudFormation deploys them after the application exists.
    for (const name of [notifier.name, 'registerPush']) {
      const variables = environmentOf(made, name);
      expect(getAttTarget(variables.PUSH_APNS_PLATFORM_ARN)).toBe(apnsId);
      expect(getAttTarget(variables.PUSH_FCM_PLATFORM_ARN)).toBe(fcmId);
    }
    const statements = snsStatements(made, notifier.name);
    const byAction = new Map(statements.flatMap((s) => actionsOf(s).map((a) => [a, asArray(s.Resource).map(flat).sort()] as const)));
    expect(byAction.get('sns:Publish')).toEqual([
      'arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:endpoint/APNS_SANDBOX/relay-ws-dev-apns/*',
      'arn:<AWS::Partition>:sns:<AWS::Region>:<AWS::AccountId>:endpoint/GCM/relay-ws-dev-fcm/*',
    ]);
    expect(Object.keys(made.json.Outputs ?? {})).toEqual(expect.arrayContaining(['ApnsPlatformArn', 'FcmPlatformArn', 'VapidPublicKey']));
  });

  it('refuses an application given twice, and the sandbox flag without credentials', () => {
    expect(() => parseSettings({ pushApnsPlatformArn: APNS, pushApnsCredentialsSecretArn: APNS_SECRET })).toThrow(/pushApnsCredentialsSecretArn.*not both/);
    expect(() => parseSettings({ pushFcmPlatformArn: FCM, pushFcmCredentialsSecretArn: FCM_SECRET })).toThrow(/pushFcmCredentialsSecretArn.*not both/);
    expect(() => parseSettings({ pushApnsSandbox: 'true' })).toThrow(/pushApnsSandbox.*only used with pushApnsCredentialsSecretArn/);
    expect(() => parseSettings({ pushVapidSubject: 'mailto:nobody' })).toThrow(/pushVapidSubject/);
    expect(() => parseSettings({ pushApnsCredentialsSecretArn: 'relay-apns' })).toThrow(/complete ARN/);
  });
});
