import { ForbiddenError, PayloadTooLargeError, RateLimitedError, UnavailableError } from '../errors.js';
import type { Binding, ConnectionRecord, RateLimit, Services, StoredMessage } from '../ports.js';
import {
  MAX_ANSWER_BYTES,
  frameBytes,
  type AckFrame,
  type AckedFrame,
  type GetUnackedFrame,
  type MessageData,
  type MessageFrame,
  type SendMessageFrame,
  type SentFrame,
  type TypingEventFrame,
  type TypingFrame,
  type UnackedFrame,
} from '../protocol.js';
import { errorSummary } from '../errors.js';
import { deliver, type DeliveryServices } from './delivery.js';
import { messageDataOf } from './message-frames.js';

export type TypingServices = DeliveryServices &
  Pick<Services, 'limits' | 'clock' | 'registry'> & { store: Pick<Services['store'], 'admit'> };
export type SendMessageServices = DeliveryServices &
  Pick<Services, 'limits' | 'clock' | 'registry' | 'sealer' | 'newMessageId'> & { store: Pick<Services['store'], 'append'> };
export type AckServices = Pick<Services, 'limits'> & { store: Pick<Services['store'], 'ack'> };
export type GetUnackedServices = Pick<Services, 'limits' | 'sealer'> & { store: Pick<Services['store'], 'pending'> };

function rateLimit(services: Pick<Services, 'limits'>, binding: Binding): RateLimit {
  return {
    connectionId: binding.connectionId,
    perSecond: services.limits.ratePerSecond,
    burst: services.limits.rateBurst,
  };
}

/** `typing`: broadcast to every other user's connections. Works without the message store (fails open). */
export async function typing(services: TypingServices, binding: Binding, frame: TypingFrame, endpoint: string): Promise<void> {
  if (frame.userId !== undefined && frame.userId !== binding.userId) {
    throw new ForbiddenError('userId does not match this connection');
  }
  let admitted = true;
  try {
    admitted = await services.store.admit(binding.conversationId, rateLimit(services, binding));
  } catch (error) {
    // Typing is ephemeral: an unavailable store must not silence it, so the limiter fails open here.
    services.log.warn('rate limiter unavailable; typing admitted', { error: errorSummary(error) });
  }
  if (!admitted) throw new RateLimitedError();
  const out: TypingEventFrame = {
    type: 'typing',
    conversationId: binding.conversationId,
    userId: binding.userId,
    state: frame.state,
    at: services.clock.now(),
  };
  const connections = await services.registry.listByConversation(binding.conversationId);
  const recipients = connections.filter((c) => c.userId !== binding.userId);
  await deliver(services, endpoint, { kind: 'frame', frame: JSON.stringify(out) }, recipients);
}

/**
 * `sendMessage`: seal, store under the next seq (idempotent on clientMessageId), pending for every member
 * device but the sender's, then deliver live. `sent` is answered only once the message is stored.
 */
