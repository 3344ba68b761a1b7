import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges one cdk-nag finding on a construct (and everything under it). cdk-nag 3 matches findings
 * exactly — `AwsSolutions-IAM5[Resource::…]` names one wildcard resource — so each acknowledgment covers
 * only the finding it names.
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** A value as cdk-nag writes it in a finding id: `<LogicalId>` for a Ref, `<Id.Attr>` for a GetAtt. */
export function nagNotation(scope: IConstruct, value: string): string {
  return flatten(Stack.of(scope).resolve(value));
}

function flatten(node: unknown): string {
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof node === 'object' && node !== null) {
    if ('Fn::Join' in node && Array.isArray(node['Fn::Join'])) {
      const [delimiter, items] = node['Fn::Join'] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if ('Ref' in node) return `<${flatten(node.Ref)}>`;
    if ('Fn::GetAtt' in node && Array.isArray(node['Fn::GetAtt'])) {
      const [resource, attribute] = node['Fn::GetAtt'] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
  }
  return JSON.stringify(node);
}
