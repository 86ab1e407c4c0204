// Docker's JSON for networks, secrets and configs, both ways: what GET
// /networks, /secrets and /configs answer, and the create bodies read into
// our specs. A field set to something tsswarm cannot honour is refused naming
// its Docker path, never dropped. Pure.
import { UsageError } from '../../lib/errors.js';
import { ConfigSpec, type Config, type Network, NetworkSpec, type Secret, SecretSpec } from '../../proto/gen/objects.js';
import { anyOf, anyPrefix, checkFilterKeys, type DockerFilters, filterValues, matchLabels } from './filters.js';
import { type JsonObject, timeToDocker } from './values.js';

const isObj = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

function body(v: unknown, what: string): JsonObject {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw new UsageError(`the body of ${what} must be a JSON object`, { field: what });
  return v;
}

function str(o: JsonObject, k: string, path: string): string {
  const v = o[k];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new UsageError(`${path} must be a string`, { field: path });
  return v;
}

function bool(o: JsonObject, k: string, path: string): boolean {
  const v = o[k];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new UsageError(`${path} must be true or false`, { field: path });
  return v;
}

function strMap(o: JsonObject, k: string, path: string): Record<string, string> {
  const v = o[k];
  if (v === undefined || v === null) return {};
  if (!isObj(v) || !Object.values(v).every((x) => typeof x === 'string'))
    throw new UsageError(`${path} must be an object of strings`, { field: path });
  return { ...(v as Record<string, string>) };
}

const notSupported = (path: string, why: string): UsageError =>
  new UsageError(`${path} is not supported by tsswarm yet: ${why}`, { field: path });

// ------------------------------------------------------------------ networks

/**
 * A swarm network as GET /networks answers it (Go's NetworkResource: `Id`, not `ID`),
 * in the shape of moby's BasicNetworkFromGRPC at API 1.41: no EnableIPv4 (an API 1.47
 * field), Containers null (this node's endpoints are not listed) and Labels null when
 * the network has none (SwarmKit stores an empty map as none).
 */
export function networkToDocker(n: Network, extra: { containers?: Record<string, unknown> } = {}): JsonObject {
  const subnet = n.status?.subnet || n.spec.subnet;
  const gateway = n.status?.gateway || n.spec.gateway;
  return {
    Name: n.spec.name,
    Id: n.meta.id,
    Created: timeToDocker(n.meta.createdAt),
    Scope: 'swarm',
    Driver: n.spec.driver || 'overlay',
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: subnet ? [{ Subnet: subnet, ...(gateway ? { Gateway: gateway } : {}) }] : [] },
    Internal: n.spec.internal,
    Attachable: n.spec.attachable,
    Ingress: n.spec.ingress,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: extra.containers ?? null,
    Options: {
      ...n.spec.driverOpts,
      ...(n.status?.vni ? { 'com.docker.network.driver.overlay.vxlanid_list': String(n.status.vni) } : {}),
    },
    Labels: Object.keys(n.spec.labels ?? {}).length ? { ...n.spec.labels } : null,
  };
}

/** POST /networks/create as our NetworkSpec: overlay (or bridge) networks of one IPv4 subnet; the rest refused by name. */
export function networkSpecFromDocker(json: unknown): NetworkSpec {
  const b = body(json, 'NetworkCreateRequest');
  const name = str(b, 'Name', 'Name');
  if (!name) throw new UsageError('Name is required: the network needs a name', { field: 'Name' });
  const driver = str(b, 'Driver', 'Driver') || 'overlay';
  if (driver !== 'overlay' && driver !== 'bridge')
    throw notSupported('Driver', `"${driver}": tsswarm networks are overlay (VXLAN) or bridge`);
  const scope = str(b, 'Scope', 'Scope');
  if (scope !== '' && scope !== 'swarm') throw notSupported('Scope', `"${scope}": a manager creates swarm-scoped networks only`);
  if (bool(b, 'EnableIPv6', 'EnableIPv6')) throw notSupported('EnableIPv6', 'overlays carry IPv4 only');
  if (b.EnableIPv4 === false) throw notSupported('EnableIPv4', 'overlays carry IPv4');
  if (bool(b, 'ConfigOnly', 'ConfigOnly')) throw notSupported('ConfigOnly', 'config-only networks do not exist in tsswarm');
  if (isObj(b.ConfigFrom) && str(b.ConfigFrom, 'Network', 'ConfigFrom.Network'))
    throw notSupported('ConfigFrom', 'config-only networks do not exist in tsswarm');
  let subnet = '';
  let gateway = '';
  if (b.IPAM !== undefined && b.IPAM !== null) {
    if (!isObj(b.IPAM)) throw new UsageError('IPAM must be a JSON object', { field: 'IPAM' });
    const ipamDriver = str(b.IPAM, 'Driver', 'IPAM.Driver');
    if (ipamDriver && ipamDriver !== 'default') throw notSupported('IPAM.Driver', `"${ipamDriver}": only the default allocator`);
    if (Object.keys(strMap(b.IPAM, 'Options', 'IPAM.Options')).length) throw notSupported('IPAM.Options', 'the allocator takes none');
    const cfgs = b.IPAM.Config;
    if (cfgs !== undefined && cfgs !== null) {
      if (!Array.isArray(cfgs)) throw new UsageError('IPAM.Config must be a list', { field: 'IPAM.Config' });
      if (cfgs.length > 1) throw notSupported('IPAM.Config', 'one subnet per network');
      const c = cfgs[0];
      if (c !== undefined) {
        if (!isObj(c)) throw new UsageError('IPAM.Config[0] must be a JSON object', { field: 'IPAM.Config[0]' });
        subnet = str(c, 'Subnet', 'IPAM.Config[0].Subnet');
        gateway = str(c, 'Gateway', 'IPAM.Config[0].Gateway');
        if (str(c, 'IPRange', 'IPAM.Config[0].IPRange'))
          throw notSupported('IPAM.Config[0].IPRange', 'addresses come from the whole subnet');
        if (Object.keys(strMap(c, 'AuxiliaryAddresses', 'IPAM.Config[0].AuxiliaryAddresses')).length)
          throw notSupported('IPAM.Config[0].AuxiliaryAddresses', 'no addresses are reserved besides the gateway');
      }
    }
  }
  return NetworkSpec.create({
    name,
    driver,
    labels: strMap(b, 'Labels', 'Labels'),
    driverOpts: strMap(b, 'Options', 'Options'),
    attachable: bool(b, 'Attachable', 'Attachable'),
    internal: bool(b, 'Internal', 'Internal'),
    ingress: bool(b, 'Ingress', 'Ingress'),
    subnet,
    gateway,
  });
}

