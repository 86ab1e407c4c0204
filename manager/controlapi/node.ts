// The Control API's node calls, as SwarmKit's controlapi/node.go holds them:
// list and inspect (with each manager's live Raft status), update (availability,
// labels, role, with demotion's checks and certificate revocation) and remove.
import { TsswarmError, UsageError } from '../../lib/errors.js';
import type { UpdateNodeRequest } from '../../proto/gen/control.js';
import { Node, NodeAvailability, NodeRole, NodeState } from '../../proto/gen/objects.js';
import { checkNodeLabels } from '../../spec/index.js';
import { revokeOnRemove } from '../../ca/index.js';
import { VersionConflictError } from '../store/index.js';
import type { ManagerContext } from './context.js';
import { findNode } from './refs.js';
import { nodeCertValidityMs, revokeDemoted, withRevocations } from './revocations.js';

export class NodeApi {
  constructor(private readonly m: ManagerContext) {}

  /** The node as the API shows it: a manager's status (leader, reachability, address) read live from Raft. */
  decorate(n: Node): Node {
    const out = Node.create(n);
    const raftId = n.managerStatus?.raftId;
    if (raftId && this.m.consensus.memberList().some((m) => m.raftId === raftId)) {
      const st = this.m.consensus.status();
      out.managerStatus = {
        ...n.managerStatus!,
        leader: st.lead === raftId,
        reachability: raftId === this.m.raftId || st.progress[raftId]?.recentActive || st.lead === raftId ? 'reachable' : 'unreachable',
        addr: this.m.consensus.memberList().find((m) => m.raftId === raftId)?.addr ?? n.managerStatus!.addr,
      };
    } else if (out.managerStatus) {
      out.managerStatus = null;
    }
    return out;
  }

  /** A node by full id, name (or hostname), or unique id prefix, as Docker looks it up (controlapi/refs.ts). */
  findNode(ref: string): Node {
    return this.m.store.view((tx) => findNode(tx, ref));
  }

