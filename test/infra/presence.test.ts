import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { presenceSweeper, routes } from '../../deploy/routes.js';
import { SWEEPER_MEMORY_MB, SWEEPER_TIMEOUT } from '../../lib/relay-stack.js';
import { flat, functionNamed, props, resourcesOfType, removeAssembly, synthesize, violationsIn, type Synthesized } from './synth.js';

const STACK = 'RelayWs-dev';

let synth: Synthesized;

beforeAll(() => {
  synth = synthesize({ alarmEmail: 'ops@example.com' }, { bundle: false });
});

afterAll(() => removeAssembly(synth));

describe('presence in the stack', () => {
  it('routes ping and getPresence to their own functions (ping is no MOCK route: it keeps presence)', () => {
    expect(routes.map((r) => r.routeKey)).toEqual(expect.arrayContaining(['ping', 'getPresence']));
    const mocks = resourcesOfType(synth.json, 'AWS::ApiGatewayV2::Integration').filter(([, i]) => props(i).IntegrationType === 'MOCK');
    expect(mocks).toEqual([]);
    expect(resourcesOfType(synth.json, 'AWS::ApiGatewayV2::IntegrationResponse')).toEqual([]);
  });

  it('runs the sweeper every minute from an EventBridge rule, with no retry of a missed run', () => {
    const [sweeperId, sweeper] = functionNamed(synth.json, STACK, presenceSweeper.name);
    const rules = resourcesOfType(synth.json, 'AWS::Events::Rule');
    expect(rules).toHaveLength(1);
    const [, rule] = rules[0] ?? ['', { Type: '' }];
    expect(props(rule)).toMatchObject({ ScheduleExpression: 'rate(1 minute)', State: 'ENABLED' });
    const targets = props(rule).Targets as { Arn: unknown; RetryPolicy?: { MaximumRetryAttempts: number } }[];
    expect(targets.map((t) => flat(t.Arn))).toEqual([`<${sweeperId}.Arn>`]);
    expect(targets[0]?.RetryPolicy?.MaximumRetryAttempts).toBe(0);
    const permissions = resourcesOfType(synth.json, 'AWS::Lambda::Permission').filter(
      ([, p]) => props(p).Principal === 'events.amazonaws.com' && flat(props(p).FunctionName) === `<${sweeperId}.Arn>`,
    );
    expect(permissions).toHaveLength(1);
    expect(Number(props(sweeper).Timeout)).toBe(SWEEPER_TIMEOUT.toSeconds());
    expect(Number(props(sweeper).MemorySize)).toBe(SWEEPER_MEMORY_MB);
  });

  it("gives the sweeper the stage's callback URL and places it in the VPC beside Redis", () => {
    const [, sweeper] = functionNamed(synth.json, STACK, presenceSweeper.name);
    const variables = (props(sweeper).Environment as { Variables: Record<string, unknown> }).Variables;
    expect(flat(variables.CALLBACK_URL)).toMatch(/^https:\/\/<.+>\.execute-api\.<AWS::Region>\.<AWS::URLSuffix>\/dev$/);
    expect(props(sweeper).VpcConfig).toBeDefined();
  });

  it('leaves no cdk-nag finding unacknowledged', () => {
    expect(violationsIn(synth.report)).toEqual([]);
  });
});
