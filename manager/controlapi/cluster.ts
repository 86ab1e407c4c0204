// The Control API's cluster calls: join tokens (read, rotate), handing Raft
// leadership to another manager, the cluster's settings (`swarm update`), and
// the cluster-wide part of `info`.
import { UsageError, TsswarmError } from '../../lib/errors.js';
import type {
  GetJoinTokensResponse,
  InfoResponse,
  ManagerInfo,
  TransferLeaderResponse,
  UpdateClusterRequest,
  UpdateClusterResponse,
} from '../../proto/gen/control.js';
import { Cluster, NodeRole } from '../../proto/gen/objects.js';
import { makeJoinToken } from '../../ca/index.js';
import { newUnlockKey } from '../raft/storage/unlock-key.js';
import { applyClusterSettings, clusterSettings } from '../../spec/cluster.js';
import { VersionConflictError } from '../store/index.js';
import type { ManagerContext } from './context.js';
import type { NodeApi } from './node.js';
import type { CaApi } from './ca.js';

export class ClusterApi {
  constructor(
    private readonly m: ManagerContext,
    private readonly nodes: NodeApi,
    private readonly ca?: CaApi,
  ) {}

  joinTokens(): GetJoinTokensResponse {
    const c = this.m.cluster();
    if (!c) throw new TsswarmError('UNAVAILABLE', 'the cluster is still being created; retry in a moment');
    return { worker: c.spec.workerToken, manager: c.spec.managerToken, managerAddrs: this.m.managerAddrs() };
  }

  /**
   * Hands Raft leadership to manager `ref` (or, when empty, to the reachable voter with the most
   * of the log) and resolves once it leads. The leader's own call; followers forward it.
   */
  async transferLeader(ref: string): Promise<TransferLeaderResponse> {
    this.m.requireLeader();
    const st = this.m.consensus.status();
    let raftId: string;
    if (ref) {
      const n = this.nodes.findNode(ref);
      raftId = n.managerStatus?.raftId ?? '';
      if (n.spec?.role !== NodeRole.MANAGER || !raftId || !st.config.voters.includes(raftId)) {
        throw new TsswarmError(
          'FAILED_PRECONDITION',
          `cannot hand leadership to ${n.spec?.name || n.meta.id}: it is not a voting manager (promote it with \`tsswarm node promote\` and let it catch up)`,
        );
      }
    } else {
      const others = st.config.voters.filter((v) => v !== this.m.raftId && st.progress[v]?.recentActive);
      others.sort((a, b) => (st.progress[b]?.match ?? 0) - (st.progress[a]?.match ?? 0));
      if (others.length === 0)
        throw new TsswarmError(
          'FAILED_PRECONDITION',
          'no other manager is reachable to take over leadership: promote or bring back a manager first',
        );
      raftId = others[0]!;
    }
    const nodeId = this.m.consensus.memberNodeId(raftId) ?? '';
    if (raftId === this.m.raftId) return { nodeId, term: st.term, unchanged: true };
    const term = await this.m.consensus.moveLeader(raftId, Math.max(3 * this.m.consensus.electionTimeoutMs, 4_000));
    return { nodeId, term, unchanged: false };
  }

  async rotateJoinToken(role: string): Promise<GetJoinTokensResponse> {
    this.m.requireLeader();
    if (role !== 'worker' && role !== 'manager') throw UsageError.invalid('role', 'worker or manager', role);
    const c = this.m.cluster()!;
    const tok = makeJoinToken(c.spec.rootCaCertPem, role);
    await this.m.store.update((tx) =>
      tx.cluster.update(
        Cluster.create({ ...c, spec: { ...c.spec, ...(role === 'worker' ? { workerToken: tok } : { managerToken: tok }) } }),
      ),
    );
    return this.joinTokens();
  }