export async function sendMessage(
  services: SendMessageServices,
  binding: Binding,
  frame: SendMessageFrame,
  endpoint: string,
): Promise<SentFrame> {
  const messageId = services.newMessageId();
  const sentAt = services.clock.now();
  const outgoing: MessageFrame = {
    type: 'message',
    conversationId: binding.conversationId,
    messageId,
    seq: Number.MAX_SAFE_INTEGER,
    senderId: binding.userId,
    clientMessageId: frame.clientMessageId,
    body: frame.body,
    sentAt,
  };
  // Measured with the widest seq, so the delivered frame (and a page of one) always fits API Gateway's limit.
  if (frameBytes(outgoing) > MAX_ANSWER_BYTES - 256) {
    throw new PayloadTooLargeError('message too large once encoded; send a shorter body');
  }
  // The recipients' lookup runs while the message is stored; its failure costs only live delivery.
  const connections = services.registry.listByConversation(binding.conversationId).then(
    (list) => ({ ok: true as const, list }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  const result = await appendOrExplain(
    services,
    {
      conversationId: binding.conversationId,
      messageId,
      seq: 0,
      senderId: binding.userId,
      senderDevice: binding.deviceId,
      clientMessageId: frame.clientMessageId,
      sentAt,
      sealed: services.sealer.seal(binding.conversationId, messageId, frame.body),
    },
    rateLimit(services, binding),
  );
  if (result.status === 'rate_limited') throw new RateLimitedError();
  if (result.status === 'duplicate') {
    return {
      type: 'sent',
      conversationId: binding.conversationId,
      clientMessageId: frame.clientMessageId,
      messageId: result.messageId,
      seq: result.seq,
      sentAt: result.sentAt,
      duplicate: true,
    };
  }
  outgoing.seq = result.seq;
  const lookup = await connections;
  if (lookup.ok) {
    const recipients = lookup.list.filter((c) => !isSendingDevice(c, binding));
    try {
      await deliver(
        services,
        endpoint,
        { kind: 'message', conversationId: binding.conversationId, messageId, frame: JSON.stringify(outgoing) },
        recipients,
      );
    } catch (error) {
      services.log.warn('live delivery failed; message stays pending', { messageId, error: errorSummary(error) });
    }
  } else {
    services.log.warn('recipient lookup failed; message stays pending', { messageId, error: errorSummary(lookup.error) });
  }
  return {
    type: 'sent',
    conversationId: binding.conversationId,
    clientMessageId: frame.clientMessageId,
    messageId,
    seq: result.seq,
    sentAt,
    duplicate: false,
  };
}

/**
 * A store that timed out may still have stored the message (the script was already sent), so `unavailable`
 * never claims it was not: it tells the client to resend the same clientMessageId, which is never stored twice.
 */
async function appendOrExplain(services: Pick<SendMessageServices, 'store'>, message: StoredMessage, limit: RateLimit) {
  try {
    return await services.store.append(message, limit);
  } catch (error) {
    if (error instanceof UnavailableError) {
      throw new UnavailableError('the message store did not answer; resend with the same clientMessageId (it is never stored twice)', {
        cause: error,
      });
    }
    throw error;
  }
}

function isSendingDevice(connection: ConnectionRecord, binding: Binding): boolean {
  return connection.userId === binding.userId && connection.deviceId === binding.deviceId;
}

/** `ack`: this device no longer needs these messages. Idempotent; unknown ids are ignored. */
export async function ack(services: AckServices, binding: Binding, frame: AckFrame): Promise<AckedFrame> {
  const outcome = await services.store.ack(
    binding.conversationId,
    { userId: binding.userId, deviceId: binding.deviceId },
    frame.messageIds,
    rateLimit(services, binding),
  );
  if (outcome === 'rate_limited') throw new RateLimitedError();
  return { type: 'acked', conversationId: binding.conversationId, messageIds: frame.messageIds };
}

/** `getUnacked`: this device's pending messages in seq order, paged by count and by API Gateway's size limit. */
export async function getUnacked(services: GetUnackedServices, binding: Binding, frame: GetUnackedFrame): Promise<UnackedFrame> {
  const result = await services.store.pending(
    binding.conversationId,
    { userId: binding.userId, deviceId: binding.deviceId },
    // Sealed bytes are about 4/3 of the body; twice the answer size is enough to fill one page.
    { afterSeq: frame.afterSeq ?? 0, limit: frame.limit, maxBytes: 2 * MAX_ANSWER_BYTES },
    rateLimit(services, binding),
  );
  if (result.status === 'rate_limited') throw new RateLimitedError();
  const answer: UnackedFrame = { type: 'unacked', conversationId: binding.conversationId, messages: [], hasMore: result.hasMore };
  let bytes = frameBytes({ ...answer, hasMore: false });
  const messages: MessageData[] = [];
  for (const stored of result.messages) {
    const body = messageDataOf(services, stored);
    const size = Buffer.byteLength(JSON.stringify(body), 'utf8') + 1;
    if (bytes + size > MAX_ANSWER_BYTES) {
      answer.hasMore = true;
      break;
    }
    bytes += size;
    messages.push(body);
  }
  answer.messages = messages;
  return answer;
}
