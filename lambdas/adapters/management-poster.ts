import { Agent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { ApiGatewayManagementApiClient, PostToConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { ConnectionPoster, PostOutcome } from '../ports.js';
import { awsErrorName, httpStatusOf } from './aws-errors.js';

export interface PostFailure {
  connectionId: string;
  errorName: string;
  status: number | undefined;
}

/**
 * Posts frames through the API Gateway Management API of one endpoint. A 410 is `gone` (checked by the v3
 * error's `name`); throttling and 5xx are retried by the SDK (standard retry, backoff), then reported `failed`.
 */
export class ManagementApiPoster implements ConnectionPoster {
  constructor(
    private readonly client: ApiGatewayManagementApiClient,
    private readonly onFailure: (failure: PostFailure) => void,
  ) {}

  async post(connectionId: string, data: string): Promise<PostOutcome> {
    try {
      await this.client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: Buffer.from(data, 'utf8') }));
      return 'delivered';
    } catch (error) {
      const name = awsErrorName(error);
      if (name === 'GoneException') return 'gone';
      this.onFailure({ connectionId, errorName: name, status: httpStatusOf(error) });
      return 'failed';
    }
  }
}

/** One keep-alive client per endpoint, made once per container. */
export function managementClientFor(endpoint: string, region: string, maxSockets: number): ApiGatewayManagementApiClient {
  const agentOptions = { keepAlive: true, maxSockets };
  return new ApiGatewayManagementApiClient({
    endpoint,
    region,
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({
      httpsAgent: new Agent(agentOptions),
      httpAgent: new HttpAgent(agentOptions),
      connectionTimeout: 2000,
      requestTimeout: 5000,
    }),
  });
}
