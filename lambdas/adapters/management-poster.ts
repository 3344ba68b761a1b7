import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { ConnectionPoster, PostOutcome } from '../ports.js';
import { isWellFormed } from '../protocol.js';

export interface PostFailure {
  connectionId: string;
  errorName: string;
  status: number | undefined;
}

export interface ManagementPosterOptions {
  /** Management API base URL: `https://{domainName}/{stage}` or a custom domain's callback URL. */
  endpoint: string;
  region: string;
  /** Static credentials or a provider (e.g. the Lambda environment's); resolved values are kept until near expiry. */
  credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Sockets kept open to the endpoint (the bound on concurrent posts). */
  maxSockets: number;
  /** Attempts per post, as the SDK's standard retry: throttling, 5xx and network errors are retried. */
  maxAttempts?: number;
  /** Time allowed for one attempt without socket activity. */
  requestTimeoutMs?: number;
  onFailure(failure: PostFailure): void;
}

type Reply = { status: number; errorType: string | undefined } | { status: undefined; errorType: string };

/** Credentials are refreshed this long before they expire. */
const REFRESH_MARGIN_MS = 5 * 60_000;
const BASE_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2_000;

/**
 * PostToConnection through the API Gateway Management API of one endpoint, without the SDK client's per-call
 * middleware stack (which cost ~3x the CPU per post: see BENCHMARKS.md): the request is signed by the SDK's own
 * SigV4 signer (`@smithy/signature-v4`, the one the client uses) and sent over one keep-alive agent tuned for
 * many small posts to one host. A 410 is `gone` (its row is then pruned by the domain); 429, 5xx and network
 * errors are retried with jittered backoff as the SDK's standard retry does, then reported `failed`.
 */
export class ManagementApiPoster implements ConnectionPoster {
  private readonly signer: SignatureV4;
  private readonly agent: HttpAgent;
  private readonly send: (options: RequestOptions, onReply: (res: IncomingMessage) => void) => ClientRequest;
  private readonly base: URL;
  private readonly basePath: string;
  private readonly maxAttempts: number;
  private readonly requestTimeoutMs: number;

  constructor(private readonly options: ManagementPosterOptions) {
    this.base = new URL(options.endpoint);
    this.basePath = this.base.pathname.replace(/\/+$/, '');
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    const agentOptions = { keepAlive: true, keepAliveMsecs: 1_000, maxSockets: options.maxSockets, scheduling: 'lifo' as const };
    const secure = this.base.protocol === 'https:';
    this.agent = secure ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    this.send = secure ? httpsRequest : httpRequest;
    this.signer = new SignatureV4({
      service: 'execute-api',
      region: options.region,
      credentials: memoize(options.credentials),
      sha256: Sha256,
    });
  }

  async post(connectionId: string, data: string): Promise<PostOutcome> {
    if (!isWellFormed(connectionId)) {
      // No API Gateway id looks like this; it cannot even be put in a URL. Never throw: report it.
      this.options.onFailure({ connectionId: '(malformed id)', errorName: 'MalformedConnectionId', status: undefined });
      return 'failed';
    }
    const body = Buffer.from(data, 'utf8');
    let reply: Reply = { status: undefined, errorType: 'NotAttempted' };
    for (let attempt = 1; attempt <= this.maxAttempts; attempt += 1) {
      // Signing can fail too (no credentials): that is an outcome to report, never an exception.
      reply = await this.attempt(connectionId, body).catch(
        (error: unknown): Reply => ({ status: undefined, errorType: error instanceof Error ? error.name : 'SigningError' }),
      );
      if (reply.status !== undefined && reply.status < 300) return 'delivered';
      if (reply.status === 410) return 'gone';
      const retryable = reply.status === undefined || reply.status === 429 || reply.status >= 500;
      if (!retryable || attempt === this.maxAttempts) break;
      const ceiling = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
    }
    this.options.onFailure({ connectionId, errorName: reply.errorType ?? `Http${reply.status ?? 0}`, status: reply.status });
    return 'failed';
  }

  /** Closes the kept-alive sockets (tests, the dev server's shutdown). */
  destroy(): void {
    this.agent.destroy();
  }

  private async attempt(connectionId: string, body: Buffer): Promise<Reply> {
    const port = this.base.port === '' ? undefined : Number(this.base.port);
    const signed = await this.signer.sign({
      method: 'POST',
      protocol: this.base.protocol,
      hostname: this.base.hostname,
      ...(port === undefined ? {} : { port }),
      path: `${this.basePath}/@connections/${encodeURIComponent(connectionId)}`,
      query: {},
      headers: {
        host: this.base.host,
        'content-type': 'application/octet-stream',
        'content-length': String(body.length),
      },
      body,
    });
    return await new Promise<Reply>((resolve) => {
      const req = this.send(
        {
          agent: this.agent,
          method: 'POST',
          hostname: this.base.hostname,
          port,
          path: signed.path,
          headers: signed.headers,
          timeout: this.requestTimeoutMs,
        },
        (res) => {
          const header = res.headers['x-amzn-errortype'];
          const errorType = typeof header === 'string' ? header.split(':')[0] : undefined;
          res.resume();
          res.once('end', () => resolve({ status: res.statusCode ?? 0, errorType }));
          res.once('error', (error: Error) => resolve({ status: undefined, errorType: error.name }));
        },
      );
      req.once('timeout', () => req.destroy(Object.assign(new Error('request timed out'), { name: 'TimeoutError' })));
      req.once('error', (error: NodeJS.ErrnoException) => resolve({ status: undefined, errorType: error.code ?? error.name }));
      req.end(body);
    });
  }
}

/** Resolves a credentials provider once and again only when the value is about to expire. */
function memoize(source: AwsCredentialIdentity | AwsCredentialIdentityProvider): () => Promise<AwsCredentialIdentity> {
  if (typeof source !== 'function') return async () => source;
  let current: Promise<AwsCredentialIdentity> | undefined;
  return async () => {
    const cached = current === undefined ? undefined : await current.catch(() => undefined);
    if (cached !== undefined && (cached.expiration === undefined || cached.expiration.getTime() - Date.now() > REFRESH_MARGIN_MS)) {
      return cached;
    }
    current = source();
    return current;
  };
}
