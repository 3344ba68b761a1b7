/** A listener may be async: the client waits for it where the order of events matters (messages). */
export type Listener<E> = (event: E) => void | Promise<void>;

/** A tiny typed event emitter: one map of event name → payload type. */
export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener);
    return () => this.off(name, listener);
  }

  off<K extends keyof Events>(name: K, listener: Listener<Events[K]>): void {
    this.listeners.get(name)?.delete(listener);
  }

  /**
   * Calls every listener of `name` and settles once all of them did (async ones included). Resolves with what
   * the listeners threw or rejected with, so one failing listener neither stops the others nor the caller.
   */
  async emit<K extends keyof Events>(name: K, event: Events[K]): Promise<unknown[]> {
    const set = this.listeners.get(name);
    if (set === undefined || set.size === 0) return [];
    const runs = [...set].map(async (listener) => (listener as Listener<Events[K]>)(event));
    const settled = await Promise.allSettled(runs);
    return settled.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
  }
}
