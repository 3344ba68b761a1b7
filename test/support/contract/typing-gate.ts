import { randomUUID } from 'node:crypto';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { TypingGate, TypingState } from '../../../lambdas/ports.js';

/**
 * The TypingGate contract, one suite for every implementation (RedisTypingGate on a real redis-server,
 * MemoryTypingGate). Time is the `now` each call passes, so the window's edges are exact and nothing sleeps.
 * Each test uses fresh conversation ids, so runs against a shared Redis never meet.
 */
export interface GateUnderTest {
  gate: TypingGate;
  close(): Promise<void>;
}

/** Opens a gate whose coalescing window is `windowMs`. */
export type MakeGate = (windowMs: number) => Promise<GateUnderTest>;

const T0 = Date.UTC(2030, 0, 1);
const WINDOW = 2000;

/** The gate's answers to frames of one user in one conversation, each `[state, ms after T0]`. */
async function answers(gate: TypingGate, conversationId: string, userId: string, frames: readonly [TypingState, number][]): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const [state, offset] of frames) out.push(await gate.shouldSend(conversationId, userId, state, T0 + offset));
  return out;
}

export function typingGateContract(name: string, makeGate: MakeGate): void {
  async function open(windowMs = WINDOW): Promise<TypingGate> {
    const harness = await makeGate(windowMs);
    onTestFinished(() => harness.close());
    return harness.gate;
  }
  const conversation = () => `conv-${randomUUID()}`;

  describe(`${name}: TypingGate contract`, () => {
    it('lets the first start out and holds repeats back until the window has passed since the last one out', async () => {
      const gate = await open();

      const got = await answers(gate, conversation(), 'alice', [
        ['start', 0],
        ['start', 1],
        ['start', WINDOW - 1],
        ['start', WINDOW],
        ['start', WINDOW + 1],
        ['start', 2 * WINDOW - 1],
        ['start', 2 * WINDOW],
      ]);

      expect(got).toEqual([true, false, false, true, false, false, true]);
    });

    it('lets every change of state out at once, whatever the window', async () => {
      const gate = await open();

      const got = await answers(gate, conversation(), 'alice', [
        ['start', 0],
        ['stop', 1],
        ['start', 2],
        ['stop', 3],
      ]);

      expect(got).toEqual([true, true, true, true]);
    });

    it('lets a first stop out, and holds a repeated stop back like a repeated start', async () => {
      const gate = await open();

      const got = await answers(gate, conversation(), 'alice', [
        ['stop', 0],
        ['stop', 10],
        ['stop', WINDOW - 1],
        ['stop', WINDOW],
      ]);

      expect(got).toEqual([true, false, false, true]);
    });

    it('measures the window from the last frame out, not from the last frame held back', async () => {
      const gate = await open();
      const frames: [TypingState, number][] = Array.from({ length: 20 }, (_, i) => ['start', i * 250]);

      const got = await answers(gate, conversation(), 'alice', frames);

      // Out at 0, 2000, 4000: every eighth frame of a start every 250 ms.
      expect(got.flatMap((out, i) => (out ? [i * 250] : []))).toEqual([0, 2000, 4000]);
    });

    it('keeps users and conversations apart', async () => {
      const gate = await open();
      const first = conversation();
      const second = conversation();
      await gate.shouldSend(first, 'alice', 'start', T0);

      const got = [
        await gate.shouldSend(first, 'bob', 'start', T0 + 1),
        await gate.shouldSend(second, 'alice', 'start', T0 + 1),
        await gate.shouldSend(first, 'alice', 'start', T0 + 1),
      ];

      expect(got).toEqual([true, true, false]);
    });

    it('keeps user ids apart that differ only in characters a key would have to escape', async () => {
      const gate = await open();
      const conversationId = conversation();
      await gate.shouldSend(conversationId, 'a:b', 'start', T0);

      expect(await gate.shouldSend(conversationId, 'a%3Ab', 'start', T0 + 1)).toBe(true);
      expect(await gate.shouldSend(conversationId, 'a\nb', 'start', T0 + 1)).toBe(true);
      expect(await gate.shouldSend(conversationId, 'a:b', 'start', T0 + 1)).toBe(false);
    });

    it('lets exactly one of many concurrent identical starts out (one user on many devices)', async () => {
      const gate = await open();
      const conversationId = conversation();

      const got = await Promise.all(Array.from({ length: 25 }, (_, i) => gate.shouldSend(conversationId, 'alice', 'start', T0 + i)));

      expect(got.filter(Boolean)).toHaveLength(1);
    });

    it('lets every frame out with a window of 0', async () => {
      const gate = await open(0);

      const got = await answers(gate, conversation(), 'alice', [
        ['start', 0],
        ['start', 0],
        ['stop', 0],
        ['stop', 0],
      ]);

      expect(got).toEqual([true, true, true, true]);
    });
  });
}
