import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onlyResource, props, removeAssembly, resourcesOfType, synthesize, violationsIn, type Synthesized } from './synth.js';

let staging: Synthesized;
let prodWithout: Synthesized;
let perAz: Synthesized;

beforeAll(() => {
  staging = synthesize({ stage: 'staging', retainData: 'true' }, { bundle: false });
  prodWithout = synthesize({ stage: 'prod', retainData: 'false' }, { bundle: false });
  perAz = synthesize({ natGateways: '2' }, { bundle: false });
});

afterAll(() => {
  for (const synth of [staging, prodWithout, perAz]) removeAssembly(synth);
});

/** The app secret (the master key that opens stored messages); the Redis AUTH secret is regenerated with its cache. */
function appSecret(synth: Synthesized): { DeletionPolicy?: unknown } {
  const found = resourcesOfType(synth.json, 'AWS::SecretsManager::Secret').filter(([id]) => id.startsWith('AppSecret'));
  expect(found).toHaveLength(1);
  return found[0]?.[1] ?? {};
}

describe('-c retainData (independent of the stage name)', () => {
  it('retains the tables, the secret and the logs of a stage not named prod, and snapshots Redis', () => {
    for (const [, table] of resourcesOfType(staging.json, 'AWS::DynamoDB::Table')) {
      expect(table.DeletionPolicy).toBe('Retain');
      expect(props(table).DeletionProtectionEnabled).toBe(true);
    }
    expect(appSecret(staging).DeletionPolicy).toBe('Retain');
    // VPC flow logs are only for debugging security groups: they go with the stack whatever the setting.
    const logGroups = resourcesOfType(staging.json, 'AWS::Logs::LogGroup').filter(([id]) => !id.includes('FlowLogs'));
    expect(logGroups.length).toBeGreaterThan(0);
    for (const [, group] of logGroups) expect(group.DeletionPolicy).toBe('Retain');
    expect(props(onlyResource(staging.json, 'AWS::ElastiCache::ServerlessCache')[1])).toMatchObject({ FinalSnapshotName: 'relay-ws-staging-final' });
  });

  it('lets a stage named prod clean up after itself when told to', () => {
    for (const [, table] of resourcesOfType(prodWithout.json, 'AWS::DynamoDB::Table')) {
      expect(table.DeletionPolicy).toBe('Delete');
      expect(props(table).DeletionProtectionEnabled).toBe(false);
    }
    expect(appSecret(prodWithout).DeletionPolicy).toBe('Delete');
    expect(props(onlyResource(prodWithout.json, 'AWS::ElastiCache::ServerlessCache')[1]).FinalSnapshotName).toBeUndefined();
  });
});

describe('-c natGateways=2', () => {
  it('puts one NAT gateway in each AZ, each private subnet routed to its own', () => {
    const gateways = resourcesOfType(perAz.json, 'AWS::EC2::NatGateway');
    expect(gateways).toHaveLength(2);
    const targets = resourcesOfType(perAz.json, 'AWS::EC2::Route')
      .map(([, route]) => props(route).NatGatewayId)
      .filter((target) => target !== undefined)
      .map((target) => JSON.stringify(target));
    expect(new Set(targets).size).toBe(2);
    expect(violationsIn(perAz.report)).toEqual([]);
  });
});
