import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, type Attribute } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { connectionsTable, membersTable, type KeyAttribute, type TableShape } from '../deploy/tables.js';

export interface TablesProps {
  removalPolicy: RemovalPolicy;
}

/** The two DynamoDB tables, built from the key schemas the local dev server uses too. */
export class Tables extends Construct {
  readonly connections: Table;
  readonly members: Table;

  constructor(scope: Construct, id: string, props: TablesProps) {
    super(scope, id);
    this.connections = tableFromShape(this, 'Connections', connectionsTable, props.removalPolicy);
    this.members = tableFromShape(this, 'Members', membersTable, props.removalPolicy);
  }
}

function attribute(key: KeyAttribute): Attribute {
  return { name: key.name, type: key.type === 'S' ? AttributeType.STRING : AttributeType.NUMBER };
}

function tableFromShape(scope: Construct, id: string, shape: TableShape, removalPolicy: RemovalPolicy): Table {
  const table = new Table(scope, id, {
    partitionKey: attribute(shape.partitionKey),
    ...(shape.sortKey === undefined ? {} : { sortKey: attribute(shape.sortKey) }),
    ...(shape.ttlAttribute === undefined ? {} : { timeToLiveAttribute: shape.ttlAttribute }),
    billingMode: BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    // A retained table also keeps its data safe from a mistaken delete while the stack still exists.
    deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
    removalPolicy,
  });
  for (const index of shape.indexes) {
    table.addGlobalSecondaryIndex({
      indexName: index.name,
      partitionKey: attribute(index.partitionKey),
      ...(index.sortKey === undefined ? {} : { sortKey: attribute(index.sortKey) }),
      projectionType: ProjectionType.ALL,
    });
  }
  return table;
}
