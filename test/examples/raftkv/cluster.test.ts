// The raftkv service across three real member processes: unary Put and the
// pipelined Write stream both commit, reads are linearizable from any member,
// and a stream's pending writes fail (never hang) when its member dies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../../../examples/raftkv/cluster.js';

describe('raftkv cluster', () => {
  const cluster = new LocalCluster(3, { prefix: 'tss-test-raftkv-' });
  beforeAll(() => cluster.start(), 60_000);
  afterAll(() => cluster.close());

  it('writes on the Write stream commit in any order and are read back from a follower', async () => {
    const leader = await cluster.leader();
    const enc = new TextEncoder();
    const indexes = await Promise.all(Array.from({ length: 200 }, (_, i) => leader.client.write(`s/${i}`, enc.encode(`v${i}`))));
    expect(new Set(indexes).size).toBe(200);
    const follower = cluster.members.find((m) => m !== leader)!;
    const got = await follower.client.get('s/199');
    expect(got.found).toBe(true);
    expect(new TextDecoder().decode(got.value)).toBe('v199');
    expect(got.index).toBeGreaterThanOrEqual(Math.max(...indexes));
  });

  it('a unary Put and a stream write to the same key are ordered by their log indexes', async () => {
    const leader = await cluster.leader();
    const enc = new TextEncoder();
    const a = await leader.client.put('k', enc.encode('unary'));
    const b = await leader.client.write('k', enc.encode('stream'));
    expect(b).toBeGreaterThan(a.index);
    expect(new TextDecoder().decode((await leader.client.get('k')).value)).toBe('stream');
  });

  it('an empty key on the Write stream is refused with an error naming the key', async () => {
    const leader = await cluster.leader();
    await expect(leader.client.write('', new Uint8Array(1))).rejects.toThrow(/key must not be empty/);
  });

  it('writes pending on a stream to a killed member fail instead of hanging', async () => {
    const leader = await cluster.leader();
    const pending = Array.from({ length: 50 }, (_, i) =>
      leader.client.write(`d/${i}`, new Uint8Array(8), 20_000).then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    );
    await cluster.kill(leader);
    const results = await Promise.all(pending);
    // Some may have committed before the kill; every one settled, and a failure says why.
    for (const r of results)
      expect(r === 'ok' || /ended|UNAVAILABLE|unavailable|timed out|Connection|cancel|No connection/i.test(r)).toBe(true);
    await cluster.spawn(leader);
  });
});
