import { ManagementApiPoster } from '../adapters/management-poster.js';
import { countedPoster } from '../adapters/metrics.js';
import type { ConnectionPoster, Log, Metrics } from '../ports.js';
import { credentialsIn } from './credentials.js';
import type { Env, Scope } from './lazy.js';

/** One signed Management API poster per endpoint, kept for the container's life; every post is counted. */
export function postersFor(
  config: { AWS_REGION: string; POST_CONCURRENCY: number },
  scope: Scope,
  env: Env,
  log: Log,
  metrics: Metrics,
): (endpoint: string) => ConnectionPoster {
  const posters = new Map<string, { api: ManagementApiPoster; counted: ConnectionPoster }>();
  scope.adopt(posters, (all) => {
    for (const poster of all.values()) poster.api.destroy();
    all.clear();
  });
  return (endpoint) => {
    let poster = posters.get(endpoint);
    if (poster === undefined) {
      const api = new ManagementApiPoster({
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
      poster = { api, counted: countedPoster(api, metrics) };
      posters.set(endpoint, poster);
    }
    return poster.counted;
  };
}
