/** AWS list prices (us-east-1) the cost figures use. */
export const PRICES = {
  apiGatewayPerMillionMessages: 1.0,
  apiGatewayPerMillionConnectionMinutes: 0.25,
  lambdaArmPerGbSecond: 0.0000133334,
  lambdaPerMillionRequests: 0.2,
  dynamoPerMillionReadUnits: 0.125,
  dynamoPerMillionWriteUnits: 0.625,
} as const;

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
export function costPerMillion(counts: EventCounts): CostPerMillion {
  const apiGateway = counts.gatewayMessages * PRICES.apiGatewayPerMillionMessages;
  const lambdaRequests = counts.invocations * PRICES.lambdaPerMillionRequests;
  const gbSeconds = counts.invocations * (counts.memoryMb / 1024) * (Math.ceil(counts.durationMs) / 1000);
  const lambdaCompute = gbSeconds * PRICES.lambdaArmPerGbSecond * 1e6;
  const dynamo = counts.readUnits * PRICES.dynamoPerMillionReadUnits + counts.writeUnits * PRICES.dynamoPerMillionWriteUnits;
  return { apiGateway, lambdaRequests, lambdaCompute, dynamo, total: apiGateway + lambdaRequests + lambdaCompute + dynamo };
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
