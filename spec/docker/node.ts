// A node as the Docker Engine API shows it (`GET /nodes`, `GET /nodes/{id}`),
// the `filters` of `GET /nodes`, and a Docker NodeSpec (`POST
// /nodes/{id}/update`) turned into our UpdateNodeRequest. Names and shapes as
// moby's api/types/swarm/node.go; pure.
import { UsageError } from '../../lib/errors.js';
import type { UpdateNodeRequest } from '../../proto/gen/control.js';
import { type Node, NodeAvailability, NodeRole, NodeState } from '../../proto/gen/objects.js';
import { bodyObject, dockerVersion, type JsonObject, labelsAt, rfc3339, stringAt } from './common.js';
import { anyOf, anyPrefix, checkFilterKeys, type DockerFilters, filterValues, matchLabels, parseDockerFilters } from './filters.js';

/** The root CA as Docker shows it in a node's Description and the cluster: PEM, and base64 DER of its subject and public key. */
export interface DockerTLSInfo {
  TrustRoot: string;
  CertIssuerSubject: string;
  CertIssuerPublicKey: string;
}

export const ROLE_NAMES: Record<number, 'worker' | 'manager'> = { [NodeRole.WORKER]: 'worker', [NodeRole.MANAGER]: 'manager' };
export const AVAILABILITY_NAMES: Record<number, 'active' | 'pause' | 'drain'> = {
  [NodeAvailability.ACTIVE]: 'active',
  [NodeAvailability.PAUSE]: 'pause',
  [NodeAvailability.DRAIN]: 'drain',
};
const STATE_NAMES: Record<number, string> = {
  [NodeState.UNKNOWN]: 'unknown',
  [NodeState.DOWN]: 'down',
  [NodeState.READY]: 'ready',
  [NodeState.DISCONNECTED]: 'disconnected',
};

/** `10.0.0.1:4242` → `10.0.0.1` (Docker's Status.Addr is the address alone). */
export const hostOf = (addr: string): string => addr.replace(/:\d+$/, '');

/** `engineVersion`: shown for a node that reported none (every tsswarm node runs the same build as its managers, as `tsswarm node ls` assumes). */
export function toDockerNode(n: Node, tls: DockerTLSInfo, engineVersion = ''): JsonObject {
  const d = n.description;
  const out: JsonObject = {
    ID: n.meta.id,
    Version: dockerVersion(n.meta.version),
    CreatedAt: rfc3339(n.meta.createdAt),
    UpdatedAt: rfc3339(n.meta.updatedAt),
    Spec: {
      // dockerd leaves Spec.Name empty unless a client set one; a tsswarm node's name is its hostname, shown as Description.Hostname.
      ...(n.spec.name && n.spec.name !== d?.hostname ? { Name: n.spec.name } : {}),
      Labels: { ...(n.spec.labels ?? {}) },
      Role: ROLE_NAMES[n.spec.role] ?? 'worker',
      Availability: AVAILABILITY_NAMES[n.spec.availability] ?? 'active',
    },
    Description: {
      Hostname: d?.hostname ?? '',
      Platform: { Architecture: d?.platform?.architecture ?? '', OS: d?.platform?.os ?? '' },
      Resources: {
        NanoCPUs: Number(d?.resources?.nanoCpus ?? 0),
        MemoryBytes: Number(d?.resources?.memoryBytes ?? 0),
        ...(d?.resources?.generic?.length
          ? { GenericResources: d.resources.generic.map((g) => ({ DiscreteResourceSpec: { Kind: g.kind, Value: g.value } })) }
          : {}),
      },
      Engine: { EngineVersion: d?.engineVersion || engineVersion, Labels: { ...(d?.engineLabels ?? {}) } },
      TLSInfo: tls,
    },
    Status: {
      State: STATE_NAMES[n.status.state] ?? 'unknown',
      ...(n.status.message ? { Message: n.status.message } : {}),
      Addr: hostOf(n.status.addr ?? ''),
    },
  };
  const ms = n.managerStatus;
  if (ms) {
    out.ManagerStatus = {
      ...(ms.leader ? { Leader: true } : {}),
      Reachability: ms.reachability || 'unknown',
      Addr: ms.addr,
    };
  }
  return out;
}

