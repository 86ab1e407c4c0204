// A manager: the replicated store on the manager's Raft member, the CA, the
// dispatcher, Raft membership for joining managers, and the Control API
// implementation. Its gRPC services share the daemon's mTLS server; every call
// is authorized from the caller's certificate (manager/authz.ts). Writes are
// served by the leader only: a follower answers NOT_LEADER with the leader's
// address, and the daemon forwards for the CLI.
import * as grpc from '@grpc/grpc-js';
import { newId } from '../lib/ids.js';
import type pino from 'pino';
import { TsswarmError, UsageError } from '../lib/errors.js';
import { parseNodeAddr } from '../lib/addr.js';
import { toServiceError, unary } from '../lib/grpc.js';
import {
  type AgentMessage,
  type ControlHandlers,
  ControlService,
  DispatcherService,
  type ManagerMessage,
  type IssueEngineCertificateRequest,
  type IssueNodeCertificateRequest,
  type IssueNodeCertificateResponse,
  type JoinRaftRequest,
  type JoinRaftResponse,
  NodeCAService,
  RaftMembershipService,
} from '../proto/gen/control.js';
import {
  Cluster,
  ClusterSpec,
  ManagerStatus,
  Meta,
  Node,
  NodeAvailability,
  NodeCertificate,
  NodeDescription,
  NodeRole,
  NodeSpec,
  NodeState,
  NodeStatus,
} from '../proto/gen/objects.js';
import { type AuthzContext, type Caller, callerOf, requireRole, requireStoreRole } from './authz.js';
import {
  bundleDigest,
  CLOCK_SKEW_MS,
  caDigest,
  joinCertificates,
  makeJoinToken,
  parseNodeCert,
  RevocationIndex,
  renewalDue,
  renewalDueAt,
  revokeOnRenewal,
  roleForToken,
  signingCA,
  signNodeCSR,
  trustBundle,
} from '../ca/index.js';
import { Consensus, type MemberRecord } from './consensus/index.js';
import { type Kek, kekFromUnlockKey } from './raft/storage/index.js';
import { Dispatcher, writeNodeState } from './dispatcher/dispatcher.js';
import { nodeHostnameError } from './dispatcher/limits.js';
import { MemoryStore, type Subscription, VersionConflictError } from './store/index.js';
import { clusterSettings, DEFAULT_TASK_HISTORY } from '../spec/cluster.js';
import { TaskRelay } from './relay.js';
import { inspectDataplane } from './controlapi/dataplane-report.js';
import { ConfigApi, NetworkApi, SecretApi, ServiceApi } from './controlapi/index.js';
import { CONTROL_METHODS, CONTROL_ROUTES, controlImplementation } from './controlapi/server.js';
import { ClusterApi } from './controlapi/cluster.js';
import { CaApi } from './controlapi/ca.js';
import type { ManagerContext } from './controlapi/context.js';
import { NodeApi } from './controlapi/node.js';
import { nodeCertValidityMs, withRevocations } from './controlapi/revocations.js';
export { revokeDemoted } from './controlapi/revocations.js';
import { ensureIngressNetwork } from './allocator/index.js';
import { type Orchestration, startOrchestration } from './orchestrator/index.js';

export interface ManagerBootstrap {
  clusterId: string;
  caCertPem: string;
  caKeyPem: string;
  hostname: string;
  certSerial: string;
  certExpiryMs: number;
  /** Validity of node certificates (0: the CA's default, 90 days). */
  nodeCertValidityMs: number;
  /** `init --autolock`: the cluster starts locked with this unlock key ('' : autolock off). */
  unlockKey?: string;
}

export interface ManagerOptions {
  raftDir: string;
  nodeId: string;
  raftId: string;
  clusterId: string;
  advertiseAddr: string;
  server: grpc.Server;
  credentials: { server: grpc.ServerCredentials; client: grpc.ChannelCredentials };
  logger: pino.Logger;
  /** First manager of a new cluster. */
  bootstrap?: ManagerBootstrap;
  /** A joining manager: the members the leader told us of. */
  members?: MemberRecord[];
  /** Disaster recovery: restart as a one-manager cluster keeping the committed state. */
  forceNewCluster?: boolean;
  /**
   * The heartbeat period a new cluster starts with (the daemon's --heartbeat-period). Once the
   * cluster object exists its setting (`swarm update --dispatcher-heartbeat`) is the one used.
   */
  heartbeatPeriodMs?: number;
  version: string;
  /** The cluster's CA certificate as this node knows it. */
  caCertPem: () => string;
  /** How long a Control API read waits for a leader to confirm it before it is served stale (default 2 s). */
  readTimeoutMs?: number;
  /** The unlock key's KEK of a manager locked by autolock (`tsswarm unlock`). */
  unlock?: Kek;
  /**
   * Autolock changed for this manager (turned on, off, or its key rotated) and its Raft keys are
   * rewrapped: the daemon stores its TLS key under `nodeKeySecret`, or in clear when null.
   */
  onLockChange?: (nodeKeySecret: Uint8Array | null, unlock: Kek | null) => Promise<void>;
}

