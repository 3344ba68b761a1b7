import { describe, expect, it, vi } from 'vitest';
import { CachedMemberRoster } from '../../../lambdas/adapters/member-roster.js';
import type { Membership } from '../../../lambdas/ports.js';

const MAX_AGE_MS = 5_000;

/**
 * The membership table as the roster reads it: `list` (one Query per conversation) and `get` (one user), both
 * spies over a map the test changes; and a clock the test moves.
 */
function roster(initial: Record<string, string[]> = { conv: ['alice', 'bob'] }) {
  const table = new Map(Object.entries(initial).map(([conversationId, users]) => [conversationId, new Set(users)]));
  const members = {
    list: vi.fn(async (conversationId: string) => [...(table.get(conversationId) ?? [])]),
    get: vi.fn(async (conversationId: string, userId: string): Promise<Membership | undefined> =>
      table.get(conversationId)?.has(userId) === true ? { conversationId, userId, sinceSeq: 0 } : undefined,
    ),
  };
  let now = 1_000_000;
  const clock = { now: () => now };
  return {
    roster: new CachedMemberRoster(members, MAX_AGE_MS, clock),
    members,
    add: (conversationId: string, userId: string) => {
      const users = table.get(conversationId) ?? new Set<string>();
      users.add(userId);
      table.set(conversationId, users);
    },
    remove: (conversationId: string, userId: string) => table.get(conversationId)?.delete(userId),
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('CachedMemberRoster', () => {
  it('re-reads the whole list (one read) when more than a few users are missing from the snapshot', async () => {
    // Prepare
    const r = roster();
    await r.roster.isMember('conv', 'alice');
    const newcomers = ['n1', 'n2', 'n3', 'n4', 'n5'];
    for (const userId of newcomers) r.add('conv', userId);
    // Act
    const found = await r.roster.membersAmong('conv', ['alice', ...newcomers, 'stranger']);
    // Assess: one list read instead of six single reads; the stranger (not in the fresh list) is no member
    expect([...found].sort()).toEqual(['alice', ...newcomers].sort());
    expect(r.members.list).toHaveBeenCalledTimes(2);
    expect(r.members.get).not.toHaveBeenCalled();
  });


  it('serves many checks from one list read within maxAge', async () => {
    // Prepare
    const r = roster();
    // Act
    const checks = [
      await r.roster.isMember('conv', 'alice'),
      await r.roster.isMember('conv', 'bob'),
      [...(await r.roster.membersAmong('conv', ['alice', 'bob']))].sort(),
    ];
    r.advance(MAX_AGE_MS - 1);
    checks.push(await r.roster.isMember('conv', 'bob'));
    // Assess
    expect(checks).toEqual([true, true, ['alice', 'bob'], true]);
    expect(r.members.list).toHaveBeenCalledTimes(1);
    expect(r.members.list).toHaveBeenCalledWith('conv');
    expect(r.members.get).not.toHaveBeenCalled();
  });

  it('keeps one snapshot per conversation', async () => {
    // Prepare
    const r = roster({ conv: ['alice'], other: ['bob'] });
    // Act
    const inConv = await r.roster.isMember('conv', 'alice');
    const inOther = await r.roster.isMember('other', 'bob');
    const againConv = await r.roster.isMember('conv', 'alice');
    // Assess
    expect([inConv, inOther, againConv]).toEqual([true, true, true]);
    expect(r.members.list.mock.calls).toEqual([['conv'], ['other']]);
  });

  it('drops a removed member once the snapshot is maxAge old, and not before', async () => {
    // Prepare
    const r = roster();
    await r.roster.isMember('conv', 'bob');
    r.remove('conv', 'bob');
    // Act
    r.advance(MAX_AGE_MS - 1);
    const withinMaxAge = await r.roster.isMember('conv', 'bob');
    r.advance(1);
    const atMaxAge = await r.roster.isMember('conv', 'bob');
    const aliceStill = await r.roster.isMember('conv', 'alice');
    // Assess
    expect(withinMaxAge).toBe(true);
    expect(atMaxAge).toBe(false);
    expect(aliceStill).toBe(true);
    expect(r.members.list).toHaveBeenCalledTimes(2);
  });

  it('counts the members from the cached list, re-read once it is older than the cache age', async () => {
    // Prepare
    const r = roster({ conv: ['alice', 'bob'] });
    // Act
    const first = await r.roster.count('conv');
    r.add('conv', 'carol');
    const cached = await r.roster.count('conv');
    r.advance(MAX_AGE_MS + 1);
    const reread = await r.roster.count('conv');
    // Assess
    expect([first, cached, reread]).toEqual([2, 2, 3]);
    expect(r.members.list).toHaveBeenCalledTimes(2);
  });

  it('finds a user added after the snapshot at once, with one get, and remembers them', async () => {
    // Prepare
    const r = roster({ conv: ['alice'] });
    await r.roster.isMember('conv', 'alice');
    r.add('conv', 'carol');
    // Act
    const found = await r.roster.isMember('conv', 'carol');
    const again = await r.roster.membersAmong('conv', ['alice', 'carol']);
    // Assess
    expect(found).toBe(true);
    expect([...again].sort()).toEqual(['alice', 'carol']);
    expect(r.members.get).toHaveBeenCalledTimes(1);
    expect(r.members.get).toHaveBeenCalledWith('conv', 'carol');
    expect(r.members.list).toHaveBeenCalledTimes(1);
  });

  it('answers only the members among the users asked about, each user looked up once', async () => {
    // Prepare
    const r = roster({ conv: ['alice', 'bob'] });
    // Act
    const found = await r.roster.membersAmong('conv', ['alice', 'mallory', 'alice', 'mallory']);
    // Assess
    expect([...found]).toEqual(['alice']);
    expect(r.members.get).toHaveBeenCalledTimes(1);
    expect(r.members.get).toHaveBeenCalledWith('conv', 'mallory');
  });

  it('shares one list call among concurrent first reads', async () => {
    // Prepare
    const r = roster();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    r.members.list.mockImplementationOnce(async () => {
      await gate;
      return ['alice', 'bob'];
    });
    // Act
    const pending = Promise.all([
      r.roster.isMember('conv', 'alice'),
      r.roster.isMember('conv', 'bob'),
      r.roster.membersAmong('conv', ['alice', 'bob']),
    ]);
    release();
    const [alice, bob, both] = await pending;
    // Assess
    expect([alice, bob, [...both].sort()]).toEqual([true, true, ['alice', 'bob']]);
    expect(r.members.list).toHaveBeenCalledTimes(1);
    expect(r.members.get).not.toHaveBeenCalled();
  });

  it('does not keep a failed read: the next check reads again', async () => {
    // Prepare
    const r = roster();
    r.members.list.mockRejectedValueOnce(new Error('dynamodb down'));
    // Act
    const failed = r.roster.isMember('conv', 'alice');
    await expect(failed).rejects.toThrow('dynamodb down');
    const retried = await r.roster.isMember('conv', 'alice');
    // Assess
    expect(retried).toBe(true);
    expect(r.members.list).toHaveBeenCalledTimes(2);
  });

  it('reads again after forget', async () => {
    // Prepare
    const r = roster();
    await r.roster.isMember('conv', 'bob');
    r.remove('conv', 'bob');
    // Act
    r.roster.forget('conv');
    const bob = await r.roster.isMember('conv', 'bob');
    // Assess
    expect(bob).toBe(false);
    expect(r.members.list).toHaveBeenCalledTimes(2);
  });
});
