import { z } from 'zod';
import { functionEnvironments as schemas, loadConfig, type FunctionName } from '../../lambdas/config.js';
import { flat, props, resourcesOfType, type TemplateJson } from './synth.js';

const fieldSchemas = new Map<string, z.core.$ZodType>(Object.values(schemas).flatMap((schema) => Object.entries(schema.shape)));
const FUNCTION_NAMES = Object.keys(schemas) as FunctionName[];

/**
 * A deployed value for a CloudFormation expression, chosen by the config schema itself: the expression
 * with each Ref / GetAtt replaced by `placeholder` (so `rediss://<Cache.Endpoint.Address>:<…>` keeps its
 * scheme), else a plain placeholder, else an https URL — the first the variable's own schema accepts.
 */
export function deployedValue(name: string, raw: unknown): string {
  if (typeof raw === 'string') return raw;
  const field = fieldSchemas.get(name);
  const rendered = flat(raw).replace(/<[^>]+>/g, 'placeholder');
  const candidates = [rendered, `placeholder-${name.toLowerCase()}`, `https://placeholder.example.com/${name.toLowerCase()}`];
  return candidates.find((candidate) => field !== undefined && z.safeParse(field, candidate).success) ?? rendered;
}

export interface FunctionEnvironment {
  functionName: string;
  /** Its name in the deploy manifest, which picks its environment schema. */
  name: FunctionName;
  /** As in the template (values may be CloudFormation expressions). */
  raw: Record<string, unknown>;
  /** As the function would see it once deployed. */
  deployed: Record<string, string>;
}

export function functionEnvironments(json: TemplateJson): FunctionEnvironment[] {
  // The stage's functions are named; CDK's Provider framework function (it relays custom resource events to
  // pushSetup, and reads no environment of ours) is not.
  const named = resourcesOfType(json, 'AWS::Lambda::Function').filter(([, resource]) => typeof props(resource).FunctionName === 'string');
  return named.map(([id, resource]) => {
    const properties = props(resource);
    const environment = properties.Environment;
    const variables =
      typeof environment === 'object' && environment !== null && 'Variables' in environment ? environment.Variables : undefined;
    const raw: Record<string, unknown> = typeof variables === 'object' && variables !== null ? { ...variables } : {};
    const deployed = Object.fromEntries(Object.entries(raw).map(([name, value]) => [name, deployedValue(name, value)]));
    const functionName = typeof properties.FunctionName === 'string' ? properties.FunctionName : id;
    const name = FUNCTION_NAMES.find((candidate) => functionName.endsWith(`-${candidate}`));
    if (name === undefined) throw new Error(`${functionName} is not a function of the manifest`);
    return { functionName, name, raw, deployed };
  });
}

/** What the function's own services build would do with this environment. */
export function configFor(environment: FunctionEnvironment): Record<string, unknown> {
  return loadConfig(environment.name, environment.deployed);
}