  async listNodes(): Promise<{ nodes: Node[]; stale: boolean }> {
    const r = await this.m.readView((tx) => tx.nodes.list());
    return {
      nodes: r.value.map((n) => this.decorate(n)).sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? '')),
      stale: r.stale,
    };
  }

  async updateNode(req: UpdateNodeRequest): Promise<Node> {
    // Without a version the caller asked for the change whatever the node's other fields are: a
    // write that landed in between (the node's own state, the allocator's addresses) is read
    // again and the change reapplied. With one, a conflict is the caller's to resolve.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.updateNodeOnce(req);
      } catch (e) {
        if (req.version || !(e instanceof VersionConflictError) || attempt >= 5) throw e;
      }
    }
  }

  private async updateNodeOnce(req: UpdateNodeRequest): Promise<Node> {
    this.m.requireLeader();
    const n = this.findNode(req.ref);
    if (req.version && req.version !== n.meta.version) {
      throw new TsswarmError(
        'CONFLICT',
        `update out of sequence: node ${n.spec?.name} changed since it was read (version ${req.version}, now ${n.meta.version}): read it again and retry`,
      );
    }
    const spec = { ...n.spec, labels: { ...(n.spec?.labels ?? {}) } };
    if (req.availability) {
      const a = { active: NodeAvailability.ACTIVE, pause: NodeAvailability.PAUSE, drain: NodeAvailability.DRAIN }[req.availability];
      if (a === undefined) throw UsageError.invalid('--availability', 'one of active, pause, drain', req.availability);
      spec.availability = a;
    }
    for (const [k, v] of Object.entries(req.labelAdd ?? {})) spec.labels[k] = v;
    for (const k of req.labelRm) {
      if (!(k in spec.labels)) throw new UsageError(`--label-rm ${k}: node ${spec.name} has no label "${k}"`, { field: '--label-rm' });
      delete spec.labels[k];
    }
    // Bounded as a service's labels: a node's spec travels in every node list and session.
    if (Object.keys(req.labelAdd ?? {}).length) checkNodeLabels(spec.labels);
    if (req.role) {
      const role = { worker: NodeRole.WORKER, manager: NodeRole.MANAGER }[req.role];
      if (role === undefined) throw UsageError.invalid('--role', 'worker or manager', req.role);
      if (role === NodeRole.WORKER && spec.role === NodeRole.MANAGER) await this.demoteChecks(n);
      spec.role = role;
    }
    const demoted = n.spec?.role === NodeRole.MANAGER && spec.role === NodeRole.WORKER;
    const now = Date.now();
    await this.m.store.update((tx) => {
      tx.nodes.update(Node.create({ ...n, spec }));
      if (demoted) revokeDemoted(tx, n, now);
    });
    if (req.role === 'worker' && n.managerStatus?.raftId) {
      // Retried by removeDemotedMembers when it fails.
      await this.m.consensus
        .removeMember(n.managerStatus.raftId)
        .catch((err: unknown) => this.m.log.warn({ err }, 'removing the demoted manager from raft failed; the leader tries again'));
    }
    return this.decorate(this.m.store.view((tx) => tx.nodes.get(n.meta.id))!);
  }

  private async demoteChecks(n: Node): Promise<void> {
    const voters = this.m.consensus.status().config.voters;
    if (voters.length <= 1)
      throw new TsswarmError('FAILED_PRECONDITION', `cannot demote ${n.spec?.name}: it is the last manager. Promote another node first`);
    const raftId = n.managerStatus?.raftId ?? '';
    const st = this.m.consensus.status();
    if (!this.m.consensus.quorumSafeWithout(raftId, (r) => st.progress[r]?.recentActive ?? false)) {
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        `cannot demote ${n.spec?.name}: the remaining managers would not have a reachable majority. Bring the unreachable managers back first`,
      );
    }
    if (raftId === this.m.raftId) {
      // Hand over leadership first; the CLI retries on the new leader.
      const to = voters.find((v) => v !== raftId && st.progress[v]?.recentActive);
      if (to) this.m.consensus.transferLeadership(to);
      throw new TsswarmError('NOT_LEADER', 'this manager is handing leadership over before it is demoted; retry in a moment');
    }
  }

  async removeNode(ref: string, force: boolean): Promise<void> {
    // The node's own state writes (a heartbeat, the grace of a new leader) may land between the read and the delete: read again and retry.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.removeNodeOnce(ref, force);
      } catch (e) {
        if (!(e instanceof VersionConflictError) || attempt >= 5) throw e;
      }
    }
  }

  private async removeNodeOnce(ref: string, force: boolean): Promise<void> {
    this.m.requireLeader();
    const n = this.findNode(ref);
    if (n.spec?.role === NodeRole.MANAGER || this.m.consensus.memberList().some((m) => m.nodeId === n.meta.id)) {
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        `node ${n.spec?.name} is a manager: demote it first (\`tsswarm node demote ${n.spec?.name}\`), then remove it`,
      );
    }
    if (!force && n.status?.state !== NodeState.DOWN) {
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        `node ${n.spec?.name} is not down and can't be removed; stop it (or make it leave) first, or use --force`,
      );
    }
    // Every certificate of the node is refused once it is gone from the store;
    // its revocation entry also says so, for anything that checks the certificate alone.
    const now = Date.now();
    await this.m.store.update((tx) => {
      tx.nodes.delete(n.meta.id, n.meta.version);
      const cur = tx.cluster.list()[0]!;
      const rev = revokeOnRemove(cur.spec.nodeRevocations, {
        nodeId: n.meta.id,
        certExpiryMs: Number(n.certificate?.expiryMs ?? 0),
        now,
        defaultExpiryMs: nodeCertValidityMs(cur.spec),
      });
      tx.cluster.update(withRevocations(cur, rev, now));
    });
    this.m.dispatcher.forget(n.meta.id);
  }
}
