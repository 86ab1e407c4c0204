// `tsswarm daemon`: one per host. Serves the local CLI on a unix socket
// (Daemon + Control services), keeps the node's identity and certificates in
// its state directory, runs the agent's session with the managers, and, when
// the node is a manager, the manager on the node's mTLS port. A manager that
// is not the leader forwards the CLI's calls to the leader.
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, hostname as osHostname, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import type pino from 'pino';
import { decodeRegistryAuth, serverRegistry } from '../spec/docker/distribution.js';
import { TsswarmError, UsageError } from '../lib/errors.js';
import { nodeAddrError, resolveAdvertiseAddr } from '../lib/addr.js';
import { callStream, callUnary, grpcChannelOptions, grpcServerOptions, serverNoDelay, unary } from '../lib/grpc.js';
// prom-client and the metrics server load only when metrics are served (--metrics-addr; off by default).
import type { MetricsServer, Registry } from '../lib/metrics.js';
import { MemoryCertificateProvider, channelCredentials, serverCredentials } from '../lib/tls.js';
import {
  bundleDigest,
  caDigest,
  checkManagerCert,
  createCSR,
  createRootCA,
  directIssuer,
  generateNodeKey,
  needsRenewal,
  parseJoinToken,
  parseNodeCert,
  signNodeCSR,
  splitCertificates,
} from '../ca/index.js';
import { certValidity } from '../ca/validity.js';
import { newId as newNodeId, newRaftId } from '../lib/ids.js';
// The manager's code (Raft, store, orchestration) loads only on a node that is a manager.
import type { Manager } from '../manager/manager.js';
import { CONTROL_METHODS, controlImplementation, leaderProxy } from '../manager/controlapi/server.js';
import {
  type ControlHandlers,
  type AgentMessage,
  type Assignments as ManagerMessageAssignments,
  ControlService,
  DaemonService,
  type GetJoinTokensResponse,
  type InfoResponse,
  type InitRequest,
  type InitResponse,
  type IssueNodeCertificateResponse,
  type JoinRaftResponse,
  type JoinRequest,
  type JoinResponse,
  NodeCAService,
  RaftMembershipService,
} from '../proto/gen/control.js';
import { type GenericResource, NodeDescription, TaskState, TaskStatus } from '../proto/gen/objects.js';
import { checkLogin, resolveDescriptor, Runtime } from '../agent/runtime/index.js';
import { AgentSession } from '../agent/session.js';
import { CALL_MS, callOnce, requestJoin } from './join.js';
import { Worker } from '../agent/worker/worker.js';
import { NetworkAgent } from '../agent/network-agent.js';
import { type Certificates, type NodeState, openKeyPem, sealKeyPem, StateDir } from './state.js';
import { dockerTcpHostError } from './daemon-config.js';
import { DataKeys, type Kek, kekFromUnlockKey, newUnlockKey, realVfs, WrongUnlockKeyError } from '../manager/raft/storage/index.js';
// The Docker Engine API's server loads only when its socket is served (--docker-socket, on by default).
import type { EngineBackend, EngineServer, EngineTlsServer } from './engine/index.js';
import type { DockerTLSInfo } from '../spec/docker/node.js';
import { parseCertificateDer, renewalTime } from '../ca/index.js';
import { goArch } from '../spec/docker/system.js';
// Small, and needed from a manager's start on: the swarm events GET /events replays.
import { followStore, SwarmEventLog } from './engine/events.js';

/** What every call but `unlock`, `info` and `leave --force` answers on a locked manager (docker's words, our command). */
export const LOCKED_MESSAGE =
  'Swarm is encrypted and needs to be unlocked before it can be used: this manager was restarted with autolock on. Run `tsswarm unlock` and give the unlock key (`tsswarm unlock-key` on an unlocked manager shows it)';

export interface DaemonOptions {
  nodeName?: string;
  stateDir: string;
  /** host:port the manager services listen on (managers only). */
  listenAddr: string;
  /** host:port (or host) other nodes reach this node at. */
  advertiseAddr?: string;
  socketPath: string;
  logger: pino.Logger;
  /** Seeds a new cluster's heartbeat period (init); the cluster's setting wins afterwards (`swarm update`). */
  heartbeatPeriodMs?: number;
  metricsAddr?: string;
  version: string;
  /** Service load balancer backend: nft, iptables or ipvs; undefined: detected. */
  lbBackend?: string;
  /** Unix socket of the Docker Engine API (docs/engine-api.md); undefined or '': not served. */
  dockerSocketPath?: string;
  /** The group given the docker socket (mode 0660 either way); undefined: root's. */
  dockerSocketGid?: number;
  /** Registries pulled from (and resolved against) over plain http besides loopback. */
  insecureRegistries?: string[];
  /** Per-registry CAs and client certificates (default /etc/tsswarm/certs.d). */
  certsDir?: string;
  /** The engine's labels (`--label`, daemon.json `labels`), reported in the node description. */
  engineLabels?: Record<string, string>;
  /** Generic resources this node advertises (daemon.json nodeGenericResources, --node-generic-resource). */
  genericResources?: GenericResource[];
  /** `IP:PORT` where the Engine API is also served over TCP with TLS, to operators only (docs/engine-api.md); undefined: not. */
  dockerTcpAddr?: string;
}

/** What this host offers, as the scheduler sees it (architecture named as docker does). */
export function nodeDescription(
  hostname: string,
  engineLabels: Record<string, string> = {},
  generic: readonly GenericResource[] = [],
): NodeDescription {
  const arch = ({ x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ia32: 'i386' } as Record<string, string>)[process.arch] ?? process.arch;
  return NodeDescription.create({
    hostname,
    platform: { os: process.platform, architecture: arch },
    resources: { nanoCpus: availableParallelism() * 1e9, memoryBytes: totalmem(), pids: 0, generic: [...generic] },
    engineVersion: '',
    engineLabels,
  });
}
const DEFAULT_PORT = 4242;

function withPort(addr: string, port: number): string {
  if (!addr) return '';
  return /:\d+$/.test(addr) ? addr : `${addr}:${port}`;
}

export class Daemon {
  private readonly o: DaemonOptions;
  private readonly state: StateDir;
  private readonly log: pino.Logger;
  private readonly tls = new MemoryCertificateProvider();
  private local: grpc.Server | null = null;
  private nodeServer: grpc.Server | null = null;
  private manager: Manager | null = null;
  private session: AgentSession | null = null;
  private runtime: Runtime | null = null;
  private runtimeError: Error | null = null;
  private worker: Worker | null = null;
  private network: NetworkAgent | null = null;
  private node: NodeState | null = null;
  private metrics: MetricsServer | null = null;
  private engine: EngineServer | null = null;
  private engineRequests: { inc(labels: Record<string, string>): void } | null = null;
  /** The swarm events of GET /events (kept while the docker socket is served), and what feeds them while this node is a manager. */
  private readonly swarmEvents = new SwarmEventLog();
  private eventFeed: { close(): void } | null = null;
  private busy: Promise<unknown> = Promise.resolve();
  /** A manager restarted with autolock on: nothing runs until `unlock` gives the key. */
  private locked = false;
  /** The unlock key's KEK while this manager's Raft keys are locked by it (to reopen them on a role change). */
  private unlockKek: Kek | null = null;
  /** The TLS key's passphrase secret while autolock is on (from the Raft key file), else null: the key is stored in clear. */
  private keySecret: Uint8Array | null = null;
  readonly nodeName: string;
  /** `--advertise-addr` resolved at start (an IPv4 address, with the port when given). */
  private advertise = '';

