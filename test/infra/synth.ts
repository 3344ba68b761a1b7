import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { createApp } from '../../lib/app.js';
import { REPOSITORY_ROOT } from '../../lib/functions.js';
import type { RelayStack } from '../../lib/relay-stack.js';

/** One synthesized app: its stack, template, assembly and validation report. */
export interface Synthesized {
  stack: RelayStack;
  template: Template;
  json: TemplateJson;
  assembly: CloudAssembly;
  outdir: string;
  report: ValidationReport;
  /** Annotations CDK attached to the stack (warnings, errors), as `cdk synth` would print them. */
  messages: { level: string; id: string; text: string }[];
  /** Wall time of construction (which includes esbuild bundling) plus synthesis, in ms. */
  millis: number;
}

export interface TemplateResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  DependsOn?: string | string[];
}

export interface TemplateJson {
  Resources: Record<string, TemplateResource>;
  Outputs?: Record<string, { Value: unknown; Description?: string }>;
}

export interface ValidationReport {
  pluginReports: { pluginName: string; violations: { ruleName: string; severity: string; violatingConstructs?: { constructPath: string }[] }[] }[];
}

/** The context `cdk synth` uses (cdk.json), so tests see the same feature flags as the CLI. */
function cdkJsonContext(): Record<string, unknown> {
  const cdkJson: unknown = JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'cdk.json'), 'utf8'));
  if (typeof cdkJson === 'object' && cdkJson !== null && 'context' in cdkJson) {
    const { context } = cdkJson;
    if (typeof context === 'object' && context !== null) return { ...context };
  }
  return {};
}

/**
 * Builds and synthesizes the app as `cdk synth -c …` would, cdk-nag included. Without `bundle`, esbuild is
 * skipped (CDK's own `aws:cdk:bundling-stacks` switch) for tests that only read the template.
 */
export function synthesize(context: Record<string, unknown>, options: { bundle: boolean }): Synthesized {
  const started = performance.now();
  const outdir = mkdtempSync(join(tmpdir(), 'relay-infra-'));
  const { app, stack } = createApp({
    outdir,
    context: {
      ...cdkJsonContext(),
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...context,
    },
  });
  const assembly = app.synth();
  const millis = performance.now() - started;
  const json = assembly.getStackArtifact(stack.artifactId).template as TemplateJson;
  const report = JSON.parse(readFileSync(join(assembly.directory, 'validation-report.json'), 'utf8')) as ValidationReport;
  const messages = assembly.getStackArtifact(stack.artifactId).messages.map((m) => ({
    level: String(m.level),
    id: m.id,
    text: typeof m.entry.data === 'string' ? m.entry.data : JSON.stringify(m.entry.data),
  }));
  return { stack, template: Template.fromJSON(json), json, assembly, outdir, report, messages, millis };
}

/** Removes the assembly (bundles included) a test synthesized. */
export function removeAssembly(synthesized: Synthesized | undefined): void {
  if (synthesized !== undefined) rmSync(synthesized.outdir, { recursive: true, force: true });
}

export function resourcesOfType(json: TemplateJson, type: string): [string, TemplateResource][] {
  return Object.entries(json.Resources).filter(([, resource]) => resource.Type === type);
}

/** The logical id of the only resource of a type; fails loudly when there is not exactly one. */
export function onlyResource(json: TemplateJson, type: string): [string, TemplateResource] {
  const found = resourcesOfType(json, type);
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  const [first] = found;
  if (first === undefined) throw new Error(`expected one ${type}`);
  return first;
}

export function props(resource: TemplateResource): Record<string, unknown> {
  return resource.Properties ?? {};
}

/** The Lambda function resource named `{stack}-{name}`. */
export function functionNamed(json: TemplateJson, stackName: string, name: string): [string, TemplateResource] {
  const match = resourcesOfType(json, 'AWS::Lambda::Function').find(
    ([, resource]) => props(resource).FunctionName === `${stackName}-${name}`,
  );
  if (match === undefined) throw new Error(`no function ${stackName}-${name}`);
  return match;
}

export interface PolicyStatementJson {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

/** Every statement of the inline policies attached to a function's role. */
export function statementsOf(json: TemplateJson, functionId: string): PolicyStatementJson[] {
  const fn = json.Resources[functionId];
  const role = fn === undefined ? undefined : props(fn).Role;
  const roleId = getAttTarget(role);
  if (roleId === undefined) throw new Error(`${functionId} has no role reference`);
  return resourcesOfType(json, 'AWS::IAM::Policy')
    .filter(([, policy]) => asArray(props(policy).Roles).some((ref) => refTarget(ref) === roleId))
    .flatMap(([, policy]) => {
      const document = props(policy).PolicyDocument;
      const statements = typeof document === 'object' && document !== null && 'Statement' in document ? document.Statement : [];
      return asArray(statements) as PolicyStatementJson[];
    });
}

export function actionsOf(statement: PolicyStatementJson): string[] {
  return asArray(statement.Action).map(String);
}

export function asArray(value: unknown): unknown[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

export function refTarget(value: unknown): string | undefined {
  return typeof value === 'object' && value !== null && 'Ref' in value && typeof value.Ref === 'string' ? value.Ref : undefined;
}

export function getAttTarget(value: unknown): string | undefined {
  if (typeof value === 'object' && value !== null && 'Fn::GetAtt' in value && Array.isArray(value['Fn::GetAtt'])) {
    const [target] = value['Fn::GetAtt'] as unknown[];
    return typeof target === 'string' ? target : undefined;
  }
  return undefined;
}

/**
 * A CloudFormation value as text, with each Ref / GetAtt shown as `<Target>` — enough to compare ARNs built
 * with Fn::Join against what they should point at.
 */
export function flat(value: unknown): string {
  if (typeof value === 'string') return value;
  const ref = refTarget(value);
  if (ref !== undefined) return `<${ref}>`;
  const att = getAttTarget(value);
  if (att !== undefined && typeof value === 'object' && value !== null && 'Fn::GetAtt' in value && Array.isArray(value['Fn::GetAtt'])) {
    return `<${att}.${String(value['Fn::GetAtt'][1])}>`;
  }
  if (typeof value === 'object' && value !== null && 'Fn::Join' in value && Array.isArray(value['Fn::Join'])) {
    const [delimiter, parts] = value['Fn::Join'] as [string, unknown[]];
    return parts.map(flat).join(delimiter);
  }
  return JSON.stringify(value);
}

/** Every violation in the validation report, from any plugin (cdk-nag or CDK's own), at any severity. */
export function violationsIn(report: ValidationReport): string[] {
  return report.pluginReports.flatMap((plugin) =>
    plugin.violations.map(
      (v) => `${plugin.pluginName} ${v.severity} ${v.ruleName} at ${(v.violatingConstructs ?? []).map((c) => c.constructPath).join(', ')}`,
    ),
  );
}
