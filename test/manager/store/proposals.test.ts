// How a writer hears the fate of its proposal: every store.update settles,
// within the store's own bound if the proposer never answers, and an error
// that says the entry may still commit reads as OutcomeUnknownError.
import { describe, expect, it } from 'vitest';
import { MemoryStore, NotCommittedError, OutcomeUnknownError, type Proposer } from '../../../manager/store/index.js';
import { node } from './fixtures.js';

/** A proposer that applies at once, except that the calls `hang` names never answer and those `fail` names reject with that error. */
function flaky(o: { hang?: number[]; fail?: Map<number, Error>; applyThenFail?: Map<number, Error> }): {
  store: MemoryStore;
  calls: () => number;
} {
  let calls = 0;
  let index = 0;
  const p: Proposer = {
    propose: (d) => {
      const call = ++calls;
      if (o.hang?.includes(call)) return new Promise<number>(() => undefined);
      const f = o.fail?.get(call);
      if (f) return Promise.reject(f);
      store.apply(d, ++index);
      const g = o.applyThenFail?.get(call);
      return g ? Promise.reject(g) : Promise.resolve(index);
    },
  };
  const store: MemoryStore = new MemoryStore(p, { proposeTimeoutMs: 100 });
  return { store, calls: () => calls };
}

const raftError = (code: string, message: string, extra: Record<string, unknown> = {}): Error =>
  Object.assign(new Error(message), { code, ...extra });

describe('store.update settles whatever the proposer does', () => {
  it('a proposal that never answers settles as OutcomeUnknownError at the bound, and the next write goes through', async () => {
    const { store } = flaky({ hang: [1] });
    const err = await store.update((tx) => tx.nodes.create(node('n1', 'h1'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect((err as Error).message).toMatch(/Raft did not answer within 100 ms/);
    await expect(store.update((tx) => tx.nodes.create(node('n1', 'h1')))).resolves.toBe(1);
    expect(store.view((tx) => tx.nodes.get('n1')?.spec?.name)).toBe('h1');
    expect((store as unknown as { waiting: Map<string, unknown> }).waiting.size).toBe(0);
  });

  it('a proposal whose entry may still commit reads as OutcomeUnknownError with the reason, not as a refusal', async () => {
    const { store } = flaky({
      fail: new Map([
        [
          1,
          Object.assign(raftError('OUTCOME_UNKNOWN', 'raft says unknown', { index: 7 }), {
            reason: 'this member lost the leadership before its entry committed',
          }),
        ],
      ]),
    });
    const err = await store.update((tx) => tx.nodes.create(node('n1', 'h1'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', index: 7 });
    expect((err as Error).message).toMatch(
      /at log index 7 applied is unknown \(this member lost the leadership before its entry committed\): read the objects again/,
    );
  });

  it('a dropped proposal reads as NotCommittedError (UNAVAILABLE: nothing applied, retry)', async () => {
    const { store } = flaky({ fail: new Map([[1, raftError('PROPOSAL_DROPPED', 'raft proposal dropped: no leader at term 3')]]) });
    const err = await store.update((tx) => tx.nodes.create(node('n1', 'h1'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotCommittedError);
    expect(err).toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(/not committed \(raft proposal dropped: no leader at term 3\); nothing of it applied: retry it/),
    });
    expect(store.view((tx) => tx.nodes.count())).toBe(0);
  });

  it('a proposal that applied before its proposer gave up reports the applied outcome', async () => {
    const { store } = flaky({ applyThenFail: new Map([[1, raftError('OUTCOME_UNKNOWN', 'gave up')]]) });
    await expect(store.update((tx) => tx.nodes.create(node('n1', 'h1')))).resolves.toBe(1);
    expect(store.view((tx) => tx.nodes.get('n1')?.spec?.name)).toBe('h1');
  });
});
