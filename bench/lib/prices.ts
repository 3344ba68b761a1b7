/**
 * AWS list prices (us-east-1) the cost figures use, from each service's pricing page on aws.amazon.com: API
 * Gateway (/api-gateway/pricing), Lambda (/lambda/pricing), DynamoDB (/dynamodb/pricing/on-demand), ElastiCache
 * (/elasticache/pricing), CloudWatch (/cloudwatch/pricing), VPC NAT gateways and public IPv4 (/vpc/pricing),
 * Secrets Manager (/secrets-manager/pricing). Check them for your region; free tiers are ignored.
 */
export const PRICES = {
  apiGatewayPerMillionMessages: 1.0,
  apiGatewayPerMillionConnectionMinutes: 0.25,
  lambdaArmPerGbSecond: 0.0000133334,
  lambdaPerMillionRequests: 0.2,
  /** On-demand request prices since AWS halved them in November 2024. */
  dynamoPerMillionReadUnits: 0.125,
  dynamoPerMillionWriteUnits: 0.625,
  /** Standard table class storage (the first 25 GB a month are free; ignored here). */
  dynamoStoragePerGbMonth: 0.25,
  /** ElastiCache Serverless for Valkey: data stored, per GB-hour (minimum 100 MB billed, see docs/deploy.md). */
  valkeyStoragePerGbHour: 0.084,
  valkeyPerMillionEcpu: 0.0023,
  /** CloudWatch Logs, standard class: ingestion, and storage (billed on the compressed size, so at most this). */
  cloudWatchLogsIngestionPerGb: 0.5,
  cloudWatchLogsStoragePerGbMonth: 0.03,
  /** A standard-resolution alarm is billed per metric it reads: a metric math alarm pays for each of its metrics. */
  cloudWatchAlarmPerMetricMonth: 0.1,
  /** Each EMF metric (a name with one set of dimension values) is a custom metric. */
  cloudWatchCustomMetricPerMonth: 0.3,
  /** Beyond the account's first three dashboards. */
  cloudWatchDashboardPerMonth: 3.0,
  natGatewayPerHour: 0.045,
  natGatewayPerGb: 0.045,
  publicIpv4PerHour: 0.005,
  secretPerMonth: 0.4,
} as const;

/**
 * The on-demand request prices the durable-store comparison is asked in ($1.25 per million writes, $0.25 per
 * million reads): DynamoDB's list price before the November 2024 cut, twice the current one. Reported next to
 * the current prices so the request share can be read both ways.
 */
export const DYNAMO_REQUEST_PRICES_ASKED = { perMillionReadUnits: 0.25, perMillionWriteUnits: 1.25 } as const;
export const DYNAMO_REQUEST_PRICES_NOW = { perMillionReadUnits: PRICES.dynamoPerMillionReadUnits, perMillionWriteUnits: PRICES.dynamoPerMillionWriteUnits } as const;
export type DynamoRequestPrices = { perMillionReadUnits: number; perMillionWriteUnits: number };

/** Bytes in a billed GB (AWS bills storage in binary gigabytes). */
export const GB = 1024 ** 3;
/** DynamoDB bills each stored item (and each index entry) with 100 bytes of overhead. */
export const DYNAMO_ITEM_OVERHEAD_BYTES = 100;
/** The month DynamoDB storage is billed by, in days and hours. */
export const MONTH_DAYS = 30.4;
export const MONTH_HOURS = 730;

/** What one event costs, in counts. */
export interface EventCounts {
  /** WebSocket messages API Gateway bills: the frame in, route responses, and every post (each ≤ 32 KB). */
  gatewayMessages: number;
  invocations: number;
  /** Billed duration of each invocation, ms (rounded up to the millisecond, as Lambda bills). */
  durationMs: number;
  memoryMb: number;
  readUnits: number;
  writeUnits: number;
}

export interface CostPerMillion {
  apiGateway: number;
  lambdaRequests: number;
  lambdaCompute: number;
  dynamo: number;
  total: number;
}

/** Dollars per million events. */
export function costPerMillion(counts: EventCounts, dynamoPrices: DynamoRequestPrices = DYNAMO_REQUEST_PRICES_NOW): CostPerMillion {
  const apiGateway = counts.gatewayMessages * PRICES.apiGatewayPerMillionMessages;
  const lambdaRequests = counts.invocations * PRICES.lambdaPerMillionRequests;
  const gbSeconds = counts.invocations * (counts.memoryMb / 1024) * (Math.ceil(counts.durationMs) / 1000);
  const lambdaCompute = gbSeconds * PRICES.lambdaArmPerGbSecond * 1e6;
  const dynamo = counts.readUnits * dynamoPrices.perMillionReadUnits + counts.writeUnits * dynamoPrices.perMillionWriteUnits;
  return { apiGateway, lambdaRequests, lambdaCompute, dynamo, total: apiGateway + lambdaRequests + lambdaCompute + dynamo };
}

/** Dollars for keeping `bytes` per message in DynamoDB for `days`, per million messages. */
export function dynamoStoragePerMillion(bytes: number, days: number): number {
  return ((bytes * 1e6) / GB) * PRICES.dynamoStoragePerGbMonth * (days / MONTH_DAYS);
}

/** Dollars for keeping `bytes` per message in ElastiCache Serverless (Valkey) for `hours`, per million messages. */
export function valkeyStoragePerMillion(bytes: number, hours: number): number {
  return ((bytes * 1e6) / GB) * PRICES.valkeyStoragePerGbHour * hours;
}

/** Dollars for CloudWatch Logs lines of `bytes` each, per million lines: ingested once, then stored for `days`. */
export function logsPerMillion(bytes: number, days: number): { ingestion: number; storage: number } {
  const gb = (bytes * 1e6) / GB;
  return { ingestion: gb * PRICES.cloudWatchLogsIngestionPerGb, storage: gb * PRICES.cloudWatchLogsStoragePerGbMonth * (days / MONTH_DAYS) };
}

/**
 * DynamoDB's item size: attribute names plus values (strings in UTF-8 bytes; numbers about one byte per two
 * significant digits plus one).
 */
export function itemBytes(item: Record<string, unknown>): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name, 'utf8');
    if (typeof value === 'string') bytes += Buffer.byteLength(value, 'utf8');
    else if (typeof value === 'number') bytes += Math.ceil(String(Math.abs(value)).replace(/^0+|\.|0+$/g, '').length / 2) + 1;
    else if (typeof value === 'boolean') bytes += 1;
  }
  return bytes;
}

/** Read units of an eventually consistent Scan of a table: its size in 4 KB units, halved (1 MB pages). */
export function scanReadUnits(rows: number, bytesPerRow: number): number {
  const pageBytes = 1024 * 1024;
  const total = rows * bytesPerRow;
  let units = 0;
  for (let read = 0; read < total; read += pageBytes) units += Math.ceil(Math.min(pageBytes, total - read) / 4096) * 0.5;
  return units;
}
