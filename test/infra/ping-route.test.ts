import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fanoutWorker, mockRoutes, PONG_TEMPLATE, routes } from '../../deploy/routes.js';
import { MOCK_REQUEST_TEMPLATE } from '../../lib/api.js';
import { flat, props, refTarget, removeAssembly, resourcesOfType, synthesize, violationsIn, type Synthesized } from './synth.js';

const STACK = 'RelayWs-dev';

let synth: Synthesized;

beforeAll(() => {
  synth = synthesize({ alarmEmail: 'ops@example.com' }, { bundle: false });
});

afterAll(() => removeAssembly(synth));

/** The route with this key, its logical id and the logical id of its integration. */
function routeNamed(routeKey: string): { routeId: string; integrationId: string } {
  const entry = resourcesOfType(synth.json, 'AWS::ApiGatewayV2::Route').find(([, r]) => props(r).RouteKey === routeKey);
  if (entry === undefined) throw new Error(`no route ${routeKey}`);
  const [routeId, route] = entry;
  return { routeId, integrationId: flat(props(route).Target).replace(/^integrations\/<(.+)>$/, '$1') };
}

describe('the ping route (MOCK integration)', () => {
  it('is in the manifest as a mock route with the pong template', () => {
    expect(mockRoutes).toEqual([{ routeKey: 'ping', responseTemplate: PONG_TEMPLATE }]);
  });

  it('targets a MOCK integration whose request template answers 200', () => {
    const { integrationId } = routeNamed('ping');
    const integration = synth.json.Resources[integrationId];
    expect(integration?.Type).toBe('AWS::ApiGatewayV2::Integration');
    expect(props(integration ?? { Type: '' })).toMatchObject({
      IntegrationType: 'MOCK',
      RequestTemplates: { $default: '{"statusCode":200}' },
      TemplateSelectionExpression: '\\$default',
    });
    expect(MOCK_REQUEST_TEMPLATE).toBe('{"statusCode":200}');
  });

  it('renders the pong template in the $default integration response', () => {
    const { integrationId } = routeNamed('ping');
    const responses = resourcesOfType(synth.json, 'AWS::ApiGatewayV2::IntegrationResponse').filter(
      ([, r]) => refTarget(props(r).IntegrationId) === integrationId,
    );
    expect(responses).toHaveLength(1);
    const [, response] = responses[0] ?? ['', { Type: '' }];
    expect(props(response)).toMatchObject({
      IntegrationResponseKey: '$default',
      TemplateSelectionExpression: '\\$default',
      ResponseTemplates: { $default: PONG_TEMPLATE },
    });
  });

  it('returns the response to the caller (a $default route response)', () => {
    const { routeId } = routeNamed('ping');
    const [, route] = resourcesOfType(synth.json, 'AWS::ApiGatewayV2::Route').find(([id]) => id === routeId) ?? ['', { Type: '' }];
    expect(props(route).RouteResponseSelectionExpression).toBe('$default');
    const responses = resourcesOfType(synth.json, 'AWS::ApiGatewayV2::RouteResponse').filter(
      ([, r]) => refTarget(props(r).RouteId) === routeId,
    );
    expect(responses.map(([, r]) => props(r).RouteResponseKey)).toEqual(['$default']);
  });

  it('has no function: only the manifest routes and the fan-out worker are Lambdas', () => {
    const names = resourcesOfType(synth.json, 'AWS::Lambda::Function').map(([, f]) => String(props(f).FunctionName));
    expect(names).not.toContain(`${STACK}-ping`);
    expect(names.sort()).toEqual([...routes, fanoutWorker].map((spec) => `${STACK}-${spec.name}`).sort());
    const lambdaIntegrations = resourcesOfType(synth.json, 'AWS::ApiGatewayV2::Integration').filter(
      ([, i]) => props(i).IntegrationType === 'AWS_PROXY',
    );
    expect(lambdaIntegrations).toHaveLength(routes.length);
  });

  it('leaves no cdk-nag finding unacknowledged, and acknowledges APIG4 on the route with a reason', () => {
    expect(violationsIn(synth.report)).toEqual([]);
    const route = synth.stack.node.findAll().find((c) => c.node.path.endsWith('/ping-Route'));
    expect(route).toBeDefined();
    expect(JSON.stringify(route?.node.metadata ?? [])).toMatch(/AwsSolutions-APIG4.*MOCK integration/);
  });
});
