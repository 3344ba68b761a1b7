import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DynamoCounts {
  /** Calls by operation (GetItem, Query, …). */
  calls: Record<string, number>;
  readUnits: number;
  writeUnits: number;
  /** Capacity units by operation. */
  unitsByOperation: Record<string, number>;
  /** Calls answered with an error, by operation and error type (`PutItem ConditionalCheckFailedException`). */
  failures: Record<string, number>;
}

const READS = new Set(['GetItem', 'Query', 'Scan', 'BatchGetItem', 'TransactGetItems']);
const WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);

/**
 * A counting proxy in front of dynalite: while counting, it asks for ReturnConsumedCapacity=TOTAL on every data
 * call (dynalite computes it as DynamoDB does) and adds up calls and capacity units. Responses pass unchanged.
 */
export class DynamoCountingProxy {
  counting = false;
  endpoint = '';
  private counts: DynamoCounts = { calls: {}, readUnits: 0, writeUnits: 0, unitsByOperation: {}, failures: {} };
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly server: Server;

  private constructor(private readonly upstream: URL) {
    this.server = createServer((req, res) => {
      void this.forward(req, res);
    });
  }

  static async start(target: string): Promise<DynamoCountingProxy> {
    const proxy = new DynamoCountingProxy(new URL(target));
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = proxy.server.address() as AddressInfo;
    proxy.endpoint = `http://127.0.0.1:${port}`;
    return proxy;
  }

  private async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readAll(req);
    const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? 'unknown';
    const counting = this.counting && (READS.has(operation) || WRITES.has(operation));
    let body = raw;
    if (counting) {
      const input: unknown = JSON.parse(raw.toString('utf8'));
      if (typeof input === 'object' && input !== null) body = Buffer.from(JSON.stringify({ ...input, ReturnConsumedCapacity: 'TOTAL' }));
    }
    const forward = request(
      {
        agent: this.agent,
        hostname: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'content-length': String(body.length) },
      },
      (upstreamRes) => {
        void readAll(upstreamRes).then((answer) => {
          if (counting) this.record(operation, answer, upstreamRes.statusCode ?? 500);
          res.writeHead(upstreamRes.statusCode ?? 500, upstreamRes.headers);
          res.end(answer);
        });
      },
    );
    forward.once('error', () => res.destroy());
    forward.end(body);
  }

  reset(): void {
    this.counts = { calls: {}, readUnits: 0, writeUnits: 0, unitsByOperation: {}, failures: {} };
  }

  snapshot(): DynamoCounts {
    return {
      calls: { ...this.counts.calls },
      readUnits: this.counts.readUnits,
      writeUnits: this.counts.writeUnits,
      unitsByOperation: { ...this.counts.unitsByOperation },
      failures: { ...this.counts.failures },
    };
  }

  async close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private record(operation: string, answer: Buffer, status: number): void {
    this.counts.calls[operation] = (this.counts.calls[operation] ?? 0) + 1;
    let units = 0;
    try {
      const output: unknown = JSON.parse(answer.toString('utf8'));
      if (status >= 400) {
        const type = typeof output === 'object' && output !== null && '__type' in output ? String(output.__type).split('#').pop() : `HTTP ${status}`;
        const key = `${operation} ${type ?? status}`;
        this.counts.failures[key] = (this.counts.failures[key] ?? 0) + 1;
      }
      const consumed = typeof output === 'object' && output !== null && 'ConsumedCapacity' in output ? output.ConsumedCapacity : undefined;
      for (const entry of Array.isArray(consumed) ? consumed : [consumed]) {
        if (typeof entry === 'object' && entry !== null && 'CapacityUnits' in entry && typeof entry.CapacityUnits === 'number') units += entry.CapacityUnits;
      }
    } catch {
      // An error answer has no capacity.
    }
    this.counts.unitsByOperation[operation] = (this.counts.unitsByOperation[operation] ?? 0) + units;
    if (READS.has(operation)) this.counts.readUnits += units;
    else this.counts.writeUnits += units;
  }
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}
