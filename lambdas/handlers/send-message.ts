import { sendMessage } from '../domain/messaging.js';
import { frameRoute } from '../frame-route.js';
import { sendMessageFrameSchema } from '../protocol.js';

/** Route `sendMessage`: store, make pending, deliver live; answers `sent`. */
export const handler = frameRoute('sendMessage', sendMessageFrameSchema, (context, binding, frame, endpoint) =>
  sendMessage(context, binding, frame, endpoint),
);