const READ_TIMEOUT_MS = 2000;
const STALE_NOTE = 'this manager could not confirm it is up to date with the leader; the answer may be stale';
/** How often the leader looks for demoted managers still in the Raft group. */
const MEMBER_RECONCILE_MS = 2000;

/** At most one renewal per node in this window (shorter for short-lived certificates, so renewal keeps up). */
export function renewalWindowMs(validityMs: number): number {
  return Math.min(10_000, Math.floor((validityMs || 90 * 24 * 3_600_000) / 6));
}

/**
 * The authorization context of a manager: the certificate checks against the
 * node's own copy of the CA (a new manager must authorize Raft traffic before
 * its store holds the cluster), revocations from the cluster object, and the
 * node's role from the store.
 */
function makeAuthz(o: ManagerOptions, store: MemoryStore): AuthzContext {
  const spec = (): ClusterSpec | undefined => store.view((tx) => tx.cluster.list()[0])?.spec ?? undefined;
  // Every call checks revocation: the index is built once per cluster version (its Raft index).
  let index: { version: number; spec: ClusterSpec | undefined; idx: RevocationIndex } | undefined;
  const revocations = (): RevocationIndex => {
    const c = store.view((tx) => tx.cluster.list()[0]);
    const version = Number(c?.meta?.version ?? -1);
    if (!index || index.version !== version || index.spec !== c?.spec)
      index = { version, spec: c?.spec ?? undefined, idx: new RevocationIndex(c?.spec ?? undefined) };
    return index.idx;
  };
  // The roots trusted: the node's own ca.pem, and what the cluster object says nodes should trust
  // (during a root rotation this manager may call and be called before its own ca.pem follows).
  let trust: { own: string; spec: ClusterSpec | undefined; pem: string } | undefined;
  const caCertPem = (): string => {
    const own = o.caCertPem();
    const s = spec();
    if (!trust || trust.own !== own || trust.spec !== s) trust = { own, spec: s, pem: joinCertificates(own, s ? trustBundle(s) : '') };
    return trust.pem;
  };
  return {
    caCertPem,
    clusterId: () => o.clusterId,
    revocation: (cert) => revocations().check(cert),
    storeRole: (nodeId) => {
      const n = store.view((tx) => tx.nodes.get(nodeId));
      if (n) return n.spec?.role === NodeRole.MANAGER ? 'manager' : 'worker';
      // The first manager's own agent can call before the bootstrap transaction that creates its node has applied.
      if (nodeId === o.nodeId && o.bootstrap && !spec()) return 'manager';
      return null;
    },
  };
}
export const DEFAULT_HEARTBEAT_MS = 5000;

/** Validity options for a node certificate: short validities are backdated less, so renewal timing stays meaningful. */
export { certValidity } from '../ca/validity.js';
import { certValidity } from '../ca/validity.js';

/** Node ids are ordinary object ids. */
export const newNodeId = newId;

/** Control methods served by ServiceApi and NetworkApi; writes among them go to the leader. */

export class Manager {
  readonly store: MemoryStore;
  readonly consensus: Consensus;
  readonly dispatcher: Dispatcher;
  readonly relay: TaskRelay;
  readonly services: ServiceApi;
  readonly networks: NetworkApi;
  /** The Control API's secret and config calls (manager/controlapi/secret.ts). */
  readonly secrets: SecretApi;
  readonly configs: ConfigApi;
  /** The Control API's node calls (manager/controlapi/node.ts). */
  readonly nodes: NodeApi;
  /** The Control API's cluster calls: join tokens, leadership transfer, info (manager/controlapi/cluster.ts). */
  readonly clusterApi: ClusterApi;
  /** The Control API's root CA calls and the leader's end of a rotation (manager/controlapi/ca.ts). */
  readonly caApi: CaApi;
  private orchestration: Orchestration | null = null;
  private readonly o: ManagerOptions;
  private readonly log: pino.Logger;
  readonly authz: AuthzContext;

  /** The root of the certificate each node opened its latest session with (the leader holds the sessions). */
  private readonly sessionRoots = new Map<string, string>();
  /** Last renewal per node id (leader only; a new leader starts afresh, which only loosens the limit once). */
  private readonly renewals = new Map<string, number>();
  /** Removes from Raft the demoted managers whose removal did not go through at demotion. */
  private memberReconciler: NodeJS.Timeout | null = null;
  private reconcilingMembers = false;
  /** Follows the cluster object's settings (heartbeat period, snapshot interval) on every manager. */
  private settingsSub: Subscription | null = null;

