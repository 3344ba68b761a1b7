import { typing } from '../domain/messaging.js';
import { frameRoute } from '../frame-route.js';
import { typingFrameSchema } from '../protocol.js';

/** Route `typing`: tell every other user in the conversation. Answers only on error. */
export const handler = frameRoute('typing', typingFrameSchema, async (context, binding, frame, endpoint) => {
  await typing(context, binding, frame, endpoint);
  return undefined;
});
