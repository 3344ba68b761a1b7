import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifier, routes } from '../../deploy/routes.js';
import { stackNameFor } from '../../lib/settings.js';
import {
  actionsOf,
  asArray,
  flat,
  functionNamed,
  getAttTarget,
  props,
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

let plain: Synthesized;
let mobile: Synthesized;

beforeAll(() => {
  plain = synthesize({}, { bundle: false });
  mobile = synthesize({ pushApnsPlatformArn: APNS, pushFcmPlatformArn: FCM, pushPreview: 'true' }, { bundle: false });
});

afterAll(() => {
  removeAssembly(plain);
  removeAssembly(mobile);
});

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
  });
});
