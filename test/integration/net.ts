import { freePort } from '../../local/redis-server.js';

/** A loopback port with nothing listening on it (a free one, released at once): the address of a server that is down. */
export const closedPort = freePort;