export const NETWORK_FILTER_KEYS = ['id', 'name', 'driver', 'label', 'scope', 'type', 'dangling'] as const;

/** GET /networks filters as dockerd applies them to swarm networks: id and name by prefix (name also exact), driver, label, scope swarm, type custom (ingress is builtin). */
export function networkFilter(f: DockerFilters, inUse: (n: Network) => boolean = () => true): (n: Network) => boolean {
  checkFilterKeys(f, NETWORK_FILTER_KEYS);
  const v = (k: string): string[] => filterValues(f, k);
  for (const t of v('type')) if (t !== 'custom' && t !== 'builtin') throw new UsageError(`invalid filter: 'type'='${t}'`);
  const dangling = v('dangling').map((d) => {
    if (!['true', '1', 'false', '0'].includes(d)) throw new UsageError(`invalid filter 'dangling=${d}'`);
    return d === 'true' || d === '1';
  });
  return (n) =>
    anyPrefix(n.meta.id, v('id')) &&
    (v('name').length === 0 || v('name').some((x) => n.spec.name.includes(x))) &&
    anyOf(n.spec.driver || 'overlay', v('driver')) &&
    matchLabels(n.spec.labels ?? {}, v('label')) &&
    anyOf('swarm', v('scope')) &&
    anyOf(n.spec.ingress ? 'builtin' : 'custom', v('type')) &&
    (dangling.length === 0 || dangling.includes(!inUse(n)));
}

// ------------------------------------------------------------------ secrets and configs

type FileObject = Secret | Config;

/** A secret (never its data) or a config (its data, base64) as GET /secrets and /configs answer them. */
export function fileObjectToDocker(x: FileObject, withData: boolean): JsonObject {
  return {
    ID: x.meta.id,
    Version: { Index: x.meta.version },
    CreatedAt: timeToDocker(x.meta.createdAt),
    UpdatedAt: timeToDocker(x.meta.updatedAt),
    Spec: {
      Name: x.spec.name,
      Labels: { ...x.spec.labels },
      ...(withData ? { Data: Buffer.from(x.spec.data).toString('base64') } : {}),
    },
  };
}

/** POST /secrets/create and /configs/create: Name, Labels, Data (base64); a driver or templating refused. */
export function fileObjectSpecFromDocker(
  kind: 'secret' | 'config',
  json: unknown,
): { name: string; labels: Record<string, string>; data: Uint8Array } {
  const b = body(json, kind === 'secret' ? 'SecretSpec' : 'ConfigSpec');
  if (isObj(b.Driver) && str(b.Driver, 'Name', 'Driver.Name'))
    throw notSupported('Driver', `${kind} drivers (plugins) do not exist in tsswarm: give the value in Data`);
  if (isObj(b.Templating) && str(b.Templating, 'Name', 'Templating.Name'))
    throw notSupported('Templating', `templated ${kind}s are not expanded by tsswarm`);
  const raw = str(b, 'Data', 'Data');
  if (raw && !/^[A-Za-z0-9+/]*={0,2}$/.test(raw.replace(/\s+/g, ''))) throw new UsageError('Data must be base64', { field: 'Data' });
  return { name: str(b, 'Name', 'Name'), labels: strMap(b, 'Labels', 'Labels'), data: new Uint8Array(Buffer.from(raw, 'base64')) };
}

export const secretSpecFromDocker = (json: unknown): SecretSpec => SecretSpec.create(fileObjectSpecFromDocker('secret', json));
export const configSpecFromDocker = (json: unknown): ConfigSpec => ConfigSpec.create(fileObjectSpecFromDocker('config', json));

export const FILE_OBJECT_FILTER_KEYS = ['id', 'name', 'names', 'label'] as const;

/** GET /secrets and /configs filters: id and name by prefix, names exact, label. */
export function fileObjectFilter(f: DockerFilters): (x: FileObject) => boolean {
  checkFilterKeys(f, FILE_OBJECT_FILTER_KEYS);
  const v = (k: string): string[] => filterValues(f, k);
  return (x) =>
    anyPrefix(x.meta.id, v('id')) &&
    anyPrefix(x.spec.name, v('name')) &&
    anyOf(x.spec.name, v('names')) &&
    matchLabels(x.spec.labels ?? {}, v('label'));
}
