// The network verbs of the Control API (create, get, list, remove) and the
// network checks of service specs: `--network` names resolved to ids, ingress
// ports not already published by another service. The allocator fills in a
// network's VNI/subnet/gateway and a service's VIPs and ports afterwards.
import type protobuf from 'protobufjs';
import { TsswarmError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from '../../lib/log.js';
import type { CreateNetworkRequest, GetNetworkRequest, ListNetworksRequest, ListNetworksResponse, NetworkResponse, RemoveNetworkRequest, RemoveNetworkResponse } from '../../proto/gen/control.js';
import { Meta, Network, NetworkSpec, PublishMode, type Service, type ServiceSpec, type Task } from '../../proto/gen/objects.js';
import { type Cidr, contains, formatIp, ingressNetwork, INGRESS_NAME, overlaps, parseCidr, parseIp, publishesIngress, sizeOf, taskDead, VNI_MAX } from '../allocator/index.js';
import type { MemoryStore, ReadTx } from '../store/index.js';
import { protocolName } from '../../lib/ports.js';
import { findNetwork } from './refs.js';
import { checkNetworkSpecBounds } from './validate.js';

export { findNetwork };

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const MAX_LISTED = 5;

/** The drivers `network create -d` accepts. */
export const NETWORK_DRIVERS = ['overlay'] as const;

/** Why `--opt encrypted` is refused on this kernel. */
export const ENCRYPTION_UNAVAILABLE =
  'encrypted overlays are not available yet: this kernel has neither IPsec ESP nor WireGuard (CONFIG_INET_ESP and CONFIG_WIREGUARD are not set), and encryption comes in a later release; create the network without --opt encrypted';

function bad(field: string, message: string): TsswarmError {
  return new TsswarmError('INVALID_ARGUMENT', `${field} ${message}`);
}

const isSet = <T>(v: T | null | undefined): v is T => v !== null && v !== undefined;

/** A deep, plain copy with every field at its proto3 default. */
export function plainNetworkSpec(spec: NetworkSpec): NetworkSpec {
  return NetworkSpec.type.toObject(spec as unknown as protobuf.Message, { defaults: true, arrays: true, objects: true }) as NetworkSpec;
}

/**
 * Checks a network spec on its own (no store): name, driver (default
 * overlay), options, subnet (IPv4, /8 to /29, host bits zero), gateway
 * (a host address of the subnet, only with a subnet), VNI, ingress. Throws
 * INVALID_ARGUMENT naming the field and the fix; returns a normalized copy.
 */
export function validateNetworkSpec(input: NetworkSpec | null | undefined): NetworkSpec {
  if (!isSet(input)) throw bad('spec', 'is required: send the network spec');
  const spec = plainNetworkSpec(input);
  checkNetworkSpecBounds(spec);
  if (!spec.name) throw bad('spec.name', 'is required: give the network a name (tsswarm network create NAME)');
  if (spec.name.length > 63) throw bad('spec.name', `"${spec.name}" is longer than 63 characters: choose a shorter name`);
  if (!NAME_RE.test(spec.name)) throw bad('spec.name', `"${spec.name}" is not valid: a name starts with a letter or digit and holds only letters, digits, "_", "." and "-"`);
  if (spec.name.toLowerCase() === INGRESS_NAME && !spec.ingress) throw bad('spec.name', `"${spec.name}" is kept for the routing mesh's network: add --ingress to create that one, or choose another name`);
  for (const k of Object.keys(spec.labels)) if (!k) throw bad('spec.labels', 'has an empty key: write KEY=VALUE');

  if (!spec.driver) spec.driver = 'overlay';
  if (!(NETWORK_DRIVERS as readonly string[]).includes(spec.driver)) throw bad('spec.driver', `"${spec.driver}" is not supported: cluster networks are overlays (-d overlay)`);

  for (const k of Object.keys(spec.driverOpts)) {
    if (k === 'encrypted') throw bad('spec.driverOpts.encrypted', `(--opt encrypted): ${ENCRYPTION_UNAVAILABLE}`);
    throw bad(`spec.driverOpts.${k}`, `(--opt ${k}): unknown option: overlay networks take no driver options yet`);
  }

  let subnet: Cidr | null = null;
  if (spec.subnet) {
    subnet = parseCidr('spec.subnet (--subnet)', spec.subnet, { minBits: 8, maxBits: 29 });
  }
  if (spec.gateway) {
    if (!subnet) throw bad('spec.gateway (--gateway)', `needs a subnet: give --subnet too (the gateway ${spec.gateway} must lie inside it)`);
    const gw = parseIp('spec.gateway (--gateway)', spec.gateway);
    const last = subnet.base + sizeOf(subnet.bits) - 1;
    if (!contains(subnet, gw)) throw bad('spec.gateway (--gateway)', `${spec.gateway} is not inside the subnet ${spec.subnet}: give an address of the subnet, e.g. ${formatIp(subnet.base + 1)}`);
    if (gw === subnet.base || gw === last) throw bad('spec.gateway (--gateway)', `${spec.gateway} is the ${gw === subnet.base ? 'network' : 'broadcast'} address of ${spec.subnet}: give a host address, e.g. ${formatIp(subnet.base + 1)}`);
    spec.gateway = formatIp(gw);
  }
  if (spec.vni && !(Number.isInteger(spec.vni) && spec.vni >= 1 && spec.vni <= VNI_MAX)) throw bad('spec.vni', `must be from 1 to ${VNI_MAX} (got ${spec.vni})`);
  if (spec.ingress && spec.attachable) throw bad('spec.attachable (--attachable)', 'cannot be set on the ingress network: it carries the routing mesh only');
  return spec;
}

/** The services attached to a network (their spec names it; for ingress, they publish through the mesh), and the tasks holding an address on it. */
export function networkUsers(tx: ReadTx, n: Network): { services: Service[]; tasks: Task[] } {
  const id = n.meta!.id;
  const name = (n.spec?.name ?? '').toLowerCase();
  const names = (s: ServiceSpec | null | undefined): boolean => (s?.task?.networks ?? []).some((a) => a.target === id || a.target.toLowerCase() === name);
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
    let n: Network;
    try {
      n = findNetwork(tx, a.target);
    } catch (e) {
      throw bad(f, `(--network ${a.target}): ${(e as Error).message}`);
    }
    if (n.spec?.ingress) throw bad(f, `(--network ${a.target}): the ingress network carries the routing mesh only: publish a port (--publish) instead of attaching to it`);
    const prev = seen.get(n.meta!.id);
    if (prev !== undefined) throw bad(f, `(--network ${a.target}): network ${n.spec?.name} is already attached as networks[${prev}]: give each network once`);
    seen.set(n.meta!.id, i);
    a.target = n.meta!.id;
  });
  const ports = spec.endpoint?.ports ?? [];
  ports.forEach((p, i) => {
    if (p.publishMode !== PublishMode.INGRESS || !p.publishedPort) return;
    const holder = tx.services.filter((s) => s.meta!.id !== selfId).find((s) =>
      [...(s.spec?.endpoint?.ports ?? []), ...(s.endpoint?.ports ?? [])].some((q) => q.publishMode === PublishMode.INGRESS && q.protocol === p.protocol && q.publishedPort === p.publishedPort),
    );
    if (holder) {
      throw new TsswarmError(
        'INVALID_ARGUMENT',
        `spec.endpoint.ports[${i}].publishedPort (--publish ${p.publishedPort}:${p.targetPort}/${protocolName(p.protocol)}): port ${p.publishedPort}/${protocolName(p.protocol)} is already published by service ${holder.spec?.name}: choose another port, or leave published out to get a free one from 30000-32767`,
      );
    }
  });
  if (ports.some((p) => p.publishMode === PublishMode.INGRESS) && !ingressNetwork(tx)) {
    warnings.push('the cluster has no ingress network, so ports published in ingress mode cannot be allocated: create one (`tsswarm network create -d overlay --ingress ingress`) or publish in host mode (mode=host)');
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
      if (ing) throw new TsswarmError('ALREADY_EXISTS', `spec.ingress (--ingress): the cluster already has an ingress network (${ing.spec?.name}, ${ing.meta!.id}): there is one per cluster; remove it first to replace it`);
    }
    if (spec.subnet) {
      const mine = parseCidr('spec.subnet', spec.subnet);
      for (const n of others) {
        const theirs = n.status?.subnet || n.spec?.subnet;
        if (theirs && overlaps(mine, parseCidr('subnet', theirs))) {
          throw new TsswarmError('INVALID_ARGUMENT', `spec.subnet (--subnet ${spec.subnet}): overlaps ${theirs} of network ${n.spec?.name}: choose a subnet that overlaps no other network's`);
        }
      }
    }
    if (spec.vni) {
      const n = others.find((o) => o.status?.vni === spec.vni || o.spec?.vni === spec.vni);
      if (n) throw new TsswarmError('INVALID_ARGUMENT', `spec.vni ${spec.vni} is already used by network ${n.spec?.name}: leave it out to get a free one`);
    }
  }

  private response(tx: ReadTx, n: Network): NetworkResponse {
    const u = networkUsers(tx, n);
    return { network: n, services: u.services.map((s) => s.spec?.name ?? s.meta!.id).sort(), tasks: u.tasks.length, stale: false };
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
    const name = n.spec?.name ?? n.meta!.id;
    await this.store.update((tx) => {
      const { services, tasks } = networkUsers(tx, n);
      if (services.length) {
        const names = services.map((s) => s.spec?.name ?? s.meta!.id).sort();
        const shown = names.slice(0, MAX_LISTED).join(', ') + (names.length > MAX_LISTED ? `, and ${names.length - MAX_LISTED} more` : '');
        const fix = n.spec?.ingress ? 'remove them or stop publishing their ports in ingress mode first' : `remove them, or detach them (\`tsswarm service update --network-rm ${name} SERVICE\`), first`;
        throw new TsswarmError('FAILED_PRECONDITION', `network ${name} is in use by service${services.length > 1 ? 's' : ''} ${shown}: ${fix}`);
      }
      if (tasks.length) throw new TsswarmError('FAILED_PRECONDITION', `network ${name} still has ${tasks.length} task${tasks.length > 1 ? 's' : ''} attached (shutting down): retry in a moment`);
      tx.networks.delete(n);
    });
    this.log.info({ network: n.meta!.id, name }, 'network removed');
    return {};
  }
}
