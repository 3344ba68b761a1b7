import { ManagementApiPoster } from '../adapters/management-poster.js';
import type { ConnectionPoster, Log } from '../ports.js';
import { credentialsIn } from './credentials.js';
import type { Env, Scope } from './lazy.js';

/** One signed Management API poster per endpoint, kept for the container's life. */
export function postersFor(config: { AWS_REGION: string; POST_CONCURRENCY: number }, scope: Scope, env: Env, log: Log): (endpoint: string) => ConnectionPoster {
  const posters = new Map<string, ManagementApiPoster>();
  scope.adopt(posters, (all) => {
    for (const poster of all.values()) poster.destroy();
    all.clear();
  });
  return (endpoint) => {
    let poster = posters.get(endpoint);
    if (poster === undefined) {
      poster = new ManagementApiPoster({
        endpoint,
        region: config.AWS_REGION,
        // Lambda puts the function role's credentials in the environment (the local backend puts dummies in its own).
        credentials: async () => {
          const credentials = credentialsIn(env);
          if (credentials === undefined) throw new TypeError('no AWS credentials in the environment to sign posts with');
          return credentials;
        },
        maxSockets: Math.max(config.POST_CONCURRENCY, 16),
        onFailure: (failure) => log.warn('post to connection failed', { ...failure }),
      });
      posters.set(endpoint, poster);
    }
    return poster;
  };
}
