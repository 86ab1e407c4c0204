// What each connected node is told about the overlay networks its tasks use:
// per network, every endpoint cluster-wide (task address, MAC, the VTEP of the
// node running it, whether it serves) and the services reachable on it (VIP,
// ports, endpoint mode). A node gets a network's whole state when it starts
// needing it (its first task there, or the ingress network once any service
// publishes a port through the routing mesh), then only the changes, one
// message per store transaction that touched them; when it no longer needs
// the network it is told to remove it. The managers know every endpoint, so
// no gossip between agents is needed (Swarm runs a gossip layer for this).
import type pino from 'pino';
import { macOfIp } from '../../lib/net.js';
import type { ReadTx } from '../store/index.js';
import type { MemoryStore, StoreEvent, Subscription } from '../store/index.js';
import { EndpointMode, type Network, type Node, PublishMode, type Service, type Task, TaskState } from '../../proto/gen/objects.js';
import type { NetworkEndpoint, NetworkService, NetworkState, NetworkUpdate } from '../../proto/gen/netfeed.js';

export type SendNetworks = (u: NetworkUpdate) => void;

export { macOfIp };

const hostOf = (addr: string): string => addr.replace(/:\d+$/, '');
const ipOf = (cidr: string): string => cidr.replace(/\/\d+$/, '');

/**
 * A task whose container may be alive on its node: placed and not yet ended.
 * Its endpoint stays programmed everywhere until the container has stopped,
 * even once it is being shut down, so connections in flight can finish within
 * the stop grace period.
 */
export function liveOnNode(t: Task): boolean {
  const st = t.status?.state ?? TaskState.NEW;
  return !!t.nodeId && st >= TaskState.ASSIGNED && st <= TaskState.RUNNING;
}

/**
 * A live task that should receive new traffic: running, wanted running, and
 * healthy when it has a health check. A task the managers decide to stop
 * leaves every VIP's backends in the same transaction, before its agent
 * starts stopping the container.
 */
export function serving(t: Task): boolean {
  const h = t.status?.health ?? '';
  return liveOnNode(t) && t.status?.state === TaskState.RUNNING && t.desiredState <= TaskState.RUNNING && (h === '' || h === 'healthy');
}

/** The endpoint records of one task (one per network it is attached to). */
export function endpointsOf(t: Task, vtepOf: (nodeId: string) => string): Array<[string, NetworkEndpoint]> {
  if (!liveOnNode(t)) return [];
  const out: Array<[string, NetworkEndpoint]> = [];
  for (const a of t.networks) {
    const cidr = a.addresses[0];
    if (!cidr) continue;
    const ip = ipOf(cidr);
    out.push([
      a.networkId,
      {
        taskId: t.meta.id,
        serviceId: t.serviceId,
        serviceName: t.serviceName,
        slot: t.slot,
        ip,
        mac: macOfIp(ip),
        nodeId: t.nodeId,
        vtep: vtepOf(t.nodeId),
        serving: serving(t),
        aliases: [...a.aliases],
        hostname: t.spec?.container?.hostname || t.meta.id.slice(0, 12),
      },
    ]);
  }
  return out;
}

/** A node's own endpoints (its ingress address): keyed `node:<id>`, never a VIP backend. */
export function nodeEndpointsOf(n: Node): Array<[string, NetworkEndpoint]> {
  const id = n.meta.id;
  const vtep = hostOf(n.status?.addr ?? '');
  const out: Array<[string, NetworkEndpoint]> = [];
  for (const a of n.attachments) {
    const cidr = a.addresses[0];
    if (!cidr) continue;
    const ip = ipOf(cidr);
    out.push([
      a.networkId,
      {
        taskId: `node:${id}`,
        serviceId: '',
        serviceName: '',
        slot: 0,
        ip,
        mac: macOfIp(ip),
        nodeId: id,
        vtep,
        serving: false,
        aliases: [],
        hostname: n.description?.hostname ?? '',
      },
    ]);
  }
  return out;
}