  private constructor(o: ManagerOptions, store: MemoryStore, consensus: Consensus, authz: AuthzContext) {
    this.o = o;
    this.store = store;
    this.consensus = consensus;
    this.log = o.logger.child({ component: 'manager' });
    this.authz = authz;
    this.dispatcher = new Dispatcher({
      heartbeatPeriodMs: o.heartbeatPeriodMs ?? DEFAULT_HEARTBEAT_MS,
      graceMultiplier: 3,
      logger: o.logger,
      store,
      liveness: {
        setState: (id, state, info) => this.setNodeState(id, state, info),
        nodeIds: () => this.store.view((tx) => tx.nodes.list().map((n) => n.meta.id)),
        desiredRole: (id) => {
          const n = this.store.view((tx) => tx.nodes.get(id));
          return n?.spec?.role === NodeRole.MANAGER ? 'manager' : 'worker';
        },
        managerAddrs: () => this.managerAddrs(),
        managerNodeIds: () => this.managerNodeIds(),
        leaderAddr: () => this.consensus.leaderAddr,
        isLeader: () => this.consensus.isLeader,
        silentManagers: () => this.silentManagers(),
        caDigests: () => this.caDigests(),
      },
    });
    this.relay = new TaskRelay(store, this.dispatcher, o.logger);
    this.services = new ServiceApi({ store, logger: o.logger, read: (fn) => this.readView(fn) });
    this.networks = new NetworkApi({ store, logger: o.logger, read: (fn) => this.readView(fn) });
    this.secrets = new SecretApi({ store, logger: o.logger, read: (fn) => this.readView(fn) });
    this.configs = new ConfigApi({ store, logger: o.logger, read: (fn) => this.readView(fn) });
    const ctx: ManagerContext = {
      store,
      consensus,
      dispatcher: this.dispatcher,
      log: this.log,
      raftId: o.raftId,
      requireLeader: () => this.requireLeader(),
      readView: (fn) => this.readView(fn),
      cluster: () => this.cluster(),
      managerAddrs: () => this.managerAddrs(),
    };
    this.nodes = new NodeApi(ctx);
    this.caApi = new CaApi(ctx, () => this.sessionRoots);
    this.clusterApi = new ClusterApi(ctx, this.nodes, this.caApi);
  }

  private caDigestMemo: { spec: ClusterSpec; d: { trustDigest: string; signingRootDigest: string } } | undefined;
  /** What sessions tell nodes about the CA: the trust bundle to hold and the root whose key signs (a rotation changes both). */
  caDigests(): { trustDigest: string; signingRootDigest: string } | undefined {
    const c = this.cluster();
    if (!c?.spec.rootCaCertPem) return undefined;
    if (this.caDigestMemo?.spec !== c.spec)
      this.caDigestMemo = {
        spec: c.spec,
        d: { trustDigest: bundleDigest(trustBundle(c.spec)), signingRootDigest: signingCA(c.spec).rootDigest },
      };
    return this.caDigestMemo.d;
  }

  /** GetRootCA: the root the join tokens pin, or (bundle) the roots nodes should trust. */
  rootCA(bundle: boolean): string {
    const c = this.cluster();
    if (!c?.spec.rootCaCertPem) return this.authz.caCertPem();
    return bundle ? trustBundle(c.spec) : c.spec.rootCaCertPem;
  }