  /**
   * `swarm update`: the settings named in `req.set` written to the cluster object, checked as
   * the CLI checks them. With a version, the write is refused (CONFLICT) when the cluster changed
   * since the caller read it; without one, a write that lands in between is read again.
   */
  async updateCluster(req: UpdateClusterRequest): Promise<UpdateClusterResponse> {
    this.m.requireLeader();
    const settings = req.settings ?? {
      taskHistoryLimit: 0,
      dispatcherHeartbeatMs: 0,
      certExpiryMs: 0,
      snapshotInterval: 0,
      autolock: false,
    };
    for (let attempt = 1; ; attempt++) {
      const c = this.m.cluster();
      if (!c) throw new TsswarmError('UNAVAILABLE', 'the cluster is still being created; retry in a moment');
      const version = Number(c.meta.version ?? 0);
      if (req.version && Number(req.version) !== version)
        throw new TsswarmError(
          'CONFLICT',
          `update out of sequence: the cluster changed since it was read (version ${req.version}, now ${version}): read it again and retry`,
        );
      const spec = applyClusterSettings(c.spec, settings, req.set);
      // Autolock on keeps the key it has (turning it on twice shows the same key); off forgets it.
      let madeKey = '';
      if (spec.encryption) {
        if (!spec.encryption.autoLockManagers) spec.encryption = { autoLockManagers: false, managerUnlockKey: '' };
        else if (!spec.encryption.managerUnlockKey) {
          madeKey = newUnlockKey();
          spec.encryption = { autoLockManagers: true, managerUnlockKey: madeKey };
        }
      }
      try {
        await this.m.store.update((tx) => tx.cluster.update(Cluster.create({ ...c, spec })));
      } catch (e) {
        if (req.version || !(e instanceof VersionConflictError) || attempt >= 5) throw e;
        continue;
      }
      this.m.log.info({ set: req.set, settings: clusterSettings(spec) }, 'cluster settings updated');
      const now = this.m.cluster();
      return { settings: clusterSettings(now?.spec), version: Number(now?.meta.version ?? 0), unlockKey: madeKey };
    }
  }

  /** `unlock-key`: the managers' unlock key; refused when autolock is off (there is none). */
  unlockKey(): { unlockKey: string } {
    this.m.requireLeader();
    const e = this.m.cluster()?.spec.encryption;
    if (!e?.autoLockManagers || !e.managerUnlockKey)
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        'no unlock key is set: autolock is off. Turn it on with `tsswarm swarm update --autolock=true`, which prints the key',
      );
    return { unlockKey: e.managerUnlockKey };
  }

  /** `unlock-key --rotate`: a new key; every manager rewraps its keys with it as it applies the change, and the old key stops unlocking them. */
  async rotateUnlockKey(): Promise<{ unlockKey: string }> {
    this.unlockKey();
    for (let attempt = 1; ; attempt++) {
      const c = this.m.cluster()!;
      const key = newUnlockKey();
      try {
        await this.m.store.update((tx) =>
          tx.cluster.update(Cluster.create({ ...c, spec: { ...c.spec, encryption: { autoLockManagers: true, managerUnlockKey: key } } })),
        );
      } catch (e) {
        if (!(e instanceof VersionConflictError) || attempt >= 5) throw e;
        continue;
      }
      this.m.log.info('manager unlock key rotated');
      return { unlockKey: key };
    }
  }

  /** A root CA rotation under way, without the certificates (info shows progress only); null when none. */
  private caRotation(): InfoResponse['caRotation'] {
    if (!this.ca || !this.m.cluster()?.spec.rootRotation) return null;
    return { ...this.ca.status(), rootCaCertPem: '', newRootCaCertPem: '' };
  }

  info(base: Partial<InfoResponse>): InfoResponse {
    const st = this.m.consensus.status();
    const members = this.m.consensus.memberList();
    const managers: ManagerInfo[] = members.map((m) => ({
      nodeId: m.nodeId,
      raftId: m.raftId,
      addr: m.addr,
      leader: st.lead === m.raftId,
      reachable: m.raftId === this.m.raftId || st.lead === m.raftId || (st.progress[m.raftId]?.recentActive ?? false),
      voter: st.config.voters.includes(m.raftId),
    }));
    return {
      ...(base as InfoResponse),
      isManager: true,
      managers,
      leaderNodeId: this.m.consensus.leaderNodeId(),
      leaderAddr: this.m.consensus.leaderAddr,
      raftTerm: st.term,
      raftCommit: st.commit,
      raftApplied: st.applied,
      raftState: String(st.raftState),
      nodes: this.m.store.view((tx) => tx.nodes.list().length),
      clusterSettings: clusterSettings(this.m.cluster()?.spec),
      clusterVersion: Number(this.m.cluster()?.meta.version ?? 0),
      caRotation: this.caRotation(),
      // Without a known leader, nothing here is confirmed by the cluster.
      stale: (base.stale ?? false) || this.m.consensus.leader === '',
    };
  }
}