/** The service records of one service (one per network it has a VIP on, or is attached to under dnsrr). */
export function servicesOf(s: Service): Array<[string, NetworkService]> {
  const mode = s.spec?.endpoint?.mode ?? EndpointMode.VIP;
  const ports = s.endpoint?.ports ?? [];
  const aliasesOn = new Map<string, string[]>();
  for (const a of s.spec?.task?.networks ?? []) aliasesOn.set(a.target, [...a.aliases]);
  const nets = new Map<string, string>();
  for (const v of s.endpoint?.virtualIps ?? []) nets.set(v.networkId, mode === EndpointMode.DNSRR ? '' : ipOf(v.addr));
  return [...nets].map(([networkId, vip]) => [
    networkId,
    {
      serviceId: s.meta.id,
      name: s.spec?.name ?? '',
      vip,
      mode,
      ports: ports.map((p) => ({ ...p })),
      aliases: aliasesOn.get(networkId) ?? [],
    },
  ]);
}

/** Whether a service publishes a port through the routing mesh (every node must then answer it). */
export function publishesIngress(s: Service): boolean {
  return (s.endpoint?.ports ?? []).some((p) => p.publishMode === PublishMode.INGRESS && p.publishedPort > 0);
}

interface NetState {
  network: Network;
  endpoints: Map<string, NetworkEndpoint>;
  services: Map<string, NetworkService>;
}

interface Delta {
  network: boolean;
  endpoints: Map<string, NetworkEndpoint | null>;
  services: Map<string, NetworkService | null>;
}

