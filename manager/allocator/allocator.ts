// The allocator, on the leader: gives networks their VNI, subnet and gateway,
// services their VIPs and ingress-published ports, and new tasks an address on
// each of their networks, then takes the tasks from NEW to PENDING, where the
// scheduler picks them up. All as store transactions; what is handed out is
// rebuilt from the store when the allocator starts, so a new leader carries on.
// A task that cannot be allocated stays NEW with the reason in its status.
import type pino from 'pino';
import type { TsswarmError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import {
  Meta,
  Network,
  type NetworkAttachment,
  NetworkSpec,
  type NetworkStatus,
  Node,
  type Service,
  Task,
  type TaskStatus,
  TaskState,
} from '../../proto/gen/objects.js';
import {
  BATCH_BYTES,
  chunkByBytes,
  encodedSize,
  type EntryTooLargeError,
  type MemoryStore,
  type ReadTx,
  rejectOversizedTask,
  type StoreEvent,
  type Subscription,
  writeSplitting,
} from '../store/index.js';
import { tryParseIp } from '../../lib/ipnet.js';
import { INGRESS_NAME } from '../../spec/network.js';
import { clusterAttachments } from '../../spec/predefined-networks.js';
import { AllocatorState, type AllocatorStateOptions, publishesIngress, taskDead } from './state.js';
import { type Clock, ReconcileLoop } from '../reconciler.js';

/** Tasks per transaction, at most (and at most BATCH_BYTES of them). */
export const ALLOCATE_CHUNK = 5000;
/** What one network attachment adds to a task, counted generously: the cut by bytes is made before the addresses exist. */
const ATTACHMENT_BYTES = 512;

export interface AllocatorOptions extends AllocatorStateOptions {
  store: MemoryStore;
  logger: pino.Logger;
  clock?: Clock;
}

const waiting = (t: Task): boolean => (t.status?.state ?? 0) === TaskState.NEW && t.desiredState <= TaskState.RUNNING;

/** The status message of a task waiting for an allocation that failed. */
export const ALLOCATION_FAILED = 'network allocation failed';

/** A network by id or name (service specs hold ids once the Control API resolved them). */
export function findNetworkIn(tx: ReadTx, target: string): Network | undefined {
  return tx.networks.get(target) ?? tx.networks.byName(target);
}

/** The routing mesh's network, if there is one. */
export function ingressNetwork(tx: ReadTx): Network | undefined {
  return tx.networks.list().find((n) => n.spec?.ingress);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

export class Allocator {
  private readonly log: pino.Logger;
  private readonly now: () => number;
  private state: AllocatorState;
  private sub: Subscription | null = null;
  private readonly loop: ReconcileLoop;
  private stopped = true;
  /** Services to (re)compute the endpoint of. */
  private readonly dirty = new Set<string>();
  /** Service id → why its endpoint could not be allocated. */
  private readonly serviceErrors = new Map<string, string>();
  /** Some task or network waits for something to be freed: a release starts a pass. */
  private blocked = false;
  /** Tasks taken to PENDING (tests, metrics). */
  allocated = 0;

  constructor(private readonly o: AllocatorOptions) {
    this.log = o.logger.child({ component: 'allocator' });
    this.now = o.clock ? () => o.clock!.now() : Date.now;
    this.state = new AllocatorState(o);
    this.loop = new ReconcileLoop({
      name: 'allocation',
      log: this.log,
      clock: o.clock,
      pass: () => this.run(),
      // Another writer changed what this pass read: look again at once.
      onError: (err) => ((err as TsswarmError).code === 'CONFLICT' ? 'now' : 'warn'),
    });
  }

  /** What is handed out (tests, inspection). */
  get allocations(): AllocatorState {
    return this.state;
  }

  start(): void {
    this.stopped = false;
    // Rebuild and subscribe with nothing in between (applies are synchronous), so no change is missed.
    this.rebuild();
    this.sub = this.o.store.subscribe((e) => this.onEvent(e), { tables: ['tasks', 'services', 'networks', 'nodes'], commits: 'none' });
    this.loop.start();
  }

  /** The allocations recorded in the store: networks, then services' VIPs and ports, then live tasks' addresses. */
  private rebuild(): void {
    const st = (this.state = new AllocatorState(this.o));
    this.dirty.clear();
    this.serviceErrors.clear();
    const problems: string[] = [];
    const guard = (f: () => string[] | void): void => {
      try {
        problems.push(...(f() ?? []));
      } catch (e) {
        problems.push((e as Error).message);
      }
    };
    this.o.store.view((tx) => {
      for (const n of tx.networks.list()) guard(() => st.observeNetwork(n));
      for (const s of tx.services.list()) {
        guard(() => st.observeService(s));
        this.dirty.add(s.meta.id);
      }
      for (const t of tx.tasks.list()) if (!taskDead(t)) guard(() => st.observeTask(t));
      for (const n of tx.nodes.list()) guard(() => st.observeNode(n));
    });
    for (const p of problems) this.log.warn({ problem: p }, 'the stored allocations clash');
  }

  private onEvent(e: StoreEvent): void {
    if (e.kind === 'commit') return;
    const st = this.state;
    try {
      if (e.table === 'tasks') {
        if (e.kind === 'delete') this.released(() => st.forgetTask(e.object));
        else if (taskDead(e.object)) {
          if (!e.old || !taskDead(e.old)) this.released(() => st.forgetTask(e.object));
        } else {
          st.observeTask(e.object);
          if (waiting(e.object)) this.kick();
        }
      } else if (e.table === 'services') {
        if (e.kind === 'delete') {
          this.dirty.delete(e.object.meta.id);
          this.serviceErrors.delete(e.object.meta.id);
          this.released(() => st.forgetService(e.object));
        } else {
          st.observeService(e.object, e.old);
          this.dirty.add(e.object.meta.id);
          this.kick();
        }
      } else if (e.table === 'nodes') {
        if (e.kind === 'delete') this.released(() => st.forgetNode(e.object));
        else {
          st.observeNode(e.object);
          // A node new to the cluster gets its ingress address.
          if (e.kind === 'create' || e.object.attachments.length === 0) this.kick();
        }
      } else if (e.table === 'networks') {
        if (e.kind === 'delete') this.released(() => st.forgetNetwork(e.object));
        else if (AllocatorState.allocated(e.object)) {
          st.observeNetwork(e.object);
          if (this.blocked || this.serviceErrors.size) this.kick();
        } else this.kick();
      }
    } catch (err) {
      this.log.warn({ err }, 'a stored allocation clashes with another');
    }
  }

  /** Something was given back: whatever waits for it is tried again. */
  private released(f: () => void): void {
    f();
    if (this.blocked || this.serviceErrors.size) this.kick();
  }

  private kick(): void {
    this.loop.kick();
  }

  /** One store transaction whose allocations are kept only if it applies. */
  private async write(fn: Parameters<MemoryStore['update']>[0]): Promise<void> {
    const st = this.state;
    try {
      await this.o.store.update(fn);
      st.commit();
    } catch (e) {
      st.rollback();
      throw e;
    }
  }

  private async run(): Promise<void> {
    let blocked = false;
    await this.allocateNetworks().then((b) => (blocked ||= b));
    if (this.stopped) return;
    await this.allocateServices();
    if (this.stopped) return;
    await this.allocateTasks().then((b) => (blocked ||= b));
    if (this.stopped) return;
    await this.allocateNodes().then((b) => (blocked ||= b));
    this.blocked = blocked;
  }

  /**
   * Every node gets an address on the ingress network: the routing mesh
   * forwards published-port traffic from it to tasks on other nodes, so
   * their replies come back through the same node (Swarm's ingress endpoint).
   */
  private async allocateNodes(): Promise<boolean> {
    let blocked = false;
    const st = this.state;
    const todo = this.o.store.view((tx) => {
      const ing = ingressNetwork(tx);
      if (!ing || !AllocatorState.allocated(ing)) return null;
      return {
        ing: ing.meta.id,
        nodes: tx.nodes.list().filter((n) => !n.attachments.some((a) => a.networkId === ing.meta.id && a.addresses.length > 0)),
      };
    });
    if (!todo || todo.nodes.length === 0) return false;
    for (const part of chunkByBytes(todo.nodes, (n) => encodedSize('nodes', n) + ATTACHMENT_BYTES))
      await this.write((tx) => {
        for (const n0 of part) {
          const n = tx.nodes.get(n0.meta.id);
          if (!n) continue;
          try {
            const a = st.allocateNode(n, todo.ing);
            tx.nodes.update(Node.create({ ...n, attachments: [...n.attachments.filter((x) => x.networkId !== todo.ing), a] }));
          } catch (e) {
            blocked = true;
            this.log.warn({ node: n.meta.id, reason: (e as Error).message }, 'no ingress address for the node');
          }
        }
      });
    return blocked;
  }

  /** Networks without an allocation get one; a failure is written to the network's status.message. */
  private async allocateNetworks(): Promise<boolean> {
    let blocked = false;
    const st = this.state;
    await this.write((tx) => {
      const todo = tx.networks.list().filter((n) => !AllocatorState.allocated(n));
      if (!todo.length) return;
      // No default subnet may contain a node's own address (the overlay would hide the underlay).
      const avoid = tx.nodes
        .list()
        .map((n) => tryParseIp((n.status?.addr ?? '').replace(/:\d+$/, '')))
        .filter((x): x is number => x !== null);
      for (const n of todo) {
        let status: NetworkStatus;
        try {
          status = st.allocateNetwork(n, avoid);
          this.log.info({ network: n.meta.id, name: n.spec?.name, ...status }, 'network allocated');
        } catch (e) {
          blocked = true;
          const message = `allocation failed: ${(e as Error).message}`;
          if (n.status?.message === message) continue;
          status = { vni: 0, subnet: '', gateway: '', message };
          this.log.warn({ network: n.meta.id, name: n.spec?.name, reason: message }, 'network allocation failed');
        }
        tx.networks.update(Network.create({ ...n, status }));
      }
    });
    return blocked;
  }

  /** The networks a service's VIPs go on: its spec's (resolved), plus ingress when it publishes through the mesh. */
  private serviceNetworks(tx: ReadTx, s: Service): string[] {
    const ids: string[] = [];
    for (const a of clusterAttachments(s.spec?.task)) {
      const n = findNetworkIn(tx, a.target);
      if (!n) throw new Error(`network "${a.target}" not found: it was removed; update the service (--network-rm ${a.target})`);
      if (!ids.includes(n.meta.id)) ids.push(n.meta.id);
    }
    if (publishesIngress(s)) {
      const ing = ingressNetwork(tx);
      if (!ing)
        throw new Error(
          'the service publishes ports in ingress mode but the cluster has no ingress network: create one (`tsswarm network create -d overlay --ingress ingress`) or publish in host mode',
        );
      if (!ids.includes(ing.meta.id)) ids.push(ing.meta.id);
    }
    return ids;
  }

  /** Services whose endpoint does not match their spec get VIPs and ports; a failure is kept for their tasks to show. */
  private async allocateServices(): Promise<void> {
    if (this.dirty.size === 0 && this.serviceErrors.size === 0) return;
    const ids = [...new Set([...this.dirty, ...this.serviceErrors.keys()])];
    this.dirty.clear();
    const st = this.state;
    const bytes = new Map<string, number>();
    this.o.store.view((tx) => {
      for (const id of ids) {
        const s = tx.services.get(id);
        bytes.set(id, s ? encodedSize('services', s) : 0);
      }
    });
    const write = (part: readonly string[]): Promise<void> =>
      this.write((tx) => {
        for (const id of part) {
          const s = tx.services.get(id);
          if (!s) {
            this.serviceErrors.delete(id);
            continue;
          }
          try {
            const endpoint = st.serviceEndpoint(s, this.serviceNetworks(tx, s));
            this.serviceErrors.delete(id);
            if (sameJson(endpoint, s.endpoint)) continue;
            tx.services.update({ ...s, endpoint });
            this.log.info(
              {
                service: id,
                name: s.spec?.name,
                vips: endpoint?.virtualIps.map((v) => v.addr),
                ports: endpoint?.ports.map((p) => p.publishedPort),
              },
              'service endpoint allocated',
            );
          } catch (e) {
            const why = (e as Error).message;
            if (this.serviceErrors.get(id) !== why)
              this.log.warn({ service: id, name: s.spec?.name, reason: why }, 'service allocation failed');
            this.serviceErrors.set(id, why);
          }
        }
      });
    const tooLarge = (id: string, e: EntryTooLargeError): void => {
      // Alone over the store's cap with its endpoint: its tasks show why; it is tried again only when something changes.
      const why = `its endpoint cannot be stored: ${e.message}`;
      if (this.serviceErrors.get(id) !== why) this.log.warn({ service: id, bytes: e.largest.bytes }, 'service endpoint too large to store');
      this.serviceErrors.set(id, why);
    };
    try {
      for (const part of chunkByBytes(ids, (id) => bytes.get(id)! + ATTACHMENT_BYTES)) await writeSplitting(part, write, tooLarge);
    } catch (e) {
      // Computed again on the next pass.
      for (const id of ids) this.dirty.add(id);
      throw e;
    }
  }

  /** The networks (with aliases) a task gets an address on. */
  private taskNetworks(
    tx: ReadTx,
    t: Task,
    svc: Service | undefined,
    ingress: () => Network | undefined,
  ): Array<{ networkId: string; aliases: string[] }> {
    const out: Array<{ networkId: string; aliases: string[] }> = [];
    for (const a of clusterAttachments(t.spec)) {
      const n = findNetworkIn(tx, a.target);
      if (!n) throw new Error(`network "${a.target}" not found: it was removed; update the service (--network-rm ${a.target})`);
      if (!out.some((x) => x.networkId === n.meta.id)) out.push({ networkId: n.meta.id, aliases: [...a.aliases] });
    }
    if (svc && publishesIngress(svc)) {
      const ing = ingress();
      if (ing && !out.some((x) => x.networkId === ing.meta.id)) out.push({ networkId: ing.meta.id, aliases: [] });
    }
    return out;
  }

  /** NEW tasks get their addresses and go PENDING; those that cannot stay NEW with the reason. */
  private async allocateTasks(): Promise<boolean> {
    const store = this.o.store;
    const todo = store.view((tx) => tx.tasks.list().filter(waiting));
    const now = this.now();
    let blocked = false;
    const size = (t: Task): number => encodedSize('tasks', t) + ATTACHMENT_BYTES * (t.spec?.networks.length ?? 0) + ATTACHMENT_BYTES;
    for (const chunk of chunkByBytes(todo, size, BATCH_BYTES, ALLOCATE_CHUNK)) {
      if (this.stopped) break;
      await writeSplitting(
        chunk,
        (part) => this.allocateSome(part, now, () => (blocked = true)),
        async (t, e) => {
          // Alone over the store's cap once its addresses are added: retrying can never succeed.
          const ok = await rejectOversizedTask(store, t, e, now);
          this.log.warn(
            { task: t.meta.id, service: t.serviceId, bytes: e.largest.bytes, rejected: ok },
            'task too large to store; rejected',
          );
        },
      );
    }
    return blocked;
  }

  /** One transaction: these NEW tasks get their addresses and go PENDING, or keep the reason. */
  private async allocateSome(part: readonly Task[], now: number, onBlocked: () => void): Promise<void> {
    const st = this.state;
    let n = 0;
    await this.write((tx) => {
      // Looked up once per transaction, and only if a task needs it.
      let ing: { n: Network | undefined } | null = null;
      const ingress = (): Network | undefined => (ing ??= { n: ingressNetwork(tx) }).n;
      for (const t of part) {
        const cur = tx.tasks.get(t.meta.id);
        // Changed meanwhile (shut down, removed): the next pass looks again.
        if (!cur || cur.meta.version !== t.meta.version) continue;
        const svc = tx.services.get(t.serviceId);
        let networks: NetworkAttachment[];
        let status: TaskStatus;
        try {
          const svcError = this.serviceErrors.get(t.serviceId);
          if (svcError) throw new Error(`service ${svc?.spec?.name ?? t.serviceId}: ${svcError}`);
          const wanted = this.taskNetworks(tx, t, svc, ingress);
          networks = wanted.length || t.networks.length ? st.allocateTask(t, wanted) : [];
          status = { ...t.status, state: TaskState.PENDING, timestamp: now, message: 'pending task scheduling', err: '' };
          n++;
        } catch (e) {
          onBlocked();
          const err = `${ALLOCATION_FAILED}: ${(e as Error).message}`;
          if (t.status?.err === err) continue;
          networks = t.networks;
          status = { ...t.status, timestamp: now, message: ALLOCATION_FAILED, err };
          this.log.warn({ task: t.meta.id, service: t.serviceId, reason: err }, 'task allocation failed; it stays NEW');
        }
        tx.tasks.update(Task.create({ ...t, networks, status }));
      }
    });
    this.allocated += n;
  }

  /** Resolves when no pass is running or due (tests, benchmarks). */
  idle(): Promise<void> {
    return this.loop.idle();
  }

  /** Whether a pass runs or is due. */
  get due(): boolean {
    return this.loop.due;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sub?.close();
    this.sub = null;
    await this.loop.stop();
  }
}

export { INGRESS_NAME };

/**
 * Creates the ingress network when the cluster has none (the leader calls it
 * when it takes over). A network named `ingress` that is not the mesh's is
 * left alone: services publishing ports then report that no ingress exists.
 */
export async function ensureIngressNetwork(store: MemoryStore, logger: pino.Logger): Promise<Network | undefined> {
  const have = store.view((tx) => ingressNetwork(tx) ?? tx.networks.byName(INGRESS_NAME));
  if (have) return have.spec?.ingress ? have : undefined;
  const n = Network.create({
    meta: Meta.create({ id: newId(), createdAt: Date.now(), updatedAt: Date.now() }),
    spec: NetworkSpec.create({ name: INGRESS_NAME, driver: 'overlay', ingress: true }),
  });
  await store.update((tx) => tx.networks.create(n));
  logger.child({ component: 'allocator' }).info({ network: n.meta.id }, 'ingress network created');
  return store.view((tx) => tx.networks.get(n.meta.id));
}
