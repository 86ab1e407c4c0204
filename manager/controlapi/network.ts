// The network verbs of the Control API (create, get, list, remove) and the
// network checks of service specs: `--network` names resolved to ids, ingress
// ports not already published by another service. The allocator fills in a
// network's VNI/subnet/gateway and a service's VIPs and ports afterwards.
import { TsswarmError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from '../../lib/log.js';
import type {
  CreateNetworkRequest,
  GetNetworkRequest,
  ListNetworksRequest,
  ListNetworksResponse,
  NetworkResponse,
  RemoveNetworkRequest,
  RemoveNetworkResponse,
} from '../../proto/gen/control.js';
import { Meta, Network, type NetworkSpec, PublishMode, type Service, type ServiceSpec, type Task } from '../../proto/gen/objects.js';
import { ingressNetwork, overlaps, parseCidr, publishesIngress, taskDead } from '../allocator/index.js';
import type { MemoryStore, ReadTx } from '../store/index.js';
import { protocolName } from '../../lib/ports.js';
import { findNetwork } from './refs.js';
import { validateNetworkSpec } from '../../spec/network.js';
import { isNoNetwork } from '../../spec/predefined-networks.js';

export { findNetwork };

const MAX_LISTED = 5;

function bad(field: string, message: string): TsswarmError {
  return new TsswarmError('INVALID_ARGUMENT', `${field} ${message}`);
}

/** The services attached to a network (their spec names it; for ingress, they publish through the mesh), and the tasks holding an address on it. */
export function networkUsers(tx: ReadTx, n: Network): { services: Service[]; tasks: Task[] } {
  const id = n.meta.id;
  const name = (n.spec?.name ?? '').toLowerCase();
  const names = (s: ServiceSpec | null | undefined): boolean =>
    (s?.task?.networks ?? []).some((a) => a.target === id || a.target.toLowerCase() === name);
  const services = tx.services.filter((s) => names(s.spec) || (n.spec?.ingress === true && publishesIngress(s)));
  const tasks = tx.tasks.filter((t) => !taskDead(t) && t.networks.some((a) => a.networkId === id));
  return { services, tasks };
}

/**
 * The network checks of a (validated) service spec against the store:
 * `spec.task.networks[i].target` must name an existing network (it is
 * replaced by the network's id), not the ingress network, and no network
 * twice; a port published in ingress mode must not be published by another
 * service. Mutates `spec`; returns warnings.
 */
export function resolveServiceNetworking(tx: ReadTx, spec: ServiceSpec, selfId: string): string[] {
  const warnings: string[] = [];
  const seen = new Map<string, number>();
  (spec.task?.networks ?? []).forEach((a, i) => {
    const f = `spec.task.networks[${i}].target`;
    // `none` names no network object: it is kept as given (validated alone, loopback only).
    if (isNoNetwork(a.target)) return;
    let n: Network;
    try {
      n = findNetwork(tx, a.target);
    } catch (e) {
      throw bad(f, `(--network ${a.target}): ${(e as Error).message}`);
    }
    if (n.spec?.ingress)
      throw bad(
        f,
        `(--network ${a.target}): the ingress network carries the routing mesh only: publish a port (--publish) instead of attaching to it`,
      );
    const prev = seen.get(n.meta.id);
    if (prev !== undefined)
      throw bad(f, `(--network ${a.target}): network ${n.spec?.name} is already attached as networks[${prev}]: give each network once`);
    seen.set(n.meta.id, i);
    a.target = n.meta.id;
  });
  const ports = spec.endpoint?.ports ?? [];
  ports.forEach((p, i) => {
    if (p.publishMode !== PublishMode.INGRESS || !p.publishedPort) return;
    const holder = tx.services
      .filter((s) => s.meta.id !== selfId)
      .find((s) =>
        [...(s.spec?.endpoint?.ports ?? []), ...(s.endpoint?.ports ?? [])].some(
          (q) => q.publishMode === PublishMode.INGRESS && q.protocol === p.protocol && q.publishedPort === p.publishedPort,
        ),
      );
    if (holder) {
      throw new TsswarmError(
        'INVALID_ARGUMENT',
        `spec.endpoint.ports[${i}].publishedPort (--publish ${p.publishedPort}:${p.targetPort}/${protocolName(p.protocol)}): port ${p.publishedPort}/${protocolName(p.protocol)} is already published by service ${holder.spec?.name}: choose another port, or leave published out to get a free one from 30000-32767`,
      );
    }
  });
  if (ports.some((p) => p.publishMode === PublishMode.INGRESS) && !ingressNetwork(tx)) {
    warnings.push(
      'the cluster has no ingress network, so ports published in ingress mode cannot be allocated: create one (`tsswarm network create -d overlay --ingress ingress`) or publish in host mode (mode=host)',
    );
  }
  return warnings;
}

export interface NetworkApiOptions {
  store: MemoryStore;
  logger: Logger;
  /** A linearizable read, `stale` when only local state could serve it; default: the local store's view. */
  read?: <R>(fn: (tx: ReadTx) => R) => Promise<{ value: R; stale: boolean }>;
  now?: () => number;
}

export class NetworkApi {
  private readonly store: MemoryStore;
  private readonly log: Logger;
  private readonly read: <R>(fn: (tx: ReadTx) => R) => Promise<{ value: R; stale: boolean }>;
  private readonly now: () => number;

  constructor(o: NetworkApiOptions) {
    this.store = o.store;
    this.log = o.logger.child({ component: 'controlapi' });
    this.read = o.read ?? (async (fn) => ({ value: o.store.view(fn), stale: false }));
    this.now = o.now ?? Date.now;
  }

  async createNetwork(req: CreateNetworkRequest): Promise<NetworkResponse> {
    const spec = validateNetworkSpec(req.spec);
    this.store.view((tx) => this.checkAgainstOthers(tx, spec));
    const now = this.now();
    const id = newId();
    await this.store.update((tx) => {
      // Checked again inside the transaction's view, as close to the write as it gets.
      this.checkAgainstOthers(tx, spec);
      tx.networks.create(Network.create({ meta: Meta.create({ id, createdAt: now, updatedAt: now }), spec }));
    });
    this.log.info({ network: id, name: spec.name, subnet: spec.subnet || undefined }, 'network created');
    return this.store.view((tx) => this.response(tx, tx.networks.get(id)!));
  }

  /** What needs the other networks: a free subnet and VNI, one ingress network. */
  private checkAgainstOthers(tx: ReadTx, spec: NetworkSpec): void {
    const others = tx.networks.list();
    if (spec.ingress) {
      const ing = others.find((n) => n.spec?.ingress);
      if (ing)
        throw new TsswarmError(
          'ALREADY_EXISTS',
          `spec.ingress (--ingress): the cluster already has an ingress network (${ing.spec?.name}, ${ing.meta.id}): there is one per cluster; remove it first to replace it`,
        );
    }
    if (spec.subnet) {
      const mine = parseCidr('spec.subnet', spec.subnet);
      for (const n of others) {
        const theirs = n.status?.subnet || n.spec?.subnet;
        if (theirs && overlaps(mine, parseCidr('subnet', theirs))) {
          throw new TsswarmError(
            'INVALID_ARGUMENT',
            `spec.subnet (--subnet ${spec.subnet}): overlaps ${theirs} of network ${n.spec?.name}: choose a subnet that overlaps no other network's`,
          );
        }
      }
    }
    if (spec.vni) {
      const n = others.find((o) => o.status?.vni === spec.vni || o.spec?.vni === spec.vni);
      if (n)
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `spec.vni ${spec.vni} is already used by network ${n.spec?.name}: leave it out to get a free one`,
        );
    }
  }

  private response(tx: ReadTx, n: Network): NetworkResponse {
    const u = networkUsers(tx, n);
    return { network: n, services: u.services.map((s) => s.spec?.name ?? s.meta.id).sort(), tasks: u.tasks.length, stale: false };
  }

  async getNetwork(req: GetNetworkRequest): Promise<NetworkResponse> {
    const r = await this.read((tx) => this.response(tx, findNetwork(tx, req.ref)));
    return { ...r.value, stale: r.stale };
  }

  async listNetworks(_req: ListNetworksRequest = {}): Promise<ListNetworksResponse> {
    const { value: networks, stale } = await this.read((tx) => tx.networks.list());
    return { networks: networks.sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? '')), stale };
  }

  /** Refused, naming them, while services use the network; also while tasks still hold addresses on it. */
  async removeNetwork(req: RemoveNetworkRequest): Promise<RemoveNetworkResponse> {
    const n = this.store.view((tx) => findNetwork(tx, req.ref));
    const name = n.spec?.name ?? n.meta.id;
    await this.store.update((tx) => {
      const { services, tasks } = networkUsers(tx, n);
      if (services.length) {
        const names = services.map((s) => s.spec?.name ?? s.meta.id).sort();
        const shown = names.slice(0, MAX_LISTED).join(', ') + (names.length > MAX_LISTED ? `, and ${names.length - MAX_LISTED} more` : '');
        const fix = n.spec?.ingress
          ? 'remove them or stop publishing their ports in ingress mode first'
          : `remove them, or detach them (\`tsswarm service update --network-rm ${name} SERVICE\`), first`;
        throw new TsswarmError(
          'FAILED_PRECONDITION',
          `network ${name} is in use by service${services.length > 1 ? 's' : ''} ${shown}: ${fix}`,
        );
      }
      if (tasks.length)
        throw new TsswarmError(
          'FAILED_PRECONDITION',
          `network ${name} still has ${tasks.length} task${tasks.length > 1 ? 's' : ''} attached (shutting down): retry in a moment`,
        );
      tx.networks.delete(n);
    });
    this.log.info({ network: n.meta.id, name }, 'network removed');
    return {};
  }
}