const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export class NetworkFeed {
  private readonly nodes = new Map<string, SendNetworks>();
  /** What each attached node has been told it has. */
  private readonly sent = new Map<string, Set<string>>();
  private readonly nets = new Map<string, NetState>();
  /** node → network → live tasks of that node on it */
  private readonly refs = new Map<string, Map<string, number>>();
  /** services publishing through the routing mesh */
  private readonly meshServices = new Set<string>();
  private readonly vteps = new Map<string, string>();
  private deltas = new Map<string, Delta>();
  private sub: Subscription | null = null;
  private readonly log: pino.Logger;

  constructor(
    private readonly store: MemoryStore,
    logger: pino.Logger,
  ) {
    this.log = logger.child({ component: 'netfeed' });
  }

  /** The node's session is open: it gets a reset and the full state of its networks now, changes from then on. */
  attach(nodeId: string, send: SendNetworks): () => void {
    this.ensureSubscribed();
    this.nodes.set(nodeId, send);
    const want = this.wanted(nodeId);
    this.sent.set(nodeId, want);
    send({ reset: true, networks: [...want].map((id) => this.full(id)).filter((x): x is NetworkState => x !== null), removedNetworks: [] });
    return () => {
      if (this.nodes.get(nodeId) === send) {
        this.nodes.delete(nodeId);
        this.sent.delete(nodeId);
      }
      if (this.nodes.size === 0) this.unsubscribe();
    };
  }

  /** The networks a node needs: those of its live tasks, and ingress while any service publishes through it. */
  private wanted(nodeId: string): Set<string> {
    const out = new Set<string>();
    for (const [net, n] of this.refs.get(nodeId) ?? []) if (n > 0 && this.nets.has(net)) out.add(net);
    if (this.meshServices.size > 0) for (const [id, s] of this.nets) if (s.network.spec?.ingress) out.add(id);
    return out;
  }

  private full(id: string): NetworkState | null {
    const s = this.nets.get(id);
    if (!s) return null;
    return {
      network: s.network,
      full: true,
      endpoints: [...s.endpoints.values()],
      removedEndpoints: [],
      services: [...s.services.values()],
      removedServices: [],
    };
  }

  private ensureSubscribed(): void {
    if (this.sub && !this.sub.closed) return;
    const wasBroken = this.sub !== null;
    this.rebuild();
    this.sub = this.store.subscribe((e) => this.onEvent(e), { tables: ['tasks', 'services', 'networks', 'nodes'], commits: 'relevant' });
    if (wasBroken) {
      this.log.warn('network feed restarted: sending every node its networks again');
      for (const [n, send] of this.nodes) {
        const want = this.wanted(n);
        this.sent.set(n, want);
        send({
          reset: true,
          networks: [...want].map((id) => this.full(id)).filter((x): x is NetworkState => x !== null),
          removedNetworks: [],
        });
      }
    }
  }

  private unsubscribe(): void {
    this.sub?.close();
    this.sub = null;
    this.deltas.clear();
  }

  /** Everything from the store as it is now. */
  private rebuild(): void {
    this.nets.clear();
    this.refs.clear();
    this.meshServices.clear();
    this.vteps.clear();
    this.deltas.clear();
    this.store.view((tx: ReadTx) => {
      for (const n of tx.nodes.list()) this.vteps.set(n.meta.id, hostOf(n.status?.addr ?? ''));
      for (const n of tx.networks.list()) this.nets.set(n.meta.id, { network: n, endpoints: new Map(), services: new Map() });
      for (const s of tx.services.list()) this.putService(undefined, s);
      for (const t of tx.tasks.list()) this.putTask(undefined, t);
      for (const n of tx.nodes.list()) this.putNode(undefined, n);
    });
    this.deltas.clear();
  }

  private delta(net: string): Delta {
    let d = this.deltas.get(net);
    if (!d) this.deltas.set(net, (d = { network: false, endpoints: new Map(), services: new Map() }));
    return d;
  }

  private vtepOf = (nodeId: string): string => this.vteps.get(nodeId) ?? '';

  private putTask(old: Task | undefined, t: Task | undefined): void {
    const before = old ? endpointsOf(old, this.vtepOf) : [];
    const after = t ? endpointsOf(t, this.vtepOf) : [];
    const id = (t ?? old)!.meta.id;
    for (const [net] of before) if (!after.some(([n]) => n === net)) this.setEndpoint(net, id, null);
    for (const [net, e] of after) this.setEndpoint(net, id, e);
    // Per-node reference counts decide which networks a node needs.
    for (const [net] of before) this.ref(old!.nodeId, net, -1);
    for (const [net] of after) this.ref(t!.nodeId, net, +1);
  }

  private putNode(old: Node | undefined, n: Node | undefined): void {
    const before = old ? nodeEndpointsOf(old) : [];
    const after = n ? nodeEndpointsOf(n) : [];
    const id = `node:${(n ?? old)!.meta.id}`;
    for (const [net] of before) if (!after.some(([x]) => x === net)) this.setEndpoint(net, id, null);
    for (const [net, e] of after) this.setEndpoint(net, id, e);
  }

  private ref(nodeId: string, net: string, by: number): void {
    let m = this.refs.get(nodeId);
    if (!m) this.refs.set(nodeId, (m = new Map()));
    const n = (m.get(net) ?? 0) + by;
    if (n <= 0) m.delete(net);
    else m.set(net, n);
  }

  private setEndpoint(net: string, taskId: string, e: NetworkEndpoint | null): void {
    const s = this.nets.get(net);
    if (!s) return;
    const cur = s.endpoints.get(taskId);
    if (e === null) {
      if (!cur) return;
      s.endpoints.delete(taskId);
    } else {
      if (cur && sameJson(cur, e)) return;
      s.endpoints.set(taskId, e);
    }
    this.delta(net).endpoints.set(taskId, e);
  }

  private putService(old: Service | undefined, s: Service | undefined): void {
    const id = (s ?? old)!.meta.id;
    const before = old ? servicesOf(old) : [];
    const after = s ? servicesOf(s) : [];
    for (const [net] of before) if (!after.some(([n]) => n === net)) this.setService(net, id, null);
    for (const [net, r] of after) this.setService(net, id, r);
    if (s && publishesIngress(s)) this.meshServices.add(id);
    else this.meshServices.delete(id);
  }

  private setService(net: string, id: string, r: NetworkService | null): void {
    const st = this.nets.get(net);
    if (!st) return;
    const cur = st.services.get(id);
    if (r === null) {
      if (!cur) return;
      st.services.delete(id);
    } else {
      if (cur && sameJson(cur, r)) return;
      st.services.set(id, r);
    }
    this.delta(net).services.set(id, r);
  }

  private onEvent(e: StoreEvent): void {
    if (e.kind === 'commit') {
      this.flush();
      return;
    }
    const old = e.kind === 'update' ? e.old : e.kind === 'delete' ? e.object : undefined;
    const cur = e.kind === 'delete' ? undefined : e.object;
    switch (e.table) {
      case 'tasks':
        this.putTask(old as Task | undefined, cur as Task | undefined);
        break;
      case 'services':
        this.putService(old as Service | undefined, cur as Service | undefined);
        break;
      case 'networks': {
        const n = (cur ?? old) as Network;
        const id = n.meta.id;
        if (!cur) this.nets.delete(id);
        else {
          const st = this.nets.get(id);
          if (st) st.network = cur as Network;
          else {
            // A network the store learns of after its tasks or services: pick them up.
            this.nets.set(id, { network: cur as Network, endpoints: new Map(), services: new Map() });
            this.store.view((tx) => {
              for (const s of tx.services.list()) for (const [net, r] of servicesOf(s)) if (net === id) this.setService(net, s.meta.id, r);
              for (const t of tx.tasks.list())
                for (const [net, ep] of endpointsOf(t, this.vtepOf)) if (net === id) this.setEndpoint(net, t.meta.id, ep);
              for (const nd of tx.nodes.list())
                for (const [net, ep] of nodeEndpointsOf(nd)) if (net === id) this.setEndpoint(net, ep.taskId, ep);
            });
          }
        }
        this.delta(id).network = true;
        break;
      }
      case 'nodes': {
        const n = (cur ?? old) as Node;
        const id = n.meta.id;
        this.putNode(old as Node | undefined, cur as Node | undefined);
        const vtep = cur ? hostOf((cur as Node).status?.addr ?? '') : '';
        if ((this.vteps.get(id) ?? '') === vtep) break;
        if (cur) this.vteps.set(id, vtep);
        else this.vteps.delete(id);
        // Endpoints on that node moved (a node that came back with another address).
        for (const [net, st] of this.nets)
          for (const [tid, ep] of st.endpoints) if (ep.nodeId === id) this.setEndpoint(net, tid, { ...ep, vtep });
        break;
      }
      default:
    }
  }

  private flush(): void {
    const deltas = this.deltas;
    this.deltas = new Map();
    for (const [nodeId, send] of this.nodes) {
      const had = this.sent.get(nodeId) ?? new Set<string>();
      const want = this.wanted(nodeId);
      const networks: NetworkState[] = [];
      for (const id of want) {
        if (!had.has(id)) {
          const f = this.full(id);
          if (f) networks.push(f);
          continue;
        }
        const d = deltas.get(id);
        if (!d) continue;
        const st = this.nets.get(id)!;
        const endpoints: NetworkEndpoint[] = [];
        const removedEndpoints: string[] = [];
        for (const [tid, ep] of d.endpoints) ep ? endpoints.push(ep) : removedEndpoints.push(tid);
        const services: NetworkService[] = [];
        const removedServices: string[] = [];
        for (const [sid, r] of d.services) r ? services.push(r) : removedServices.push(sid);
        networks.push({ network: st.network, full: false, endpoints, removedEndpoints, services, removedServices });
      }
      const removedNetworks = [...had].filter((id) => !want.has(id));
      this.sent.set(nodeId, want);
      if (networks.length || removedNetworks.length) send({ reset: false, networks, removedNetworks });
    }
  }

  /** The state a node would be sent in full now (tests, `network inspect --dataplane`). */
  snapshot(nodeId: string): NetworkState[] {
    if (!this.sub) this.rebuild();
    return [...this.wanted(nodeId)].map((id) => this.full(id)).filter((x): x is NetworkState => x !== null);
  }

  close(): void {
    this.unsubscribe();
    this.nodes.clear();
    this.sent.clear();
  }
}
