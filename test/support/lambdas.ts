import { lazyServices, Scope, type Route, type ServiceSource } from '../../lambdas/context/lazy.js';
import { route as ack } from '../../lambdas/handlers/ack.js';
import { route as connect } from '../../lambdas/handlers/connect.js';
import { route as deleteMessage } from '../../lambdas/handlers/delete-message.js';
import { route as disconnect } from '../../lambdas/handlers/disconnect.js';
import { route as editMessage } from '../../lambdas/handlers/edit-message.js';
import { route as fanoutWorker } from '../../lambdas/handlers/fanout-worker.js';
import { route as getHistory } from '../../lambdas/handlers/get-history.js';
import { route as getConversations } from '../../lambdas/handlers/get-conversations.js';
import { route as getPresence } from '../../lambdas/handlers/get-presence.js';
import { route as getUnacked } from '../../lambdas/handlers/get-unacked.js';
import { route as markRead } from '../../lambdas/handlers/mark-read.js';
import { route as ping } from '../../lambdas/handlers/ping.js';
import { route as presenceSweeper } from '../../lambdas/handlers/presence-sweeper.js';
import { route as registerPush } from '../../lambdas/handlers/register-push.js';
import { route as unregisterPush } from '../../lambdas/handlers/unregister-push.js';
import { route as sendMessage } from '../../lambdas/handlers/send-message.js';
import { route as subscribe } from '../../lambdas/handlers/subscribe.js';
import { route as typing } from '../../lambdas/handlers/typing.js';
import { route as unsubscribe } from '../../lambdas/handlers/unsubscribe.js';
import type { Services } from '../../lambdas/ports.js';

/**
 * The handlers as Lambda runs them — each route's services built lazily on its first event — but from the
 * test's environment and with services the test gives. `reset()` is a fresh set of containers: every route
 * builds again on its next event (and what the previous build opened is closed).
 */
export function testLambdas(env: () => Readonly<Record<string, string | undefined>> = () => process.env, given: Partial<Services> = {}) {
  let scope = new Scope();
  const slot = <S, H>(route: Route<S, H>) => {
    let source: ServiceSource<S> = lazyServices(() => route.build(env(), scope, given as Partial<S>));
    return {
      handler: route.create(() => source()),
      services: () => source(),
      renew: () => {
        source = lazyServices(() => route.build(env(), scope, given as Partial<S>));
      },
    };
  };
  const slots = {
    connect: slot(connect),
    disconnect: slot(disconnect),
    subscribe: slot(subscribe),
    unsubscribe: slot(unsubscribe),
    typing: slot(typing),
    sendMessage: slot(sendMessage),
    editMessage: slot(editMessage),
    deleteMessage: slot(deleteMessage),
    ack: slot(ack),
    getUnacked: slot(getUnacked),
    getHistory: slot(getHistory),
    markRead: slot(markRead),
    getConversations: slot(getConversations),
    fanoutWorker: slot(fanoutWorker),
    ping: slot(ping),
    getPresence: slot(getPresence),
    presenceSweeper: slot(presenceSweeper),
    registerPush: slot(registerPush),
    unregisterPush: slot(unregisterPush),
  };
  return {
    connect: slots.connect.handler,
    disconnect: slots.disconnect.handler,
    subscribe: slots.subscribe.handler,
    unsubscribe: slots.unsubscribe.handler,
    typing: slots.typing.handler,
    sendMessage: slots.sendMessage.handler,
    editMessage: slots.editMessage.handler,
    deleteMessage: slots.deleteMessage.handler,
    ack: slots.ack.handler,
    getUnacked: slots.getUnacked.handler,
    getHistory: slots.getHistory.handler,
    markRead: slots.markRead.handler,
    getConversations: slots.getConversations.handler,
    fanoutWorker: slots.fanoutWorker.handler,
    ping: slots.ping.handler,
    getPresence: slots.getPresence.handler,
    presenceSweeper: slots.presenceSweeper.handler,
    registerPush: slots.registerPush.handler,
    unregisterPush: slots.unregisterPush.handler,
    /** The services a route built (or builds now), as its handler sees them. */
    services: {
      connect: slots.connect.services,
      disconnect: slots.disconnect.services,
      subscribe: slots.subscribe.services,
      unsubscribe: slots.unsubscribe.services,
      typing: slots.typing.services,
      sendMessage: slots.sendMessage.services,
      ack: slots.ack.services,
      getUnacked: slots.getUnacked.services,
      getHistory: slots.getHistory.services,
      markRead: slots.markRead.services,
      getConversations: slots.getConversations.services,
      fanoutWorker: slots.fanoutWorker.services,
      ping: slots.ping.services,
      getPresence: slots.getPresence.services,
      presenceSweeper: slots.presenceSweeper.services,
    },
    async reset(): Promise<void> {
      const previous = scope;
      scope = new Scope();
      for (const s of Object.values(slots)) s.renew();
      await previous.close();
    },
  };
}

export type TestLambdas = ReturnType<typeof testLambdas>;

/** The test file's handlers (vitest isolates each file, so each file has its own containers). */
export const lambdas = testLambdas();
