import { ack } from '../domain/messaging.js';
import { frameRoute } from '../frame-route.js';
import { ackFrameSchema } from '../protocol.js';

/** Route `ack`: this device no longer needs these messages; answers `acked`. */
export const handler = frameRoute('ack', ackFrameSchema, (context, binding, frame) => ack(context, binding, frame));