  constructor(o: DaemonOptions) {
    this.o = o;
    this.state = new StateDir(o.stateDir);
    this.log = o.logger.child({ component: 'daemon' });
    this.nodeName = o.nodeName || osHostname();
  }

  private get listenAddr(): string {
    return withPort(this.o.listenAddr, DEFAULT_PORT);
  }

  private get advertiseAddr(): string {
    const a = this.advertise || this.o.advertiseAddr || this.o.listenAddr.replace(/:\d+$/, '');
    if (!a || a.startsWith('0.0.0.0'))
      throw new UsageError('--advertise-addr is needed: the listen address does not say how other nodes reach this one', {
        field: '--advertise-addr',
      });
    const full = withPort(a, Number(/:(\d+)$/.exec(this.listenAddr)?.[1] ?? DEFAULT_PORT));
    // The managers refuse anything but an IPv4 address: say so here, naming the flag to fix.
    const bad = nodeAddrError('--advertise-addr', full);
    if (bad)
      throw new UsageError(this.o.advertiseAddr ? bad.message : `${bad.message} (taken from --listen-addr: give --advertise-addr)`, {
        field: '--advertise-addr',
      });
    return full;
  }

  /** The TCP ports this node's control plane listens on (the node gRPC port; the Engine API's TCP port), closed to tasks. */
  private controlPorts(): number[] {
    const ports = [this.listenAddr, this.o.dockerTcpAddr ?? '']
      .map((a) => Number(/:(\d+)$/.exec(a)?.[1]))
      .filter((p) => Number.isInteger(p) && p > 0 && p < 65536);
    return [...new Set(ports)];
  }

  /** `--advertise-addr` of init/join, as an IPv4 address with the default port when it has none. */
  private async advertiseFor(given: string): Promise<string> {
    return given ? withPort(await resolveAdvertiseAddr('--advertise-addr', given), DEFAULT_PORT) : this.advertiseAddr;
  }

  async start(): Promise<void> {
    // A host name or interface becomes its IPv4 address once, before anything is served.
    if (this.o.advertiseAddr) this.advertise = await resolveAdvertiseAddr('--advertise-addr', this.o.advertiseAddr);
    if (this.o.dockerTcpAddr) {
      const bad = this.engineTcpHostError(this.advertise || this.state.loadNode()?.advertiseAddr || '');
      if (bad) throw new UsageError(bad, { field: '--docker-tcp' });
    }
    const rt = new Runtime({ root: join(this.o.stateDir, 'runtime'), logger: this.o.logger });
    try {
      await rt.init();
      rt.images.insecureRegistries = this.o.insecureRegistries ?? [];
      if (this.o.certsDir) rt.images.certsDir = this.o.certsDir;
      this.runtime = rt;
    } catch (e) {
      // The daemon still serves the cluster; tasks sent here are rejected with this reason.
      this.runtimeError = e as Error;
      this.log.error({ err: e }, 'the container runtime is not usable: this node cannot run tasks');
    }
    // Membership is known before the socket answers: a CLI call in between must not see an
    // inactive node (an `init` then would start a new cluster over an existing member).
    this.node = this.state.loadNode();
    const certs = this.state.loadCerts();
    await this.serveLocal();
    if (this.o.metricsAddr) {
      const metrics = await import('../lib/metrics.js');
      const reg = metrics.createRegistry({ labels: { host: this.nodeName } });
      this.registerMetrics(reg, metrics);
      this.metrics = await metrics.serveMetrics(reg, this.o.metricsAddr);
      this.log.info({ addr: this.metrics.address }, 'serving Prometheus metrics at /metrics');
    }
    if (this.node && certs) {
      const source = this.node.role === 'manager' ? await DataKeys.sourceOf(realVfs, this.state.raftDir) : null;
      if (source === 'unlock-key') {
        this.locked = true;
        this.log.warn({ node: this.node.nodeId }, 'this manager is locked (autolock): it waits for `tsswarm unlock` and the unlock key');
      } else {
        // A TLS key still encrypted after autolock was turned off (a crash in between) opens with the stored keys.
        if (source === 'stored') this.keySecret = (await DataKeys.load(realVfs, this.state.raftDir)).nodeKeySecret;
        this.setTls(certs.caPem, certs.certPem, openKeyPem(certs.keyPem, this.keySecret));
        this.keySecret = null;
        this.log.info({ node: this.node.nodeId, role: this.node.role }, 'resuming cluster membership');
        await this.startNodeServices();
      }
    }
    // Served once the node's state is settled (locked or running), so no Docker client sees it in between.
    if (this.o.dockerSocketPath) {
      const { ENGINE_ROUTES, serveEngine } = await import('./engine/index.js');
      this.engine = await serveEngine({
        socketPath: this.o.dockerSocketPath,
        gid: this.o.dockerSocketGid,
        backend: this.engineBackend(),
        routes: ENGINE_ROUTES,
        logger: this.o.logger,
        count: (route, method, status) => this.engineRequests?.inc({ route: route || 'none', method, status: String(status) }),
      });
    }
    this.log.info({ socket: this.o.socketPath, node: this.nodeName }, 'daemon ready');
  }

  /**
   * Credentials for calling a manager: besides our CA, the server's
   * certificate must say manager, of our cluster (any cluster while joining,
   * when the join token has pinned the CA), and name one of the managers the
   * last session listed (a demoted manager's old certificate does not), or
   * the handshake fails.
   */
  private managerCredentials(addr?: string): grpc.ChannelCredentials {
    const pin = { clusterId: () => this.node?.clusterId ?? '', addr, managerNodeIds: () => this.knownManagerIds() };
    return channelCredentials(this.tls, (cert, host) => checkManagerCert(cert.raw, pin, host));
  }

  /**
   * The managers' node ids to pin to: on a manager, its own view (membership
   * and store, current as soon as a member is added, which the Raft transport
   * needs); elsewhere, or while that view is empty, what the last session said.
   */
  private knownManagerIds(): string[] {
    const local = this.manager?.managerNodeIds() ?? [];
    return local.length > 0 ? local : (this.node?.managerNodeIds ?? []);
  }

  private caPem = '';
  private setTls(ca: string, cert?: string, key?: string): void {
    this.caPem = ca;
    this.tls.set(ca, cert, key);
    // The TCP listener follows at once: new roots check operators from the next connection, and a
    // renewed node certificate (a renewal, a rotation) brings a new server certificate along.
    if (this.engineTcp) void this.refreshEngineTcp();
  }

  // ------------------------------------------------------------ Docker Engine API over TCP with TLS

