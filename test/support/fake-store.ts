import type {
  AppendOutcome,
  Device,
  DevicePosition,
  DevicePositions,
  LogEntry,
  LogPage,
  MessageDraft,
  MessageLog,
  SealFor,
} from '../../lambdas/ports.js';
import { changeEntry } from './fake-log-changes.js';

/**
 * In-memory stand-ins for the DynamoDB message log and device positions, for handler unit tests that isolate a
 * route from DynamoDB (the registry and members there go through aws-sdk-client-mock). Fakes for isolation, not
 * twins: the real adapters have their own contract and crash-point tests on dynalite.
 */
export function fakeMessageLog(): MessageLog & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const claims = new Map<string, { messageId: string; seq: number; sentAt: number }>();
  const of = (conversationId: string) => entries.filter((e) => e.conversationId === conversationId);
  return {
    entries,
    async append(draft: MessageDraft, seal: SealFor): Promise<AppendOutcome> {
      const key = `${draft.conversationId}\n${draft.senderId}\n${draft.clientMessageId}`;
      const claim = claims.get(key);
      if (claim !== undefined) return { status: 'duplicate', ...claim };
      const seq = of(draft.conversationId).length + 1;
      const fields = { ...draft, seq };
      const entry: LogEntry = { ...fields, sealed: seal(fields) };
      entries.push(entry);
      claims.set(key, { messageId: draft.messageId, seq, sentAt: draft.sentAt });
      return { status: 'stored', entry, completed: false };
    },
    async lastSeq(conversationId) {
      return of(conversationId).length;
    },
    async get(conversationId, seq) {
      return of(conversationId).find((e) => e.seq === seq);
    },
    async seqsOf(conversationId, messageIds) {
      return new Map(of(conversationId).filter((e) => messageIds.includes(e.messageId)).map((e) => [e.messageId, e.seq] as const));
    },
    async page(conversationId, range): Promise<LogPage> {
      const inRange = of(conversationId).filter(
        (e) => (range.afterSeq === undefined || e.seq > range.afterSeq) && (range.beforeSeq === undefined || e.seq < range.beforeSeq),
      );
      const ordered = range.newestFirst ? [...inRange].reverse() : inRange;
      const taken: LogEntry[] = [];
      let bytes = 0;
      for (const entry of ordered) {
        if (taken.length === range.limit || (taken.length > 0 && bytes + entry.sealed.length > range.maxBytes)) break;
        taken.push(entry);
        bytes += entry.sealed.length;
      }
      return { entries: range.newestFirst ? taken.reverse() : taken, hasMore: taken.length < ordered.length };
    },
    async change(conversationId, seq, by, change) {
      return changeEntry(entries, conversationId, seq, by, change);
    },
    async latest(conversationId) {
      const top = of(conversationId).at(-1);
      return top === undefined ? { lastSeq: 0 } : { lastSeq: top.seq, lastMessageAt: top.sentAt };
    },
    async countByOthers(conversationId, afterSeq, userId) {
      return of(conversationId).filter((e) => e.seq > afterSeq && e.senderId !== userId && e.deleted !== true).length;
    },
  };
}

export function fakeDevicePositions(): DevicePositions & { positions: Map<string, DevicePosition> } {
  const positions = new Map<string, DevicePosition>();
  const keyOf = (conversationId: string, device: Device) => `${conversationId}\n${device.userId}\n${device.deviceId}`;
  return {
    positions,
    async register(conversationId, device, startAfterSeq, now) {
      const known = positions.get(keyOf(conversationId, device));
      const position = known === undefined
        ? { conversationId, ...device, ackedThrough: startAfterSeq, acked: [], lastSeenAt: now, version: 1 }
        : { ...known, lastSeenAt: now };
      positions.set(keyOf(conversationId, device), position);
      return position;
    },
    async get(conversationId, device) {
      return positions.get(keyOf(conversationId, device));
    },
    async save(next) {
      const key = keyOf(next.conversationId, next);
      const stored = positions.get(key);
      if ((stored?.version ?? 0) !== next.version - 1) return false;
      positions.set(key, next);
      return true;
    },
    async forgetUser(conversationId, userId) {
      for (const [key, position] of positions) {
        if (position.conversationId === conversationId && position.userId === userId) positions.delete(key);
      }
    },
  };
}