  /**
   * Every Control API call as this manager answers it. A leader-only call (CONTROL_ROUTES) is
   * refused here when this manager does not lead; leaderProxy() forwards it before it gets here.
   */
  controlHandlers(): ControlHandlers {
    const svc = this.services;
    const net = this.networks;
    const h: ControlHandlers = {
      listNodes: () => this.nodes.listNodes(),
      getNode: async (req) => {
        const r = await this.readView(() => this.nodes.findNode(req.ref));
        return { node: this.nodes.decorate(r.value), stale: r.stale };
      },
      updateNode: async (req) => ({ node: await this.nodes.updateNode(req) }),
      removeNode: async (req) => {
        await this.nodes.removeNode(req.ref, req.force);
        return {};
      },
      getJoinTokens: async () => this.clusterApi.joinTokens(),
      rotateJoinToken: (req) => this.clusterApi.rotateJoinToken(req.role),
      transferLeader: (req) => this.clusterApi.transferLeader(req.ref),
      updateCluster: (req) => this.clusterApi.updateCluster(req),
      getUnlockKey: async () => this.clusterApi.unlockKey(),
      rotateUnlockKey: () => this.clusterApi.rotateUnlockKey(),
      info: async () => this.clusterApi.info({ state: 'active', version: this.o.version }),
      getRootCAStatus: () => this.caApi.getStatus(),
      rotateRootCA: () => this.caApi.rotate(),
      issueOperatorCertificate: async (req) => this.caApi.issueOperatorCertificate(req),
      createService: (req) => svc.createService(req),
      getService: (req) => svc.getService(req),
      listServices: (req) => svc.listServices(req),
      updateService: (req) => svc.updateService(req),
      removeService: (req) => svc.removeService(req),
      listTasks: (req) => svc.listTasks(req),
      getTask: (req) => svc.getTask(req),
      serviceLogs: (req, write, signal) => this.relay.logs(req, write, signal),
      exec: (req, write, signal) => this.relay.exec(req, write, signal),
      createNetwork: (req) => net.createNetwork(req),
      getNetwork: (req) => net.getNetwork(req),
      listNetworks: (req) => net.listNetworks(req),
      removeNetwork: (req) => net.removeNetwork(req),
      // Only the leader holds the agents' sessions.
      inspectDataplane: (req) => inspectDataplane(this.store, this.dispatcher, req),
      createSecret: (req) => this.secrets.createSecret(req),
      getSecret: (req) => this.secrets.getSecret(req),
      listSecrets: (req) => this.secrets.listSecrets(req),
      removeSecret: (req) => this.secrets.removeSecret(req),
      updateSecret: (req) => this.secrets.updateSecret(req),
      createConfig: (req) => this.configs.createConfig(req),
      getConfig: (req) => this.configs.getConfig(req),
      listConfigs: (req) => this.configs.listConfigs(req),
      removeConfig: (req) => this.configs.removeConfig(req),
      updateConfig: (req) => this.configs.updateConfig(req),
    };
    for (const m of CONTROL_METHODS) {
      if (CONTROL_ROUTES[m] !== 'leader') continue;
      const f = (h as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[m]!;
      (h as unknown as Record<string, unknown>)[m] = async (...a: unknown[]) => {
        this.requireLeader();
        return f(...a);
      };
    }
    return h;
  }

  static async start(o: ManagerOptions): Promise<Manager> {
    let self: Manager | undefined;
    const store = new MemoryStore({ propose: (data: Uint8Array) => self!.consensus.proposeStore(data) });
    const authz = makeAuthz(o, store);
    // Raft traffic needs a manager certificate; the membership (not the store,
    // which a joining manager does not hold yet, and which a demoted manager
    // leaves before its removal from the group commits) decides who may speak.
    // A node the store no longer holds (removed) is refused outright, once the store holds the cluster at all;
    // before that (a joining manager), the caller must be a member the leader told us of.
    let consensusRef: Consensus | undefined;
    const raftAuthz: AuthzContext = {
      ...authz,
      storeRole: (nodeId) => {
        if (store.view((tx) => tx.cluster.list().length > 0)) return authz.storeRole!(nodeId) !== null ? 'manager' : null;
        const members = consensusRef?.memberList() ?? [];
        return members.length === 0 || members.some((m) => m.nodeId === nodeId) ? 'manager' : null;
      },
    };
    const authzForRaft = (call: Parameters<typeof callerOf>[0]): grpc.ServiceError | null => {
      try {
        requireRole(call, raftAuthz, ['manager']);
        return null;
      } catch (e) {
        return Object.assign(new Error((e as Error).message), {
          code: grpc.status.PERMISSION_DENIED,
          details: (e as Error).message,
          metadata: new grpc.Metadata(),
        });
      }
    };
    const raftSenders = (call: Parameters<typeof callerOf>[0]): ((from: string) => boolean) => {
      let nodeId = '';
      try {
        nodeId = callerOf(call, raftAuthz)?.nodeId ?? '';
      } catch {
        // authorize() refused this stream already
      }
      return (from) => nodeId !== '' && consensusRef?.memberNodeId(from) === nodeId;
    };
    const consensus = await Consensus.open({
      dir: o.raftDir,
      raftId: o.raftId,
      nodeId: o.nodeId,
      advertiseAddr: o.advertiseAddr,
      clusterId: o.clusterId,
      server: o.server,
      credentials: o.credentials,
      authorize: authzForRaft,
      senders: raftSenders,
      store,
      logger: o.logger,
      bootstrap: !!o.bootstrap,
      members: o.members,
      forceNewCluster: o.forceNewCluster,
      unlock: o.unlock,
    });
    consensusRef = consensus;
    self = new Manager(o, store, consensus, authz);
    const m = self;
    consensus.onLeaderChange((lead) => {
      if (lead === o.raftId) {
        void m.onBecameLeader();
      } else {
        m.dispatcher.lostLeadership();
        m.sessionRoots.clear();
        void m.stopOrchestration();
      }
    });
    m.registerServices();
    m.followClusterSettings();
    m.memberReconciler = setInterval(() => {
      // A snapshot restore closes store subscriptions: follow the settings again.
      m.followClusterSettings();
      void m.removeDemotedMembers();
      void m.caApi.reconcile();
    }, MEMBER_RECONCILE_MS);
    if (consensus.isLeader) void m.onBecameLeader();
    return m;
  }

  // ------------------------------------------------------------ leader duties

  private async onBecameLeader(): Promise<void> {
    const b = this.o.bootstrap;
    if (b && !this.cluster()) {
      const now = Date.now();
      await this.store.update((tx) => {
        tx.cluster.create(
          Cluster.create({
            meta: Meta.create({ id: this.o.clusterId }),
            spec: ClusterSpec.create({
              name: 'default',
              heartbeatPeriodMs: this.o.heartbeatPeriodMs ?? DEFAULT_HEARTBEAT_MS,
              rootCaCertPem: b.caCertPem,
              rootCaKeyPem: b.caKeyPem,
              workerToken: makeJoinToken(b.caCertPem, 'worker'),
              managerToken: makeJoinToken(b.caCertPem, 'manager'),
              nodeCertExpiryMs: b.nodeCertValidityMs,
              orchestration: { taskHistoryRetentionLimit: DEFAULT_TASK_HISTORY },
              ...(b.unlockKey ? { encryption: { autoLockManagers: true, managerUnlockKey: b.unlockKey } } : {}),
            }),
          }),
        );
        tx.nodes.create(
          Node.create({
            meta: Meta.create({ id: this.o.nodeId, createdAt: now, updatedAt: now }),
            spec: NodeSpec.create({ name: b.hostname, role: NodeRole.MANAGER, availability: NodeAvailability.ACTIVE }),
            role: NodeRole.MANAGER,
            status: NodeStatus.create({ state: NodeState.UNKNOWN, addr: this.o.advertiseAddr }),
            description: NodeDescription.create({ hostname: b.hostname }),
            managerStatus: ManagerStatus.create({ raftId: this.o.raftId, addr: this.o.advertiseAddr }),
            certificate: NodeCertificate.create({
              serial: b.certSerial,
              expiryMs: b.certExpiryMs,
              role: NodeRole.MANAGER,
              rootDigest: caDigest(b.caCertPem),
            }),
          }),
        );
      });
      this.log.info({ cluster: this.o.clusterId }, 'cluster created');
    }
    if (this.consensus.isLeader) {
      this.dispatcher.becameLeader();
      if (!this.orchestration) {
        this.orchestration = startOrchestration({ store: this.store, logger: this.o.logger });
        this.log.info('orchestrator and scheduler started');
        ensureIngressNetwork(this.store, this.o.logger).catch((err: unknown) =>
          this.log.warn({ err }, 'creating the ingress network failed; the next leader tries again'),
        );
      }
    }
  }

  /**
   * The cluster's settings take effect here on every manager, at start and whenever the cluster
   * object changes, without a restart: the dispatcher's heartbeat period (sent to agents in the
   * next ack) and Raft's snapshot interval. The orchestrator and the CA read theirs at each use.
   */
  private followClusterSettings(): void {
    if (this.settingsSub && !this.settingsSub.closed) return;
    this.settingsSub = this.store.subscribe(
      (e) => {
        if (e.kind !== 'commit') this.applyClusterSettings();
      },
      { tables: ['cluster'], commits: 'none' },
    );
    this.applyClusterSettings();
  }

  private applyClusterSettings(): void {
    const c = this.cluster();
    if (!c) return;
    const s = clusterSettings(c.spec);
    this.dispatcher.setHeartbeatPeriod(s.dispatcherHeartbeatMs);
    this.consensus.node.setSnapshotEntries(s.snapshotInterval);
    this.followAutolock(c.spec.encryption?.autoLockManagers ? c.spec.encryption.managerUnlockKey : '');
  }

  /** The unlock key this manager's keys are wrapped by ('' : none), as last applied; null before the first. */
  private lockedWith: string | null = null;
  private locking: Promise<void> = Promise.resolve();

  /**
   * Autolock on every manager: its Raft data keys (and then, through the daemon, its TLS key)
   * wrapped by the cluster's unlock key, or by a stored key when autolock is off. Changes apply in
   * order; a failed one is retried at the next change of the cluster object and logged.
   */
  private followAutolock(key: string): void {
    if (key === this.lockedWith) return;
    this.lockedWith = key;
    this.locking = this.locking.then(async () => {
      if (this.closed || this.lockedWith !== key) return;
      try {
        const kek = key ? kekFromUnlockKey(key) : null;
        const secret = await this.consensus.setUnlockKek(kek);
        await this.o.onLockChange?.(secret, kek);
      } catch (err) {
        this.lockedWith = null;
        this.log.error(
          { err: (err as Error).message },
          'could not apply the autolock setting to this manager; retrying at the next cluster change',
        );
      }
    });
  }

  private async stopOrchestration(): Promise<void> {
    const o = this.orchestration;
    this.orchestration = null;
    await o?.stop();
  }

  private setNodeState(
    id: string,
    state: 'ready' | 'down',
    info: { message: string; addr?: string; description?: { description?: unknown; addr?: string } | null },
  ): Promise<void> {
    return writeNodeState(this.store, id, state, info, { isLeader: () => this.consensus.isLeader, log: this.log });
  }

  /**
   * A demoted manager leaves the Raft group after its store write; when that
   * removal was refused or lost (leader change, a change already pending), the
   * leader finds it here and removes it then, one at a time, quorum permitting.
   */
  private async removeDemotedMembers(): Promise<void> {
    if (!this.consensus.isLeader || this.reconcilingMembers) return;
    this.reconcilingMembers = true;
    try {
      for (const m of this.consensus.memberList()) {
        if (m.raftId === this.o.raftId || !m.nodeId) continue;
        const n = this.store.view((tx) => tx.nodes.get(m.nodeId));
        if (n?.spec?.role !== NodeRole.WORKER) continue;
        const st = this.consensus.status();
        if (!this.consensus.quorumSafeWithout(m.raftId, (r) => st.progress[r]?.recentActive ?? false)) continue;
        this.log.info({ node: m.nodeId, member: m.raftId }, 'a demoted manager is still in the raft group: removing it');
        await this.consensus
          .removeMember(m.raftId)
          .catch((err: unknown) => this.log.warn({ err, member: m.raftId }, 'removing the demoted manager from raft failed; trying again'));
        return;
      }
    } finally {
      this.reconcilingMembers = false;
    }
  }

  private silentManagers(): string[] {
    const st = this.consensus.status();
    const out: string[] = [];
    for (const m of this.consensus.memberList()) {
      if (m.raftId === this.o.raftId) continue;
      const p = st.progress[m.raftId];
      if (p && !p.recentActive && m.nodeId) out.push(m.nodeId);
    }
    return out;
  }

  managerAddrs(): string[] {
    return this.consensus
      .memberList()
      .filter((m) => this.consensus.isVoter(m.raftId))
      .map((m) => m.addr);
  }

  /**
   * The nodes an agent may take for managers: Raft members (learners too, so
   * a promoted node is known well before it can lead) that the store still
   * holds as managers (a demoted one drops out before its member is removed).
   * Empty until the store holds them, which agents read as "not known yet".
   */
  managerNodeIds(): string[] {
    return this.store.view((tx) =>
      this.consensus
        .memberList()
        .filter((m) => m.nodeId && tx.nodes.get(m.nodeId)?.spec?.role === NodeRole.MANAGER)
        .map((m) => m.nodeId),
    );
  }

  cluster(): Cluster | undefined {
    return this.store.view((tx) => tx.cluster.list()[0]);
  }

  requireLeader(): void {
    if (!this.consensus.isLeader) {
      const addr = this.consensus.leaderAddr;
      throw new TsswarmError(
        'NOT_LEADER',
        addr
          ? `this manager is not the leader; the leader is at ${addr}`
          : `no leader: quorum is lost or an election is under way (${this.reachableManagers()} of ${this.consensus.memberList().length} managers reachable). Writes are refused until a majority of managers is back; if they are lost for good, run \`tsswarm init --force-new-cluster\` on a surviving manager`,
      );
    }
  }

  private reachableManagers(): number {
    const st = this.consensus.status();
    return this.consensus.memberList().filter((m) => m.raftId === this.o.raftId || st.progress[m.raftId]?.recentActive).length;
  }

  /**
   * A linearizable view when a leader confirms a read point in time, else the local one marked
   * `stale` (no leader, or no quorum behind it): the caller is told, never served old state silently.
   * The deadline also withdraws the read from Raft, so a lost quorum leaves no read behind.
   */
  async readView<T>(fn: (tx: Parameters<Parameters<MemoryStore['view']>[0]>[0]) => T): Promise<{ value: T; stale: boolean }> {
    let stale = false;
    try {
      await this.consensus.readBarrier({ signal: AbortSignal.timeout(this.o.readTimeoutMs ?? READ_TIMEOUT_MS) });
    } catch (err) {
      stale = true;
      this.log.debug({ err }, 'read served from local state: no leader confirmed it');
    }
    try {
      return { value: this.store.view(fn), stale };
    } catch (e) {
      // "not found" from unconfirmed state may be wrong too: the answer carries the same warning.
      if (stale && e instanceof TsswarmError) e.message += ` (${STALE_NOTE})`;
      throw e;
    }
  }

  // ------------------------------------------------------------ Control API (callers: local daemon or a manager)

  // ------------------------------------------------------------ CA and Raft membership

  private async issueCertificate(req: IssueNodeCertificateRequest, caller: Caller | null): Promise<IssueNodeCertificateResponse> {
    this.requireLeader();
    const c = this.cluster();
    if (!c) throw new TsswarmError('UNAVAILABLE', 'the cluster is still being created; retry in a moment');
    const spec = c.spec;
    // During a root rotation the new root's key signs, and the cross-signed certificate goes along.
    const signer = signingCA(spec);
    const now = Date.now();
    let nodeId: string;
    let role: 'worker' | 'manager';
    let existing: Node | undefined;
    if (req.nodeId) {
      // Renewal or role change: the node proves who it is with its current certificate.
      if (!caller || caller.nodeId !== req.nodeId) throw new TsswarmError('PERMISSION_DENIED', 'a node may only renew its own certificate');
      existing = this.store.view((tx) => tx.nodes.get(req.nodeId));
      if (!existing)
        throw new TsswarmError('PERMISSION_DENIED', `node ${req.nodeId} was removed from the cluster: join it again with a token`);
      // What the managers want it to be: a promoted worker gets a manager certificate, a demoted manager a worker one.
      role = existing.spec?.role === NodeRole.MANAGER ? 'manager' : 'worker';
      // Early renewals would only churn revocations and Raft writes: refused unless the role changed,
      // or a root rotation wants a certificate from the new root and this one is from another.
      const held = { notBefore: new Date(caller.notBeforeMs), notAfter: new Date(caller.notAfterMs) };
      const rotating = !!spec.rootRotation && caller.rootDigest !== signer.rootDigest;
      if (role === caller.role && !rotating && !renewalDue(held, now, CLOCK_SKEW_MS)) {
        throw new TsswarmError(
          'FAILED_PRECONDITION',
          `node ${req.nodeId} asked to renew a certificate that is not due: it is valid until ${held.notAfter.toISOString()} and nodes renew once a third to a half of its validity is left; renew from ${renewalDueAt(held, CLOCK_SKEW_MS).toISOString()}`,
        );
      }
      const window = renewalWindowMs(spec.nodeCertExpiryMs);
      const last = this.renewals.get(req.nodeId) ?? -Infinity;
      if (now - last < window) {
        throw new TsswarmError(
          'RESOURCE_EXHAUSTED',
          `node ${req.nodeId} renewed its certificate ${now - last} ms ago: one renewal per ${window} ms is allowed; retry in ${window - (now - last)} ms`,
        );
      }
      this.renewals.set(req.nodeId, now);
      if (this.renewals.size > 100_000) this.renewals.delete(this.renewals.keys().next().value as string);
      nodeId = req.nodeId;
    } else {
      role = roleForToken(req.token, { workerToken: spec.workerToken, managerToken: spec.managerToken });
      // The address others will dial: an IPv4 address now, never a name resolved later by whoever reads it.
      parseNodeAddr("addr (the joining node's --advertise-addr)", req.addr);
      const badName = req.hostname ? nodeHostnameError("hostname (the joining node's name)", req.hostname) : undefined;
      if (badName) throw badName;
      nodeId = newNodeId();
    }
    const cert = signNodeCSR(signer.ca, req.csrPem, {
      nodeId,
      role,
      clusterId: this.o.clusterId,
      now,
      ...certValidity(spec.nodeCertExpiryMs),
    });
    const info = parseNodeCert(cert);
    const roleEnum = role === 'manager' ? NodeRole.MANAGER : NodeRole.WORKER;
    if (existing) {
      const e = existing;
      const write = () =>
        this.store.update((tx) => {
          // Read here, not above: the node's own state writes (heartbeats) land in between.
          const fresh = tx.nodes.get(nodeId);
          if (!fresh)
            throw new TsswarmError('PERMISSION_DENIED', `node ${nodeId} was removed from the cluster: join it again with a token`);
          const cur = tx.cluster.list()[0] ?? c;
          // Every older certificate of the node is revoked, the one presented and the one on record among them
          // (they differ when an answer was lost): one entry for the node, replaced at each renewal.
          const nodeRevocations = revokeOnRenewal(cur.spec.nodeRevocations, {
            nodeId,
            serial: info.serial,
            issued: { notBeforeMs: info.notBefore.getTime(), notAfterMs: info.notAfter.getTime() },
            replaced: [
              { notBeforeMs: caller!.notBeforeMs, notAfterMs: caller!.notAfterMs },
              { notAfterMs: Number(fresh.certificate?.expiryMs ?? 0) },
            ],
            now,
            defaultExpiryMs: nodeCertValidityMs(spec),
          });
          tx.cluster.update(withRevocations(cur, nodeRevocations, now));
          tx.nodes.update(
            Node.create({
              ...fresh,
              role: roleEnum,
              certificate: { serial: info.serial, expiryMs: info.notAfter.getTime(), role: roleEnum, rootDigest: signer.rootDigest },
            }),
          );
        });
      try {
        for (let attempt = 1; ; attempt++) {
          try {
            await write();
            break;
          } catch (err) {
            if (!(err instanceof VersionConflictError) || attempt >= 3) throw err;
          }
        }
      } catch (err) {
        // Nothing was handed out: the node may renew again at once rather than after the rate window.
        if (this.renewals.get(nodeId) === now) this.renewals.delete(nodeId);
        throw err;
      }
      this.log.info(
        { node: nodeId, role, revoked: [caller!.serial, e.certificate?.serial].filter(Boolean) },
        'node certificate renewed; the certificates it replaces are revoked',
      );
    } else {
      const name = req.hostname || nodeId;
      await this.store.update((tx) =>
        tx.nodes.create(
          Node.create({
            meta: Meta.create({ id: nodeId, createdAt: now, updatedAt: now }),
            spec: NodeSpec.create({ name, role: roleEnum, availability: NodeAvailability.ACTIVE }),
            role: roleEnum,
            status: { state: NodeState.UNKNOWN, addr: req.addr, message: 'joined; waiting for its first session' },
            description: NodeDescription.create({ hostname: name }),
            certificate: { serial: info.serial, expiryMs: info.notAfter.getTime(), role: roleEnum, rootDigest: signer.rootDigest },
          }),
        ),
      );
      this.log.info({ node: nodeId, name, role }, 'node joined');
    }
    if (spec.rootRotation) void this.caApi.reconcile();
    return {
      nodeId,
      certPem: cert + signer.chainPem,
      caCertPem: trustBundle(spec),
      role,
      clusterId: this.o.clusterId,
      managerAddrs: this.managerAddrs(),
    };
  }

  private async joinRaft(req: JoinRaftRequest, call: Parameters<typeof callerOf>[0]): Promise<JoinRaftResponse> {
    // The leader first: a follower whose store lags must point a just-promoted node to it, not refuse it.
    this.requireLeader();
    const caller = requireRole(call, this.authz, ['manager']);
    const n = this.store.view((tx) => tx.nodes.get(caller.nodeId));
    if (!n || n.spec?.role !== NodeRole.MANAGER)
      throw new TsswarmError('PERMISSION_DENIED', `node ${caller.nodeId} is not a manager: promote it first`);
    if (!req.raftId || !req.addr) throw new UsageError('joining the raft group needs a raft id and an address');
    // A node rejoining with a new raft id replaces its old membership.
    const old = n.managerStatus?.raftId;
    if (old && old !== req.raftId && this.consensus.memberList().some((m) => m.raftId === old)) await this.consensus.removeMember(old);
    await this.consensus.addLearner({ raftId: req.raftId, nodeId: caller.nodeId, addr: req.addr });
    await this.store.update((tx) =>
      tx.nodes.update(Node.create({ ...n, managerStatus: ManagerStatus.create({ raftId: req.raftId, addr: req.addr }) })),
    );
    return {
      members: this.consensus.memberList().map((m) => ({ raftId: m.raftId, nodeId: m.nodeId, addr: m.addr })),
      clusterId: this.o.clusterId,
    };
  }

  // ------------------------------------------------------------ services

  private registerServices(): void {
    const s = this.o.server;
    const manager = (call: Parameters<typeof callerOf>[0]): Caller => requireRole(call, this.authz, ['manager']);
    s.addService(
      ControlService,
      controlImplementation(this.controlHandlers(), (call) => manager(call)),
    );
    s.addService(NodeCAService, {
      getRootCA: unary(async (req: { bundle?: boolean }) => ({ certPem: this.rootCA(!!req?.bundle) })),
      // Without a certificate: joining with a token. With one: renewal, which the store must still allow.
      issueNodeCertificate: unary(async (req: IssueNodeCertificateRequest, call) => {
        const caller = callerOf(call, this.authz, Date.now(), { renewal: true });
        if (caller) requireStoreRole(caller, this.authz, ['worker', 'manager']);
        return this.issueCertificate(req, caller);
      }),
      // A node's own Engine API server certificate: its node certificate says which node it is.
      issueEngineCertificate: unary(async (req: IssueEngineCertificateRequest, call) => {
        const caller = requireRole(call, this.authz, ['worker', 'manager']);
        return this.caApi.issueEngineCertificate(caller.nodeId, req.csrPem);
      }),
    });
    s.addService(RaftMembershipService, {
      joinRaft: unary(async (req: JoinRaftRequest, call) => this.joinRaft(req, call)),
    });
    s.addService(DispatcherService, {
      session: (stream: grpc.ServerDuplexStream<AgentMessage, ManagerMessage>) => {
        let caller: Caller;
        try {
          // A follower answers NOT_LEADER (the dispatcher) whatever its store holds: it may lag behind the leader's.
          // A demoted manager's revoked certificate may still open it (as the worker it now is), to learn its new role.
          caller = requireRole(
            stream,
            this.consensus.isLeader ? this.authz : { ...this.authz, storeRole: undefined },
            ['worker', 'manager'],
            { session: true },
          );
        } catch (e) {
          stream.emit('error', toServiceError(e));
          return;
        }
        if (this.consensus.isLeader && caller.rootDigest) this.sessionRoots.set(caller.nodeId, caller.rootDigest);
        if (this.sessionRoots.size > 100_000) this.sessionRoots.delete(this.sessionRoots.keys().next().value as string);
        this.dispatcher.session(stream, caller.nodeId);
      },
    });
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    if (this.memberReconciler) clearInterval(this.memberReconciler);
    this.memberReconciler = null;
    this.settingsSub?.close();
    this.settingsSub = null;
    // A key rewrap under way finishes before the storage closes.
    await this.locking;
    await this.stopOrchestration();
    this.dispatcher.close();
    await this.consensus.close();
  }
}
