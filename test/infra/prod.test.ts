import { tableShapes } from '../../deploy/tables.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFor, functionEnvironments } from './environment.js';
import { onlyResource, props, removeAssembly, resourcesOfType, synthesize, violationsIn, type Synthesized } from './synth.js';

let synth: Synthesized;

beforeAll(() => {
  synth = synthesize({ stage: 'prod', logRetentionDays: '90', maxReceiveCount: '3', throttleRate: '200', throttleBurst: '400' }, { bundle: false });
});

afterAll(() => removeAssembly(synth));

describe('-c stage=prod', () => {
  it('is its own stack, RelayWs-prod, serving the prod stage', () => {
    expect(synth.stack.stackName).toBe('RelayWs-prod');
    synth.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: 'prod',
      DefaultRouteSettings: { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 },
    });
  });

  it('retains every table (and protects them from deletion): the message log is the record', () => {
    const tables = resourcesOfType(synth.json, 'AWS::DynamoDB::Table');
    expect(tables).toHaveLength(Object.keys(tableShapes).length);
    for (const [, table] of tables) {
      expect(table.DeletionPolicy).toBe('Retain');
      expect(table.UpdateReplacePolicy).toBe('Retain');
      expect(props(table).DeletionProtectionEnabled).toBe(true);
    }
  });

  it('retains the app and JWT secrets: the app secret decrypts the stored messages, the JWT secret signs the tokens in use', () => {
    const generated = resourcesOfType(synth.json, 'AWS::SecretsManager::Secret').filter(([, s]) => /masterKey|jwtSecret/.test(JSON.stringify(props(s).GenerateSecretString)));
    expect(generated).toHaveLength(2);
    for (const [, secret] of generated) expect(secret.DeletionPolicy).toBe('Retain');
  });

  it('snapshots Redis daily and once more on delete', () => {
    const [, cache] = onlyResource(synth.json, 'AWS::ElastiCache::ServerlessCache');
    expect(props(cache)).toMatchObject({ SnapshotRetentionLimit: 7, FinalSnapshotName: 'relay-ws-prod-final' });
  });

  it('applies the context: log retention and maxReceiveCount', () => {
    for (const [, group] of resourcesOfType(synth.json, 'AWS::Logs::LogGroup')) expect(props(group).RetentionInDays).toBe(90);
    synth.template.hasResourceProperties('AWS::SQS::Queue', { RedrivePolicy: { maxReceiveCount: 3 } });
  });

  it('keeps every function loadable and cdk-nag clean', () => {
    for (const environment of functionEnvironments(synth.json)) expect(() => configFor(environment)).not.toThrow();
    expect(violationsIn(synth.report)).toEqual([]);
  });
});
