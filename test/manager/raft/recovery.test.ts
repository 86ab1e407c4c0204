// force-new-cluster on a real directory: the survivor keeps every entry it
// holds, past its own commit index too (the old quorum may have committed
// them), and restarts as the only voter from a snapshot at its last index.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfChange, ConfChangeType, ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata } from '../../../proto/gen/raft.js';
import { PROPOSAL_HEADER, type StateMachine } from '../../../manager/raft/node.js';
import { forceNewCluster } from '../../../manager/raft/recovery.js';
import { DiskStorage, realVfs } from '../../../manager/raft/storage/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** What the driver writes: a 12-byte proposal header, then the payload. */
function framed(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(PROPOSAL_HEADER + payload.length);
  out.set(payload, PROPOSAL_HEADER);
  return out;
}

const put = (index: number, term: number, v: string): Entry =>
  Entry.create({ index, term, type: EntryType.ENTRY_NORMAL, data: framed(enc(v)) });

class ListSM implements StateMachine {
  items: string[] = [];
  apply(d: Uint8Array): void {
    this.items.push(dec(d));
  }
  snapshot(): Uint8Array {
    return enc(JSON.stringify(this.items));
  }
  restore(d: Uint8Array): void {
    this.items = d.length ? (JSON.parse(dec(d)) as string[]) : [];
  }
}

describe('forceNewCluster', () => {
  let tmp: string | undefined;
  afterEach(async () => {
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
    tmp = undefined;
  });

  it('keeps the entries a survivor has past its commit index, up to its last index, and restarts as the only voter', async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'tss-recovery-'));
    const dir = path.join(tmp, 'raft');
    const old = await DiskStorage.open(realVfs, dir);
    // A snapshot at 3, entries 4..10; this member knew of commits only up to 6.
    await old.storage.persist({
      snapshot: Snapshot.create({
        data: enc(JSON.stringify(['v1', 'v2', 'v3'])),
        metadata: SnapshotMetadata.create({ index: 3, term: 2, confState: ConfState.create({ voters: ['a', 'b', 'c'] }) }),
      }),
      hardState: HardState.create({ term: 2, vote: 'a', commit: 3 }),
      entries: [],
      mustSync: true,
    });
    const addD = ConfChange.create({
      changes: [{ type: ConfChangeType.CONF_ADD_LEARNER_NODE, nodeId: 'd' }],
      context: framed(enc('member d')),
    });
    const entries = [
      put(4, 2, 'v4'),
      put(5, 2, 'v5'),
      put(6, 3, 'v6'),
      put(7, 3, 'v7'),
      Entry.create({ index: 8, term: 3, type: EntryType.ENTRY_CONF_CHANGE, data: ConfChange.encode(addD) }),
      put(9, 3, 'v9'),
      put(10, 3, 'v10'),
    ];
    await old.storage.persist({ hardState: HardState.create({ term: 3, vote: 'a', commit: 6 }), entries, mustSync: true });
    await old.storage.close();

    const sm = new ListSM();
    const changes: { context: string; index: number }[] = [];
    const r = await forceNewCluster(realVfs, dir, 'a', sm, {
      rename: (from, to) => fs.rename(from, to),
      onConfChange: (cc, index) => changes.push({ context: dec(cc.context), index }),
      now: 1,
    });

    expect(r.index).toBe(10);
    expect(r.localCommit).toBe(6);
    expect(sm.items).toEqual(['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v9', 'v10']);
    expect(changes).toEqual([{ context: 'member d', index: 8 }]);
    expect(r.backupDir).toBe(`${dir}.before-force-new-cluster-1`);

    const fresh = await DiskStorage.open(realVfs, dir);
    try {
      const s = fresh.state.snapshot!;
      expect({ index: s.metadata?.index, term: s.metadata?.term, voters: s.metadata?.confState?.voters }).toEqual({
        index: 10,
        term: 3,
        voters: ['a'],
      });
      expect(JSON.parse(dec(s.data))).toEqual(['v1', 'v2', 'v3', 'v4', 'v5', 'v6', 'v7', 'v9', 'v10']);
      const hs = fresh.state.hardState;
      expect([hs.term, hs.vote || '', hs.commit]).toEqual([3, '', 10]);
      expect(fresh.state.entries).toEqual([]);
    } finally {
      await fresh.storage.close();
    }
    // The old state is kept, untouched, for an operator.
    const backup = await DiskStorage.open(realVfs, r.backupDir);
    try {
      expect(backup.state.entries.map((e) => e.index)).toEqual([4, 5, 6, 7, 8, 9, 10]);
      expect(backup.state.hardState.commit).toBe(6);
    } finally {
      await backup.storage.close();
    }
  });
});
