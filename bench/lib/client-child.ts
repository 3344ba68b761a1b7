import { isPoolRequest, type PoolReply, type PoolRequest } from './pool-protocol.js';
import { SocketSet } from './sockets.js';

/**
 * The receiving clients in a process of their own, so that the gateway, the handlers and the clients do not
 * share one event loop. Driven by the bench over IPC (see pool-protocol.ts); exits when told to close or when
 * the bench goes away.
 */
const sockets = new SocketSet();

function reply(message: PoolReply): void {
  process.send?.(message);
}

async function handle(request: PoolRequest): Promise<void> {
  const report = (count: number) => reply({ kind: 'progress', count });
  switch (request.op) {
    case 'open':
      await sockets.open(request.urls, request.concurrency, report);
      reply({ kind: 'done', id: request.id, delivered: sockets.snapshot() });
      return;
    case 'reset':
      sockets.reset();
      reply({ kind: 'done', id: request.id, delivered: sockets.snapshot() });
      return;
    case 'wait':
      reply({ kind: 'done', id: request.id, delivered: await sockets.waitFor(request.total, request.timeoutMs, report) });
      return;
    case 'drop':
      await sockets.close();
      reply({ kind: 'done', id: request.id, delivered: sockets.snapshot() });
      return;
    case 'close':
      await sockets.close();
      reply({ kind: 'done', id: request.id, delivered: sockets.snapshot() });
      process.disconnect();
      return;
  }
}

process.on('message', (message: unknown) => {
  if (!isPoolRequest(message)) return;
  handle(message).catch((error: unknown) =>
    reply({ kind: 'failed', id: message.id, message: error instanceof Error ? error.message : String(error) }),
  );
});
process.on('disconnect', () => {
  void sockets.close().finally(() => process.exit(0));
});
reply({ kind: 'ready' });
