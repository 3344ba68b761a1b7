/** API Gateway WebSocket proxy events, shaped like AWS's, for handler tests. */
export function connectEvent(connectionId: string, query: Record<string, string>, headers: Record<string, string> = {}) {
  return {
    headers: { Host: 'abc123.execute-api.us-east-1.amazonaws.com', ...headers },
    queryStringParameters: query,
    isBase64Encoded: false,
    requestContext: {
      routeKey: '$connect',
      eventType: 'CONNECT',
      connectionId,
      requestId: `req-${connectionId}`,
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      stage: 'test',
      apiId: 'abc123',
      connectedAt: Date.now(),
      messageDirection: 'IN',
    },
  };
}

export function messageEvent(connectionId: string, body: unknown, routeKey = '$default') {
  return {
    body: typeof body === 'string' ? body : JSON.stringify(body),
    isBase64Encoded: false,
    requestContext: {
      routeKey,
      eventType: 'MESSAGE',
      messageId: `msg-${Math.random().toString(36).slice(2)}`,
      connectionId,
      requestId: `req-${connectionId}-${Math.random().toString(36).slice(2)}`,
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      stage: 'test',
      apiId: 'abc123',
      messageDirection: 'IN',
    },
  };
}

export function disconnectEvent(connectionId: string) {
  return {
    headers: { Host: 'abc123.execute-api.us-east-1.amazonaws.com' },
    isBase64Encoded: false,
    requestContext: {
      routeKey: '$disconnect',
      eventType: 'DISCONNECT',
      connectionId,
      requestId: `req-${connectionId}-d`,
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      stage: 'test',
      apiId: 'abc123',
      disconnectStatusCode: 1000,
      disconnectReason: '',
    },
  };
}

/** The frame a two-way route answered, parsed. */
export function answerOf(result: { statusCode: number; body?: string }): Record<string, unknown> {
  if (result.body === undefined) throw new Error(`no answer (status ${result.statusCode})`);
  const parsed: unknown = JSON.parse(result.body);
  if (typeof parsed !== 'object' || parsed === null) throw new Error('answer is not an object');
  return parsed as Record<string, unknown>;
}
