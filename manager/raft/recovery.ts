// Disaster recovery after a lost quorum: rewrite a member's durable state as
// a one-member cluster that keeps every entry it holds (what etcd's
// --force-new-cluster and Swarm's `init --force-new-cluster` do). The old
// directory is kept beside the new one, never deleted.
import { ConfChange, ConfState, EntryType, HardState, Snapshot, SnapshotMetadata } from '../../proto/gen/raft.js';
import { PROPOSAL_HEADER, type StateMachine } from './node.js';
import { DiskStorage } from './storage/disk.js';
import type { Kek } from './storage/keys.js';
import type { Vfs } from './storage/vfs.js';
import { snapIndex } from './storage.js';

export interface ForceNewClusterResult {
  /** Index of the snapshot the new cluster starts from: the survivor's last index. */
  index: number;
  /** The survivor's own commit index before recovery; entries after it up to `index` were kept too. */
  localCommit: number;
  /** Where the old state was moved. */
  backupDir: string;
}

/**
 * Replays the snapshot and every entry the survivor holds, up to its last index, into `sm`, then
 * writes a fresh state in `dir` whose only voter is `selfId`. Entries past the local commit index
 * are kept: this member only learns of a commit with the next message, so the old quorum may well
 * have committed them and told a client they succeeded; dropping them could undo an acknowledged
 * write, while keeping one that never committed only completes a write whose outcome its client
 * never learnt. `onConfChange` sees each membership change, with the caller's context, while replaying.
 */
export async function forceNewCluster(
  vfs: Vfs,
  dir: string,
  selfId: string,
  sm: StateMachine,
  opts: {
    onConfChange?: (cc: ConfChange, index: number) => void;
    rename: (from: string, to: string) => Promise<void>;
    now?: number;
    /** Encrypt the new state at rest (DiskStorageOptions.encryption); the old one is read with its own keys, if it has any. */
    encryption?: boolean;
    /** The unlock key's KEK, when the old state is locked (autolock). */
    unlock?: Kek;
  },
): Promise<ForceNewClusterResult> {
  const { storage, state } = await DiskStorage.open(vfs, dir, { unlock: opts.unlock });
  let index = 0;
  let term = 0;
  try {
    if (state.snapshot && snapIndex(state.snapshot) > 0) {
      index = snapIndex(state.snapshot);
      term = state.snapshot.metadata?.term ?? 0;
      await sm.restore(state.snapshot.data, index);
    }
    for (const e of state.entries) {
      if (e.index <= index) continue;
      if (e.type === EntryType.ENTRY_CONF_CHANGE) {
        const cc = ConfChange.decode(e.data);
        opts.onConfChange?.(
          { ...cc, context: cc.context.length >= PROPOSAL_HEADER ? cc.context.subarray(PROPOSAL_HEADER) : new Uint8Array(0) },
          e.index,
        );
      } else if (e.data.length > PROPOSAL_HEADER) {
        await sm.apply(e.data.subarray(PROPOSAL_HEADER), e.index);
      }
      index = e.index;
      term = e.term;
    }
  } finally {
    await storage.close();
  }
  const data = await sm.snapshot();
  const backupDir = `${dir}.before-force-new-cluster-${opts.now ?? Date.now()}`;
  await opts.rename(dir, backupDir);
  const fresh = await DiskStorage.open(vfs, dir, { encryption: opts.encryption });
  try {
    const snapshot = Snapshot.create({
      data,
      metadata: SnapshotMetadata.create({ index, term, confState: ConfState.create({ voters: [selfId] }) }),
    });
    await fresh.storage.persist({
      snapshot,
      hardState: HardState.create({ term: Math.max(term, state.hardState.term), vote: '', commit: index }),
      entries: [],
      mustSync: true,
    });
  } finally {
    await fresh.storage.close();
  }
  return { index, localCommit: state.hardState.commit, backupDir };
}