/** The filter keys dockerd's `GET /nodes` accepts. */
export const NODE_FILTERS = ['id', 'name', 'label', 'role', 'membership', 'node.label'] as const;

export function parseNodeFilters(text: string | null | undefined): DockerFilters {
  return checkNodeFilters(parseDockerFilters(text));
}

/** Refuses keys and values GET /nodes does not take, with moby's messages; `f` when it is fine. */
export function checkNodeFilters(f: DockerFilters): DockerFilters {
  checkFilterKeys(f, NODE_FILTERS);
  for (const r of f.get('role') ?? [])
    if (r !== '' && r !== 'worker' && r !== 'manager') throw new UsageError(`Invalid role filter: '${r}'`);
  for (const m of f.get('membership') ?? [])
    if (m !== '' && m !== 'accepted' && m !== 'pending') throw new UsageError(`Invalid membership filter: '${m}'`);
  return f;
}

/**
 * The nodes `f` selects, as SwarmKit's ListNodes: `id` a prefix of the id,
 * `name` a prefix of the hostname, `role` the role of the node's certificate,
 * `membership` accepted (every node in the store is), `label` the engine's
 * labels (`tsswarm daemon --label`), `node.label` the labels of the node's spec.
 */
export function filterNodes(nodes: readonly Node[], f: DockerFilters): Node[] {
  const v = (k: string): string[] => filterValues(f, k);
  return nodes.filter(
    (n) =>
      anyPrefix(n.meta.id, v('id')) &&
      anyPrefix(n.description?.hostname || n.spec.name, v('name')) &&
      anyOf(ROLE_NAMES[n.role] ?? 'worker', v('role')) &&
      anyOf('accepted', v('membership')) &&
      matchLabels(n.description?.engineLabels ?? {}, v('label')) &&
      matchLabels(n.spec.labels ?? {}, v('node.label')),
  );
}

/**
 * A Docker NodeSpec (the whole spec, as `docker node update` sends it) as the
 * change it makes to `current`: role, availability, labels added and removed.
 * A new Name is refused (tsswarm names a node by its hostname), and so is a
 * role or availability Docker does not have.
 */
export function nodeUpdateFromDocker(current: Node, body: unknown, version: number): UpdateNodeRequest {
  const spec = bodyObject(body, 'NodeSpec');
  for (const k of Object.keys(spec))
    if (!['Name', 'Labels', 'Role', 'Availability'].includes(k))
      throw new UsageError(`${k} is not a field of a NodeSpec (Name, Labels, Role, Availability)`, { field: k });
  const name = stringAt(spec, 'Name', 'Name');
  if (name && name !== current.spec.name)
    throw new UsageError(`Name: renaming a node is not supported by tsswarm (it is named by its hostname, "${current.spec.name}")`, {
      field: 'Name',
    });
  const role = stringAt(spec, 'Role', 'Role');
  if (role !== 'worker' && role !== 'manager') throw new UsageError(`invalid Role: ${JSON.stringify(role)}`, { field: 'Role' });
  const availability = stringAt(spec, 'Availability', 'Availability');
  if (!['active', 'pause', 'drain'].includes(availability))
    throw new UsageError(`invalid Availability: ${JSON.stringify(availability)}`, { field: 'Availability' });
  const want = labelsAt(spec, 'Labels', 'Labels');
  const have = current.spec.labels ?? {};
  const labelAdd: Record<string, string> = {};
  for (const [k, v] of Object.entries(want)) if (have[k] !== v) labelAdd[k] = v;
  const labelRm = Object.keys(have).filter((k) => !Object.hasOwn(want, k));
  return { ref: current.meta.id, version, availability, role, labelAdd, labelRm };
}
