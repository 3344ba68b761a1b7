import { vi } from 'vitest';
import { RelayClient, type ReceivedMessage, type RelayClientOptions } from '../../../client/index.js';
import { FakeRelayServer } from '../../support/fake-relay.js';

/** Lets the fake sockets and the client's promises run, moving the fake clock by `ms`. */
export async function run(ms = 0): Promise<void> {
  await vi.advanceTimersByTimeAsync(ms);
}

export interface Harness {
  server: FakeRelayServer;
  client: RelayClient;
  received: ReceivedMessage[];
  seqs(conversationId?: string): number[];
}

/** A client on a scripted fake server (fake timers must be on), connected and subscribed to `conversations`. */
export async function connected(conversations: string[] = ['c1'], options: Partial<RelayClientOptions> = {}): Promise<Harness> {
  const server = new FakeRelayServer();
  const client = new RelayClient({
    url: 'ws://relay.test/local',
    clientId: 'phone',
    token: () => 'token-1',
    WebSocket: server.WebSocket,
    random: () => 0.5,
    conversations,
    ...options,
  });
  const received: ReceivedMessage[] = [];
  client.on('message', (message) => {
    received.push(message);
  });
  const ready = client.connect();
  await run();
  await ready;
  return {
    server,
    client,
    received,
    seqs: (conversationId) => received.filter((m) => conversationId === undefined || m.conversationId === conversationId).map((m) => m.seq),
  };
}
