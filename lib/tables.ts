import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, type Attribute } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { tableShapes, type KeyAttribute, type TableName, type TableShape } from '../deploy/tables.js';

export interface TablesProps {
  removalPolicy: RemovalPolicy;
}

const CONSTRUCT_IDS: Record<TableName, string> = {
  connections: 'Connections',
  members: 'Members',
  messages: 'Messages',
  idempotency: 'Idempotency',
  positions: 'Positions',
  pushTargets: 'PushTargets',
};

/** The stage's DynamoDB tables, built from the key schemas the local backend uses too. */
export class Tables extends Construct {
  readonly byName: Readonly<Record<TableName, Table>>;

  constructor(scope: Construct, id: string, props: TablesProps) {
    super(scope, id);
    const entries = (Object.keys(tableShapes) as TableName[]).map(
      (name) => [name, tableFromShape(this, CONSTRUCT_IDS[name], tableShapes[name], props.removalPolicy)] as const,
    );
    this.byName = Object.fromEntries(entries) as Record<TableName, Table>;
  }

  get connections(): Table {
    return this.byName.connections;
  }

  get members(): Table {
    return this.byName.members;
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
  for (const index of shape.localIndexes ?? []) {
    table.addLocalSecondaryIndex({
      indexName: index.name,
      sortKey: attribute(index.sortKey),
      projectionType: index.projection === 'KEYS_ONLY' ? ProjectionType.KEYS_ONLY : ProjectionType.ALL,
    });
  }
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
