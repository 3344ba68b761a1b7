import { ServicesBuildError } from '../errors.js';

/** Where a handler gets its services: the same promise for every event of a container once built. */
export type ServiceSource<S> = () => Promise<S>;

/**
 * Builds a route's services once per container, on the first event. Concurrent first events share one build;
 * a failed build is not kept (its error is wrapped in ServicesBuildError), so the next event tries again and a
 * secret fixed after a cold start needs no restart.
 */
export function lazyServices<S>(build: () => Promise<S>): ServiceSource<S> {
  let building: Promise<S> | undefined;
  return () => {
    if (building === undefined) {
      const attempt = build().catch((error: unknown) => {
        if (building === attempt) building = undefined;
        throw new ServicesBuildError(error);
      });
      building = attempt;
    }
    return building;
  };
}

/**
 * What the builders opened (clients, sockets), so whoever owns a set of services can release them: the local
 * backend at shutdown, a test at its end. A Lambda container never closes its scope.
 */
export class Scope {
  private readonly closers: (() => void | Promise<void>)[] = [];

  adopt<T>(resource: T, close: (resource: T) => void | Promise<void>): T {
    this.closers.push(() => close(resource));
    return resource;
  }

  async close(): Promise<void> {
    const closers = this.closers.splice(0).reverse();
    for (const close of closers) {
      try {
        await close();
      } catch {
        // Closing is best effort: a client that failed to open has nothing to release.
      }
    }
  }
}

/** The environment a route is built from (process.env in Lambda; an object of its own locally and in tests). */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * One route (or queue consumer): how its services are built and how its handler uses them. `given` replaces
 * members the caller already has (the local backend's in-memory store, a test's or the bench's instruments);
 * whatever is not given is built from the environment.
 */
export interface Route<S, H> {
  build(env: Env, scope: Scope, given?: Partial<S>): Promise<S>;
  create(services: ServiceSource<S>): H;
}

/** The Lambda entry of a route: the real services from process.env, built lazily once per container. */
export function lambdaHandler<S, H>(route: Route<S, H>): H {
  return route.create(lazyServices(() => route.build(process.env, new Scope())));
}

/** A value made on first use (a client several members may share, built only if one of them is). */
export function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => {
    made ??= { value: make() };
    return made.value;
  };
}