  private engineTcp: EngineTlsServer | null = null;
  /** This node's server certificate for the TCP listener, in memory only (a restart gets a new one), and the node certificate it came with. */
  private engineCert: { certPem: string; keyPem: string; nodeCertPem: string; renewAt: number } | null = null;
  private engineTcpTimer: NodeJS.Timeout | null = null;
  private engineTcpBusy: Promise<void> | null = null;
  private engineTcpFailures = 0;
  /** Asked again while a refresh ran (new roots or certificates meanwhile): run once more after it. */
  private engineTcpAgain = false;
  /** Set while node services are stopped: no refresh may open the listener again. */
  private engineTcpOff = true;

  /** Why the TCP listener cannot serve at its address with a certificate naming `advertise` (undefined: it can). */
  private engineTcpHostError(advertise: string): string | undefined {
    return this.o.dockerTcpAddr ? dockerTcpHostError(this.o.dockerTcpAddr, advertise) : undefined;
  }

  private scheduleEngineTcp(ms: number): void {
    if (this.engineTcpTimer) clearTimeout(this.engineTcpTimer);
    this.engineTcpTimer = setTimeout(() => void this.refreshEngineTcp(), ms);
    this.engineTcpTimer.unref();
  }

  /**
   * Serves the TCP listener once this node is in a cluster and unlocked, with a server
   * certificate from the leader; renews that certificate with the node's (and by its own
   * clock), and hands the listener the current roots. Retries on failure, with backoff.
   */
  private refreshEngineTcp(): Promise<void> {
    if (!this.o.dockerTcpAddr || this.engineTcpOff) return Promise.resolve();
    if (this.engineTcpBusy) {
      this.engineTcpAgain = true;
      return this.engineTcpBusy;
    }
    this.engineTcpBusy = this.doRefreshEngineTcp()
      .then(
        () => {
          this.engineTcpFailures = 0;
          // Stopped meanwhile (leave, stop): nothing more to schedule.
          if (this.engineTcpOff) return;
          this.scheduleEngineTcp(Math.max(1000, Math.min(60_000, (this.engineCert?.renewAt ?? 0) - Date.now())));
        },
        (err: unknown) => {
          this.engineTcpFailures++;
          if (this.engineTcpOff) return;
          const ms = Math.min(60_000, 500 * 2 ** Math.min(7, this.engineTcpFailures));
          (this.engineTcpFailures > 3 ? this.log.warn : this.log.debug).call(
            this.log,
            { err, retryMs: ms },
            'the Docker Engine API over TCP is not served yet: getting its server certificate failed; will retry',
          );
          this.scheduleEngineTcp(ms);
        },
      )
      .finally(() => {
        this.engineTcpBusy = null;
        if (this.engineTcpAgain && !this.engineTcpOff) {
          this.engineTcpAgain = false;
          void this.refreshEngineTcp();
        }
      });
    return this.engineTcpBusy;
  }

  private async doRefreshEngineTcp(): Promise<void> {
    const node = this.node;
    const certs = this.state.loadCerts();
    if (!node || !certs || this.locked || !this.caPem || !this.session) return;
    const bad = this.engineTcpHostError(node.advertiseAddr);
    if (bad) {
      this.log.error(bad);
      return;
    }
    const now = Date.now();
    let e = this.engineCert;
    const trusted = e ? directIssuer(this.caPem, e.certPem) !== undefined : false;
    if (!e || e.nodeCertPem !== certs.certPem || !trusted || now >= e.renewAt) {
      const key = generateNodeKey();
      const addr = this.session.connectedTo || node.managerAddrs[0]!;
      const issued = await this.callOnce<{ certPem: string; caCertPem: string }>(
        NodeCAService,
        'NodeCA',
        addr,
        this.managerCredentials(addr),
        'issueEngineCertificate',
        { csrPem: createCSR(key.privateKeyPem, { nodeId: node.nodeId }) },
        'getting the Engine API server certificate',
      );
      const leaf = parseCertificateDer(Buffer.from(splitCertificates(issued.certPem)[0]!.replace(/-----[^-]+-----|\s+/g, ''), 'base64'));
      e = {
        certPem: issued.certPem,
        keyPem: key.privateKeyPem,
        nodeCertPem: certs.certPem,
        renewAt: renewalTime(leaf, { rand: () => 0.5 }).getTime(),
      };
      this.engineCert = e;
      this.log.info({ expiry: leaf.notAfter.toISOString() }, 'got the Engine API server certificate');
    }
    const creds = { caPem: this.caPem, certPem: e.certPem, keyPem: e.keyPem };
    if (this.engineTcp) this.engineTcp.setCredentials(creds);
    else {
      const { ENGINE_ROUTES, serveEngineTls } = await import('./engine/index.js');
      this.engineTcp = await serveEngineTls({
        addr: this.o.dockerTcpAddr!,
        credentials: creds,
        clusterId: () => this.node?.clusterId ?? '',
        backend: this.engineBackend(),
        routes: ENGINE_ROUTES,
        logger: this.o.logger,
        count: (route, method, status) => this.engineRequests?.inc({ route: route || 'none', method, status: String(status) }),
      });
    }
  }

  private async stopEngineTcp(): Promise<void> {
    this.engineTcpOff = true;
    this.engineTcpAgain = false;
    await this.engineTcpBusy?.catch(() => undefined);
    if (this.engineTcpTimer) clearTimeout(this.engineTcpTimer);
    this.engineTcpTimer = null;
    const t = this.engineTcp;
    this.engineTcp = null;
    this.engineCert = null;
    await t?.close();
  }

