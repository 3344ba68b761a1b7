import { getUnacked } from '../domain/messaging.js';
import { frameRoute } from '../frame-route.js';
import { getUnackedFrameSchema } from '../protocol.js';

/** Route `getUnacked`: this device's pending messages in seq order; answers `unacked`. */
export const handler = frameRoute('getUnacked', getUnackedFrameSchema, (context, binding, frame) =>
  getUnacked(context, binding, frame),
);