  /** Gauges read at scrape time from the live state, so they cannot drift from it. */
  private registerMetrics(reg: Registry, { Counter, Gauge }: Pick<typeof import('../lib/metrics.js'), 'Counter' | 'Gauge'>): void {
    const m = (): Manager | null => this.manager;
    const self = this;
    new Gauge({
      name: 'tsswarm_session_connected',
      help: '1 when the agent has a session with a manager',
      registers: [reg],
      collect() {
        this.set(self.session?.connectedTo ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tsswarm_manager_locked',
      help: '1 while this manager is locked (autolock) and waits for `tsswarm unlock`',
      registers: [reg],
      collect() {
        this.set(self.locked ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tsswarm_raft_is_leader',
      help: '1 when this manager is the Raft leader',
      registers: [reg],
      collect() {
        this.set(m()?.consensus.isLeader ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tsswarm_raft_term',
      help: 'Current Raft term (managers)',
      registers: [reg],
      collect() {
        const mm = m();
        if (mm) this.set(mm.consensus.status().term);
      },
    });
    new Gauge({
      name: 'tsswarm_raft_applied_index',
      help: 'Last Raft index applied to the store (managers)',
      registers: [reg],
      collect() {
        const mm = m();
        if (mm) this.set(mm.consensus.status().applied);
      },
    });
    new Gauge({
      name: 'tsswarm_dispatcher_sessions',
      help: 'Agent sessions held by this manager (the leader holds them all)',
      registers: [reg],
      collect() {
        this.set(m()?.dispatcher.sessionCount ?? 0);
      },
    });
    new Counter({
      name: 'tsswarm_dispatcher_stalled_sessions_total',
      help: 'Agent sessions this manager dropped because the node stopped reading and its send queue passed the cap',
      registers: [reg],
      collect() {
        this.reset();
        this.inc(m()?.dispatcher.stalledDisconnects ?? 0);
      },
    });
    this.engineRequests = new Counter({
      name: 'tsswarm_engine_api_requests_total',
      help: 'Docker Engine API requests answered, by route template, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [reg],
    });
    new Gauge({
      name: 'tsswarm_ca_rotation_in_progress',
      help: '1 while a root CA rotation is under way (managers)',
      registers: [reg],
      collect() {
        const mm = m();
        if (mm) this.set(mm.cluster()?.spec.rootRotation ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tsswarm_nodes',
      help: 'Nodes in the store by state (managers)',
      labelNames: ['state'],
      registers: [reg],
      collect() {
        this.reset();
        const mm = m();
        if (!mm) return;
        const counts: Record<string, number> = { unknown: 0, down: 0, ready: 0, disconnected: 0 };
        for (const n of mm.store.view((tx) => tx.nodes.list()))
          counts[['unknown', 'down', 'ready', 'disconnected'][n.status?.state ?? 0] ?? 'unknown']!++;
        for (const [state, v] of Object.entries(counts)) this.set({ state }, v);
      },
    });
  }

  // ------------------------------------------------------------ local API

  private async serveLocal(): Promise<void> {
    mkdirSync(dirname(this.o.socketPath), { recursive: true });
    if (existsSync(this.o.socketPath)) rmSync(this.o.socketPath);
    const s = new grpc.Server(grpcServerOptions());
    const serial = <T>(f: () => Promise<T>): Promise<T> => this.serial(f);
    s.addService(DaemonService, {
      init: unary((req: InitRequest) => serial(() => this.init(req))),
      join: unary((req: JoinRequest) => serial(() => this.join(req))),
      leave: unary((req: { force: boolean }) => serial(() => this.leave(req.force))),
      info: unary(async () => this.clusterInfo()),
      unlock: unary((req: { key: string }) => serial(() => this.unlock(req.key))),
      loadImage: unary(async (req: { path: string; tag: string }) => ({
        images: await this.images().load(req.path, req.tag || undefined),
      })),
      pullImage: unary(async (req: { reference: string; insecure: boolean }) => ({
        images: await this.images().pull(req.reference, { insecure: req.insecure }),
      })),
      resolveImage: unary(async (req: { reference: string; registryAuth: string }) => {
        const d = await resolveDescriptor(req.reference, {
          insecure: this.o.insecureRegistries,
          certsDir: this.o.certsDir,
          auth: decodeRegistryAuth(req.registryAuth || undefined),
        });
        return { digest: d.Descriptor.digest, platforms: d.Platforms.map((p) => ({ os: p.os, architecture: p.architecture })) };
      }),
      registryLogin: unary(async (req: { registry: string; username: string; password: string }) => {
        // Checked as POST /auth checks serveraddress: HOST[:PORT] (Docker Hub by any of its names), never a path
        // (the registry names its certs.d directory).
        await checkLogin(
          serverRegistry(req.registry, 'SERVER'),
          { username: req.username, password: req.password },
          {
            insecure: this.o.insecureRegistries,
            certsDir: this.o.certsDir,
          },
        );
        return { status: 'Login Succeeded' };
      }),
      listImages: unary(async () => ({ images: this.images().list() })),
      removeImage: unary(async (req: { reference: string; force: boolean }) => ({
        removed: await this.images().remove(req.reference, req.force),
      })),
    });
    // Every Control call goes to this node's manager, which answers or forwards it to the leader;
    // `info` is answered by the daemon itself, manager or not.
    const control = Object.fromEntries(
      CONTROL_METHODS.map((m) => [
        m,
        (...a: unknown[]) =>
          m === 'info'
            ? this.clusterInfo()
            : (this.control() as unknown as Record<string, (...x: unknown[]) => Promise<unknown>>)[m]!(...a),
      ]),
    ) as unknown as ControlHandlers;
    s.addService(
      ControlService,
      controlImplementation(control, () => undefined),
    );
    await new Promise<void>((res, rej) =>
      s.bindAsync(`unix://${this.o.socketPath}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
    );
    this.local = s;
  }

  /** init, join, leave and unlock one at a time, whichever socket asked. */
  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.busy.then(f, f);
    this.busy = p.catch(() => undefined);
    return p;
  }

  // ------------------------------------------------------------ Docker Engine API

  private tlsInfoCache: { pem: string; tls: DockerTLSInfo } | null = null;
  private osName = '';

  /** What the engine's routes ask of this daemon (node/engine/backend.ts): the same handlers and verbs as the CLI's socket. */
  private engineBackend(): EngineBackend {
    return {
      localInfo: () => this.info(),
      info: () => this.clusterInfo(),
      control: () => this.control(),
      init: (req) => this.serial(() => this.init(req)),
      join: (req) => this.serial(() => this.join(req)),
      leave: async (force) => {
        await this.serial(() => this.leave(force));
      },
      unlock: async (key) => {
        await this.serial(() => this.unlock(key));
      },
      host: () => {
        const platform = nodeDescription(this.nodeName).platform;
        if (!this.osName) {
          const rel = existsSync('/etc/os-release') ? readFileSync('/etc/os-release', 'utf8') : '';
          this.osName = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(rel)?.[1] ?? 'Linux';
        }
        const id = createHash('sha256').update(`${this.o.stateDir}\0${this.nodeName}`).digest('hex');
        return {
          id: `${id.slice(0, 8)}-${id.slice(8, 12)}-${id.slice(12, 16)}-${id.slice(16, 20)}-${id.slice(20, 32)}`,
          name: this.nodeName,
          version: this.o.version,
          ncpu: availableParallelism(),
          memTotal: totalmem(),
          architecture: platform?.architecture ?? process.arch,
          goArch: goArch(platform?.architecture ?? process.arch),
          kernelVersion: release(),
          operatingSystem: this.osName,
          runtimeVersion: `node ${process.version}`,
          rootDir: this.o.stateDir,
          images: this.runtime ? this.runtime.images.list().length : 0,
        };
      },
      tlsInfo: () => {
        if (this.tlsInfoCache?.pem !== this.caPem) {
          let tls: DockerTLSInfo = { TrustRoot: '', CertIssuerSubject: '', CertIssuerPublicKey: '' };
          // During a root rotation the trust bundle holds several roots: Docker shows one, the first.
          const root = this.caPem ? splitCertificates(this.caPem)[0] : undefined;
          if (root) {
            const der = Buffer.from(root.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
            const c = parseCertificateDer(der);
            tls = { TrustRoot: root, CertIssuerSubject: c.subjectRaw.toString('base64'), CertIssuerPublicKey: c.spki.toString('base64') };
          }
          this.tlsInfoCache = { pem: this.caPem, tls };
        }
        return this.tlsInfoCache.tls;
      },
      clusterTimes: () => {
        const meta = this.manager?.cluster()?.meta;
        return { createdAt: Number(meta?.createdAt ?? 0), updatedAt: Number(meta?.updatedAt ?? 0) };
      },
      managerAddrs: () => [...(this.node?.managerAddrs ?? [])],
      swarmEvents: () => this.swarmEvents,
      images: () => this.images().list(),
      containers: async () => {
        if (!this.runtime)
          throw new TsswarmError(
            'FAILED_PRECONDITION',
            `this node's container runtime is not usable: ${this.runtimeError?.message ?? 'not started'}`,
          );
        return this.runtime.list();
      },
      containerDetail: (c) => {
        const img = this.runtime?.images.resolve(c.image);
        const taskId = c.labels['tsswarm.task.id'];
        return {
          task: taskId ? this.worker?.runner(taskId)?.task : undefined,
          image: img && { id: img.id, env: img.env, entrypoint: img.entrypoint, cmd: img.cmd, workdir: img.workdir, user: img.user },
          networkName: (id) => this.network?.networkName(id),
          ...(taskId && this.network?.bridgeAddress(taskId) ? { bridge: this.network.bridgeAddress(taskId)! } : {}),
        };
      },
      volumes: () => this.runtime?.volumes() ?? [],
      localNetworks: () => this.network?.networks() ?? [],
      registryLogin: (registry, auth, signal) =>
        checkLogin(registry, auth, { insecure: this.o.insecureRegistries, certsDir: this.o.certsDir, signal }),
      distribution: (ref, auth, signal) =>
        resolveDescriptor(ref, { insecure: this.o.insecureRegistries, auth, signal, certsDir: this.o.certsDir }),
    };
  }

  /** Without a usable runtime every task sent here is rejected, with the reason, so `service ps` shows it and the managers place it elsewhere. */
  private rejectAll(a: NonNullable<ManagerMessageAssignments>): void {
    const why = `this node cannot run containers: ${this.runtimeError?.message ?? 'the container runtime did not start'}`;
    const updates = a.tasks
      .filter((t) => (t.status?.state ?? 0) < TaskState.COMPLETE && t.desiredState <= TaskState.RUNNING)
      .map((t) => ({
        taskId: t.meta.id,
        status: TaskStatus.create({ state: TaskState.REJECTED, timestamp: Date.now(), message: 'rejected', err: why }),
      }));
    if (updates.length) this.session?.send({ taskStatus: { updates } } as AgentMessage);
  }

  private images(): Runtime['images'] {
    if (!this.runtime)
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        `this node's container runtime is not usable: ${this.runtimeError?.message ?? 'not started'}`,
      );
    return this.runtime.images;
  }

  private requireManager(): Manager {
    if (this.locked) throw new TsswarmError('FAILED_PRECONDITION', LOCKED_MESSAGE);
    if (!this.node)
      throw new TsswarmError('FAILED_PRECONDITION', 'This node is not part of a cluster: run `tsswarm init` or `tsswarm join` first');
    if (this.node.role !== 'manager' || !this.manager) {
      throw new TsswarmError(
        'PERMISSION_DENIED',
        "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
      );
    }
    return this.manager;
  }

  private controlProxy: { m: Manager; h: ControlHandlers } | null = null;

  /** The Control API of this node's manager, forwarding to the leader when it does not lead. */
  private control(): ControlHandlers {
    const m = this.requireManager();
    if (this.controlProxy?.m !== m) {
      const h = leaderProxy(m.controlHandlers(), {
        isLeader: () => m.consensus.isLeader,
        leaderAddr: () => m.consensus.leaderAddr,
        forward: (addr, method, req) => this.forward(addr, method, req),
        forwardStream: (addr, method, req, write, signal) =>
          callStream(this.forwardClient(addr), method, req, write, signal, `streaming from the leader at ${addr}`),
      });
      this.controlProxy = { m, h };
    }
    return this.controlProxy.h;
  }

  private forwardClients = new Map<string, grpc.Client>();
  private forwardClient(addr: string): grpc.Client {
    let c = this.forwardClients.get(addr);
    if (!c) {
      const Ctor = grpc.makeGenericClientConstructor(ControlService, 'Control');
      c = new Ctor(addr, this.managerCredentials(addr), grpcChannelOptions());
      this.forwardClients.set(addr, c);
    }
    return c;
  }

  private forward(addr: string, method: string, req: unknown): Promise<unknown> {
    // A leadership transfer waits for the new leader to take over (seconds); the rest answer at once.
    const ms = method === 'transferLeader' ? 15_000 : CALL_MS;
    return callUnary(this.forwardClient(addr), method, req, ms, `forwarding to the leader at ${addr}`);
  }

  /**
   * info() with the cluster-wide part (managers' reachability, node count) from the leader when
   * this manager follows: only the leader tracks the others' progress. Marked stale without one.
   */
  private async clusterInfo(): Promise<InfoResponse> {
    const local = this.info();
    const m = this.manager;
    if (!m || m.consensus.isLeader) return local;
    const leader = m.consensus.leaderAddr;
    if (!leader) return { ...local, stale: true };
    try {
      const l = (await this.forward(leader, 'info', {})) as InfoResponse;
      return { ...local, managers: l.managers, nodes: l.nodes, leaderNodeId: l.leaderNodeId, leaderAddr: l.leaderAddr };
    } catch {
      return { ...local, stale: true };
    }
  }

  info(): InfoResponse {
    const base: InfoResponse = {
      state: this.locked ? 'locked' : this.node ? 'active' : 'inactive',
      nodeId: this.node?.nodeId ?? '',
      nodeName: this.nodeName,
      role: this.node?.role ?? '',
      clusterId: this.node?.clusterId ?? '',
      nodeAddr: this.node?.advertiseAddr ?? '',
      isManager: false,
      managers: [],
      leaderNodeId: '',
      leaderAddr: '',
      raftTerm: 0,
      raftCommit: 0,
      raftApplied: 0,
      raftState: '',
      nodes: 0,
      error: this.locked ? LOCKED_MESSAGE : '',
      version: this.o.version,
      stale: false,
      certExpiryMs: 0,
      clusterVersion: 0,
    };
    const certs = this.state.loadCerts();
    if (certs) base.certExpiryMs = parseNodeCert(certs.certPem).notAfter.getTime();
    return this.manager ? this.manager.clusterApi.info(base) : base;
  }

  // ------------------------------------------------------------ init / join / leave

  private async init(req: InitRequest): Promise<InitResponse> {
    if (this.locked) throw new TsswarmError('FAILED_PRECONDITION', LOCKED_MESSAGE);
    if (req.forceNewCluster) return this.forceNewCluster();
    if (this.node)
      throw new TsswarmError('FAILED_PRECONDITION', 'This node is already part of a cluster. Use `tsswarm leave` to leave it first');
    const advertise = await this.advertiseFor(req.advertiseAddr);
    const now = Date.now();
    const clusterId = newNodeId();
    const nodeId = newNodeId();
    const ca = createRootCA({ commonName: `tsswarm-root-ca-${clusterId.slice(0, 8)}`, now });
    const key = generateNodeKey();
    const validity = Number(req.certExpiryMs) || 0;
    if (validity !== 0 && validity < 10_000) throw UsageError.invalid('--cert-expiry', 'at least 10s', `${validity}ms`);
    const cert = signNodeCSR(ca, createCSR(key.privateKeyPem, { nodeId }), {
      nodeId,
      role: 'manager',
      clusterId,
      now,
      ...certValidity(validity),
    });
    const info = parseNodeCert(cert);
    const unlockKey = req.autolock ? newUnlockKey() : '';
    this.saveCerts({ caPem: ca.certPem, certPem: cert, keyPem: key.privateKeyPem });
    this.setTls(ca.certPem, cert, key.privateKeyPem);
    this.node = {
      nodeId,
      clusterId,
      role: 'manager',
      managerAddrs: [advertise],
      listenAddr: this.listenAddr,
      advertiseAddr: advertise,
      raftId: newRaftId(),
    };
    this.state.saveNode(this.node);
    await this.startNodeServices({
      clusterId,
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      hostname: this.nodeName,
      certSerial: info.serial,
      certExpiryMs: info.notAfter.getTime(),
      nodeCertValidityMs: validity,
      unlockKey,
    });
    const t = await this.waitFor('the new cluster to elect its first leader', async () =>
      this.manager?.cluster() ? this.manager.clusterApi.joinTokens() : null,
    );
    this.log.info({ cluster: clusterId, node: nodeId, addr: advertise, autolock: !!unlockKey }, 'cluster initialised');
    return { nodeId, clusterId, workerToken: t.worker, managerToken: t.manager, addr: advertise, unlockKey };
  }

  /** `init --force-new-cluster`: this manager alone becomes the cluster, keeping the state it had committed. */
  private async forceNewCluster(): Promise<InitResponse> {
    const node = this.node!;
    if (!node || node.role !== 'manager' || !node.raftId || !existsSync(this.state.raftDir)) {
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        '--force-new-cluster needs a node that was a manager of a cluster and still has its state directory',
      );
    }
    this.log.warn("forcing a new cluster from this manager's state");
    this.session?.stop();
    this.session = null;
    await this.stopManager();
    // The new Raft state starts with stored keys (the old one is kept aside): the TLS key goes back in
    // clear with them, so a restart before the cluster's autolock setting locks both again still opens it.
    await this.onLockChange(null, this.unlockKek);
    await this.startNodeServices(undefined, true);
    const t = await this.waitFor('this manager to lead the new cluster', async () =>
      this.manager?.consensus.isLeader ? this.manager.clusterApi.joinTokens() : null,
    );
    return {
      nodeId: node.nodeId,
      clusterId: node.clusterId,
      workerToken: t.worker,
      managerToken: t.manager,
      addr: node.advertiseAddr,
      unlockKey: '',
    };
  }

  private async join(req: JoinRequest): Promise<JoinResponse> {
    if (this.locked) throw new TsswarmError('FAILED_PRECONDITION', LOCKED_MESSAGE);
    if (this.node)
      throw new TsswarmError('FAILED_PRECONDITION', 'This node is already part of a cluster. Use `tsswarm leave` to leave it first');
    const token = parseJoinToken(req.token);
    void token;
    let remote = withPort(req.remoteAddr, DEFAULT_PORT);
    if (!remote) throw new UsageError('the address of a manager is required: tsswarm join --token TOKEN HOST:PORT', { field: 'HOST:PORT' });
    const advertise = await this.advertiseFor(req.advertiseAddr);
    const key = generateNodeKey();
    const joined = await requestJoin({
      remote,
      token: req.token,
      keyPem: key.privateKeyPem,
      hostname: this.nodeName,
      addr: advertise,
      trust: (caPem) => this.setTls(caPem),
      credentials: (addr) => this.managerCredentials(addr),
    });
    const issued = joined.issued;
    remote = joined.remote;
    const role = issued.role === 'manager' ? 'manager' : 'worker';
    this.saveCerts({ caPem: issued.caCertPem, certPem: issued.certPem, keyPem: key.privateKeyPem });
    this.setTls(issued.caCertPem, issued.certPem, key.privateKeyPem);
    this.node = {
      nodeId: issued.nodeId,
      clusterId: issued.clusterId,
      role,
      managerAddrs: issued.managerAddrs.length ? issued.managerAddrs : [remote],
      listenAddr: this.listenAddr,
      advertiseAddr: advertise,
    };
    this.state.saveNode(this.node);
    await this.startNodeServices();
    this.log.info({ node: issued.nodeId, role }, 'joined the cluster');
    return { nodeId: issued.nodeId, role, clusterId: issued.clusterId };
  }

  private async leave(force: boolean): Promise<object> {
    if (!this.node) throw new TsswarmError('FAILED_PRECONDITION', 'This node is not part of a cluster');
    if (this.node.role === 'manager' && !force) {
      throw new TsswarmError(
        'FAILED_PRECONDITION',
        'This node is a manager: leaving may cost the cluster its quorum. Demote it first (`tsswarm node demote NODE` on another manager), or use `tsswarm leave --force`',
      );
    }
    await this.stopNodeServices();
    this.state.wipe();
    this.node = null;
    this.locked = false;
    this.unlockKek = null;
    this.keySecret = null;
    this.log.info('left the cluster');
    return {};
  }

  // ------------------------------------------------------------ node services

  /** One unary call on a short-lived client, closed afterwards (node/join.ts). */
  private callOnce<Res>(...a: Parameters<typeof callOnce>): Promise<Res> {
    return callOnce<Res>(...a);
  }

  private async startNodeServices(bootstrap?: Parameters<typeof Manager.start>[0]['bootstrap'], forceNewCluster = false): Promise<void> {
    const node = this.node!;
    if (node.role === 'manager') await this.startManager(bootstrap, forceNewCluster);
    this.session = new AgentSession({
      nodeId: node.nodeId,
      addr: node.advertiseAddr,
      description: nodeDescription(this.nodeName, this.o.engineLabels, this.o.genericResources),
      credentials: () => this.managerCredentials(),
      managers: () => {
        const own = this.manager ? [node.advertiseAddr] : [];
        return [...own, ...node.managerAddrs.filter((a) => a !== node.advertiseAddr)];
      },
      logger: this.o.logger.child({ component: 'agent' }),
      onAssignments: (m) => (this.worker ? this.worker.assignments(m.assignments!) : this.rejectAll(m.assignments!)),
      onNetworks: (m) => {
        void this.network
          ?.apply(m.networks!)
          .catch((err: unknown) => this.o.logger.warn({ err }, "applying the managers' network state failed"));
      },
      onOpen: () => this.worker?.sessionOpened(),
      onRelay: (r) => {
        // `network inspect --dataplane`: one report, whether or not this node runs containers. Its
        // code (a reader for each kernel layer) loads the first time a report is asked of this node.
        if (r.dataplane)
          void import('../agent/dataplane-report.js').then(({ answerDataplane }) =>
            answerDataplane(this.network, r, { nodeId: node.nodeId, lbBackend: this.o.lbBackend }, (relay) =>
              this.session?.send({ relay } as AgentMessage),
            ),
          );
        else this.worker?.relay(r);
      },
      onWelcome: (w) => {
        const ids = [...w.managerNodeIds].sort();
        const newIds = ids.length > 0 && ids.join() !== (node.managerNodeIds ?? []).join();
        if ((w.managerAddrs.length && w.managerAddrs.join() !== node.managerAddrs.join()) || newIds) {
          if (w.managerAddrs.length) node.managerAddrs = w.managerAddrs;
          // An empty list says the managers do not know yet: the last one known still pins.
          if (newIds) node.managerNodeIds = ids;
          this.state.saveNode(node);
        }
        if (w.desiredRole && w.desiredRole !== node.role) void this.changeRole(w.desiredRole as 'worker' | 'manager');
        else this.followCA(w.trustDigest, w.signingRootDigest);
      },
    });
    if (this.runtime) {
      // The VTEP is the advertised address.
      this.network = new NetworkAgent({
        nodeId: node.nodeId,
        vtep: node.advertiseAddr.replace(/:\d+$/, ''),
        logger: this.o.logger,
        lbBackend: this.o.lbBackend,
        hostTcpPorts: this.controlPorts(),
      });
      const platform = nodeDescription(this.nodeName).platform;
      this.worker = new Worker({
        runtime: this.runtime,
        nodeId: node.nodeId,
        logger: this.o.logger,
        send: (m) => this.session?.send(m) ?? false,
        network: this.network,
        node: { hostname: this.nodeName, os: platform?.os ?? '', architecture: platform?.architecture ?? '' },
      });
      this.worker.start();
    }
    this.session.start();
    this.scheduleRenewal();
    if (this.o.dockerTcpAddr) {
      this.engineTcpOff = false;
      this.scheduleEngineTcp(0);
    }
  }

  /** A new key and certificate from the managers (same node id; the role is what the managers want now). */
  private async renewCertificate(): Promise<IssueNodeCertificateResponse> {
    const node = this.node!;
    const key = generateNodeKey();
    const csr = createCSR(key.privateKeyPem, { nodeId: node.nodeId });
    const addr = this.session?.connectedTo || node.managerAddrs[0]!;
    const issued = await this.callOnce<IssueNodeCertificateResponse>(
      NodeCAService,
      'NodeCA',
      addr,
      this.managerCredentials(addr),
      'issueNodeCertificate',
      { token: '', csrPem: csr, hostname: this.nodeName, addr: node.advertiseAddr, nodeId: node.nodeId },
      'renewing the certificate',
    );
    this.saveCerts({ caPem: issued.caCertPem, certPem: issued.certPem, keyPem: key.privateKeyPem });
    this.setTls(issued.caCertPem, issued.certPem, key.privateKeyPem);
    // The managers revoked the replaced certificate: cached connections that presented it are dropped.
    for (const c of this.forwardClients.values()) c.close();
    this.forwardClients.clear();
    return issued;
  }

  /** Renews the certificate once less than a third of its validity is left (jittered), as Swarm does. */
  private renewTimer: NodeJS.Timeout | null = null;
  private scheduleRenewal(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    const certs0 = this.state.loadCerts();
    const c0 = certs0 ? parseNodeCert(certs0.certPem) : null;
    // Look at least ten times per validity period (once a minute for the usual 90 days).
    const every = c0 ? Math.max(1000, Math.min(60_000, Math.floor((c0.notAfter.getTime() - c0.notBefore.getTime()) / 10))) : 60_000;
    this.renewTimer = setInterval(() => {
      const certs = this.state.loadCerts();
      if (!certs || !this.node || this.roleChange) return;
      const info = parseNodeCert(certs.certPem);
      if (!needsRenewal(info, Date.now())) return;
      this.log.info({ expiry: info.notAfter.toISOString() }, 'renewing the node certificate before it expires');
      this.renewCertificate().then(
        () => {
          this.session?.restart();
          this.scheduleRenewal();
        },
        (err: unknown) => this.log.warn({ err }, 'certificate renewal failed; will retry'),
      );
    }, every);
    this.renewTimer.unref();
  }

  private caSync: Promise<void> | null = null;
  /** The digests last found matching this node's files: heartbeats that repeat them cost nothing. */
  private caFollowed = '';
  /**
   * The CA as the managers say nodes should hold it (session welcome and heartbeats). A new trust
   * bundle (a root rotation began or ended) is fetched from the manager and taken on for the next
   * connections, without restarting anything; a certificate whose signer is not the root that
   * signs now (a rotation is under way) is renewed at once, whatever its expiry.
   */
  private followCA(trustDigest: string, signingRootDigest: string): void {
    const said = `${trustDigest}/${signingRootDigest}`;
    if (!trustDigest || said === this.caFollowed || this.caSync || this.roleChange || !this.node) return;
    this.caSync = (async () => {
      const certs = this.state.loadCerts();
      if (!certs) return;
      let { caPem, certPem } = certs;
      if (bundleDigest(caPem) !== trustDigest) {
        const addr = this.session?.connectedTo;
        if (!addr) return;
        const got = (
          await this.callOnce<{ certPem: string }>(
            NodeCAService,
            'NodeCA',
            addr,
            this.managerCredentials(addr),
            'getRootCA',
            { bundle: true },
            'fetching the trust bundle',
          )
        ).certPem;
        // It changed again meanwhile: the next heartbeat says what to fetch.
        if (bundleDigest(got) !== trustDigest) return;
        caPem = got;
        // Outside a rotation (one root) a certificate the root signed needs no chain: the
        // cross-signed certificate of a rotation that ended is dropped.
        const [leaf] = splitCertificates(certPem);
        if (splitCertificates(caPem).length === 1 && leaf !== certPem && directIssuer(caPem, certPem)) certPem = leaf!;
        // The key stays as it is on disk (encrypted while autolock is on); TLS takes it in clear.
        this.state.saveCerts({ caPem, certPem, keyPem: certs.keyPem });
        this.setTls(caPem, certPem, openKeyPem(certs.keyPem, this.keySecret));
        this.log.info({ roots: splitCertificates(caPem).length }, "the cluster's trusted root CAs changed: took them on");
      }
      const signer = directIssuer(caPem, certPem);
      if (signingRootDigest && (!signer || caDigest(signer) !== signingRootDigest)) {
        this.log.info('the root CA is being rotated: renewing the node certificate from the new root');
        await this.renewCertificate();
        this.session?.restart();
        this.scheduleRenewal();
        return;
      }
      this.caFollowed = said;
    })()
      .catch((err: unknown) => this.log.warn({ err }, 'following the root CA failed; will retry on the next heartbeat'))
      .finally(() => {
        this.caSync = null;
      });
  }

  private roleChange: Promise<void> | null = null;
  private changeRole(want: 'worker' | 'manager'): Promise<void> {
    this.roleChange ??= (async () => {
      const node = this.node!;
      this.log.info({ from: node.role, to: want }, "the managers changed this node's role: renewing its certificate");
      const issued = await this.renewCertificate();
      if (issued.role !== want) return;
      node.role = want;
      if (want === 'manager') {
        node.raftId = undefined;
        this.state.saveNode(node);
        await this.startManager();
      } else {
        await this.stopManager();
        // Workers do not lock: the TLS key goes back in clear before the key file that opens it is gone.
        await this.onLockChange(null, null);
        rmSync(this.state.raftDir, { recursive: true, force: true });
        node.raftId = undefined;
        this.state.saveNode(node);
      }
      this.session?.restart();
    })()
      .catch((err: unknown) => this.log.warn({ err }, 'role change failed; will retry on the next heartbeat'))
      .finally(() => {
        this.roleChange = null;
      });
    return this.roleChange;
  }

  private async startManager(bootstrap?: Parameters<typeof Manager.start>[0]['bootstrap'], forceNewCluster = false): Promise<void> {
    const node = this.node!;
    if (!this.nodeServer) {
      const s = new grpc.Server(grpcServerOptions({ 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_permit_without_calls': 1 }));
      await new Promise<void>((res, rej) =>
        s.bindAsync(this.listenAddr, serverCredentials(this.tls), (e) =>
          e ? rej(new TsswarmError('UNAVAILABLE', `cannot listen on ${this.listenAddr}: ${e.message}`)) : res(),
        ),
      );
      serverNoDelay(s);
      this.nodeServer = s;
    }
    let members: JoinRaftResponse['members'] | undefined;
    const fresh = !node.raftId || !existsSync(this.state.raftDir);
    if (!bootstrap && fresh) {
      // A new manager: ask the leader to add us to the Raft group (as a learner first).
      node.raftId = newRaftId();
      rmSync(this.state.raftDir, { recursive: true, force: true });
      members = await this.askToJoinRaft(node.raftId);
    }
    if (!node.raftId) node.raftId = newRaftId();
    this.state.saveNode(node);
    const { Manager } = await import('../manager/manager.js');
    this.manager = await Manager.start({
      raftDir: this.state.raftDir,
      nodeId: node.nodeId,
      raftId: node.raftId,
      clusterId: node.clusterId,
      advertiseAddr: node.advertiseAddr,
      server: this.nodeServer,
      credentials: { server: serverCredentials(this.tls), client: this.managerCredentials() },
      logger: this.o.logger.child({ node: node.nodeId }),
      bootstrap,
      forceNewCluster,
      members: members?.map((m) => ({ raftId: m.raftId, nodeId: m.nodeId, addr: m.addr })),
      heartbeatPeriodMs: this.o.heartbeatPeriodMs,
      version: this.o.version,
      caCertPem: () => this.caPem,
      unlock: this.unlockKek ?? undefined,
      onLockChange: (secret, kek) => this.onLockChange(secret, kek),
    });
    this.eventFeed?.close();
    if (this.o.dockerSocketPath)
      this.eventFeed = followStore(this.manager.store, this.swarmEvents, this.log.child({ component: 'engine' }));
  }

  /** Certificates to disk, the TLS key encrypted while autolock is on. */
  private saveCerts(c: Certificates): void {
    this.state.saveCerts({ ...c, keyPem: this.keySecret ? sealKeyPem(c.keyPem, this.keySecret) : c.keyPem });
  }

  /** The manager rewrapped its Raft keys (autolock on, off, rotated): the TLS key follows, encrypted under the key file's secret or in clear. */
  private async onLockChange(secret: Uint8Array | null, kek: Kek | null): Promise<void> {
    const was = this.keySecret;
    this.keySecret = secret;
    this.unlockKek = kek;
    const certs = this.state.loadCerts();
    if (!certs) return;
    // The key on disk is sealed under `was` when it is sealed at all (a secret is made once per Raft key
    // file and then kept, so `was` and `secret` differ only after a force-new-cluster made a new file).
    const plain = openKeyPem(certs.keyPem, was ?? secret);
    this.state.saveCerts({ ...certs, keyPem: secret ? sealKeyPem(plain, secret) : plain });
    this.log.info(
      { autolock: !!secret },
      secret ? "the node's TLS key is stored encrypted (autolock)" : "the node's TLS key is stored in clear (autolock off)",
    );
  }

  /** `tsswarm unlock`: the key unwraps the Raft keys (or is refused, changing nothing), the TLS key opens, and the node's services start. */
  private async unlock(key: string): Promise<object> {
    if (!this.locked) throw new TsswarmError('FAILED_PRECONDITION', 'This node is not locked: there is nothing to unlock');
    const kek = kekFromUnlockKey(key);
    let keys: DataKeys;
    try {
      keys = await DataKeys.load(realVfs, this.state.raftDir, kek);
    } catch (e) {
      if (e instanceof WrongUnlockKeyError) {
        this.log.warn('unlock refused: the key given is not the one this manager was locked with');
        throw new TsswarmError('PERMISSION_DENIED', e.message);
      }
      throw e;
    }
    const certs = this.state.loadCerts();
    if (!certs || !this.node)
      throw new TsswarmError('FAILED_PRECONDITION', 'this manager has no certificates to unlock: `tsswarm leave --force` and join again');
    const keyPem = openKeyPem(certs.keyPem, keys.nodeKeySecret);
    this.unlockKek = kek;
    this.keySecret = keys.nodeKeySecret;
    this.setTls(certs.caPem, certs.certPem, keyPem);
    this.locked = false;
    this.log.info({ node: this.node.nodeId }, 'manager unlocked: resuming cluster membership');
    try {
      await this.startNodeServices();
    } catch (e) {
      await this.stopNodeServices().catch(() => undefined);
      this.locked = true;
      throw e;
    }
    return {};
  }

  private async askToJoinRaft(raftId: string): Promise<JoinRaftResponse['members']> {
    const node = this.node!;
    let addrs = [...node.managerAddrs];
    for (let attempt = 0; attempt < 20; attempt++) {
      const addr = addrs[attempt % addrs.length]!;
      try {
        const r = await this.callOnce<JoinRaftResponse>(
          RaftMembershipService,
          'RaftMembership',
          addr,
          this.managerCredentials(addr),
          'joinRaft',
          { raftId, addr: node.advertiseAddr },
          `joining the managers through ${addr}`,
        );
        return r.members;
      } catch (e) {
        const hint = /leader is at (\S+?)(?:[;,\s]|$)/.exec((e as Error).message)?.[1];
        if (hint) addrs = [hint, ...addrs.filter((a) => a !== hint)];
        else await new Promise((r) => setTimeout(r, 250));
        this.log.debug({ err: e, addr }, 'joining the raft group: retrying');
      }
    }
    throw new TsswarmError('UNAVAILABLE', "could not join the managers' raft group: no leader answered");
  }

  private async stopManager(): Promise<void> {
    const m = this.manager;
    this.manager = null;
    this.eventFeed?.close();
    this.eventFeed = null;
    await m?.close();
    const s = this.nodeServer;
    this.nodeServer = null;
    if (s) await new Promise<void>((r) => s.tryShutdown(() => r()));
  }

  private async stopNodeServices(): Promise<void> {
    await this.stopEngineTcp();
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
    this.session?.stop();
    this.session = null;
    // Containers keep running: a restarted daemon adopts them.
    await this.worker?.close();
    this.worker = null;
    await this.network?.close().catch((err: unknown) => this.o.logger.warn({ err }, 'closing networking failed'));
    this.network = null;
    await this.stopManager();
  }

  private async waitFor<T>(what: string, f: () => Promise<T | null>, ms = 15_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await f().catch(() => null);
      if (v) return v;
      if (Date.now() > end) throw new TsswarmError('UNAVAILABLE', `timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    await this.stopNodeServices();
    for (const c of this.forwardClients.values()) c.close();
    const l = this.local;
    this.local = null;
    if (l) await new Promise<void>((r) => l.tryShutdown(() => r()));
    await this.engine?.close();
    this.engine = null;
    await this.metrics?.close();
    this.runtime?.close();
    rmSync(this.o.socketPath, { force: true });
  }

  /** Tokens, for the sandbox and tests (through the same path as the CLI). */
  joinTokens(): Promise<GetJoinTokensResponse> {
    return this.control().getJoinTokens({});
  }
}
