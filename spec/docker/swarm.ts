// The cluster as the Docker Engine API shows it (`GET /swarm`, the Swarm
// section of `GET /info`), and Docker's swarm requests (`init`, `join`,
// `update`) turned into ours. Every Spec field tsswarm has maps; any other
// is accepted only when it asks for what tsswarm does anyway (its zero value
// or the value `GET /swarm` shows) and refused otherwise with a 400 naming it.
import { UsageError } from '../../lib/errors.js';
import type { ClusterSettings, InfoResponse } from '../../proto/gen/control.js';
import {
  checkCertExpiry,
  checkDispatcherHeartbeat,
  checkSnapshotInterval,
  checkTaskHistoryLimit,
  type ClusterSettingFlag,
} from '../cluster.js';
import {
  boolAt,
  bodyObject,
  dockerVersion,
  intAt,
  isEmpty,
  isObject,
  type JsonObject,
  msToNs,
  objectAt,
  rfc3339,
  stringAt,
  unsupported,
} from './common.js';
import type { DockerTLSInfo } from './node.js';

/** The networking facts of the cluster Docker shows beside the Spec (fixed in tsswarm). */
export interface SwarmNetworking {
  DefaultAddrPool: string[];
  SubnetSize: number;
  DataPathPort: number;
}

/**
 * tsswarm's overlay networking as `GET /swarm` shows it: subnets from
 * 10.0.0.0/8 in /24s (manager/allocator/ipam.ts) over VXLAN port 4789
 * (agent/overlay/names.ts); a test keeps the three in step.
 */
export const SWARM_NETWORKING: SwarmNetworking = { DefaultAddrPool: ['10.0.0.0/8'], SubnetSize: 24, DataPathPort: 4789 };

/** The Raft tuning `GET /swarm` shows (fixed in tsswarm: only SnapshotInterval changes). */
export const RAFT_FIXED = { KeepOldSnapshots: 0, LogEntriesForSlowFollowers: 0, HeartbeatTick: 1, ElectionTick: 10 } as const;

/** Docker's swarm spec is always named "default". */
export const SWARM_NAME = 'default';

export interface ClusterFacts {
  /** info() from the leader: cluster id, version and settings. */
  info: Pick<InfoResponse, 'clusterId' | 'clusterVersion' | 'clusterSettings'> & Partial<Pick<InfoResponse, 'caRotation'>>;
  createdAt: number;
  updatedAt: number;
  tls: DockerTLSInfo;
}

/** Docker's Spec of our settings. */
export function toDockerSpec(s: ClusterSettings): JsonObject {
  return {
    Name: SWARM_NAME,
    Labels: {},
    Orchestration: { TaskHistoryRetentionLimit: Number(s.taskHistoryLimit) },
    Raft: { SnapshotInterval: Number(s.snapshotInterval), ...RAFT_FIXED },
    Dispatcher: { HeartbeatPeriod: msToNs(s.dispatcherHeartbeatMs) },
    CAConfig: { NodeCertExpiry: msToNs(Number(s.certExpiryMs)) },
    TaskDefaults: {},
    EncryptionConfig: { AutoLockManagers: s.autolock },
  };
}

/** ClusterInfo: `GET /swarm` without the join tokens, and `Swarm.Cluster` of `GET /info`. */
export function toDockerClusterInfo(c: ClusterFacts): JsonObject {
  const s = c.info.clusterSettings ?? {
    taskHistoryLimit: 5,
    dispatcherHeartbeatMs: 5000,
    certExpiryMs: 0,
    snapshotInterval: 0,
    autolock: false,
  };
  return {
    ID: c.info.clusterId,
    Version: dockerVersion(c.info.clusterVersion),
    CreatedAt: rfc3339(c.createdAt),
    UpdatedAt: rfc3339(c.updatedAt),
    Spec: toDockerSpec(s),
    TLSInfo: c.tls,
    RootRotationInProgress: c.info.caRotation?.rotationInProgress ?? false,
    ...SWARM_NETWORKING,
  };
}

export function toDockerSwarm(c: ClusterFacts, tokens: { worker: string; manager: string }): JsonObject {
  return { ...toDockerClusterInfo(c), JoinTokens: { Worker: tokens.worker, Manager: tokens.manager } };
}

/** Nanoseconds (Go's time.Duration) to whole milliseconds, refusing what is not a whole, non-negative number. */
function nsToMs(v: number, path: string): number {
  if (v < 0) throw UsageError.invalid(path, 'a duration in nanoseconds ≥ 0', v);
  return Math.round(v / 1e6);
}

/** What a Docker Spec asks to change in our settings: the new values and the names of those that change. */
export interface SettingsChange {
  settings: ClusterSettings;
  set: ClusterSettingFlag[];
}

/**
 * A Docker swarm Spec as a change of `current` (defaults filled in). As moby
 * merges a Spec, a zero or absent duration, interval or limit keeps what is
 * set; TaskHistoryRetentionLimit and AutoLockManagers apply when present.
 * Fields tsswarm cannot honour are refused unless they are empty or equal to
 * what `GET /swarm` shows.
 */
export function settingsFromDockerSpec(current: ClusterSettings, body: unknown, at = 'Spec'): SettingsChange {
  const spec = bodyObject(body, at || 'Spec');
  const settings: ClusterSettings = { ...current };
  const set: ClusterSettingFlag[] = [];
  const p = (k: string): string => (at ? `${at}.${k}` : k);
  const known = ['Name', 'Labels', 'Orchestration', 'Raft', 'Dispatcher', 'CAConfig', 'TaskDefaults', 'EncryptionConfig'];
  for (const k of Object.keys(spec)) if (!known.includes(k) && !isEmpty(spec[k])) throw unsupported(p(k), 'not a field of a swarm Spec');

  const name = stringAt(spec, 'Name', p('Name'));
  if (name && name !== SWARM_NAME) throw new UsageError(`${p('Name')}: swarm spec must be named "default"`, { field: p('Name') });
  if (!isEmpty(spec.Labels)) throw unsupported(p('Labels'), 'the cluster has no labels');

  const orch = objectAt(spec, 'Orchestration', p('Orchestration'));
  onlyKeys(orch, ['TaskHistoryRetentionLimit'], p('Orchestration'));
  const th = intAt(orch, 'TaskHistoryRetentionLimit', p('Orchestration.TaskHistoryRetentionLimit'));
  if (th !== undefined && th !== Number(current.taskHistoryLimit)) {
    settings.taskHistoryLimit = checkTaskHistoryLimit(th < 0 ? -1 : th, p('Orchestration.TaskHistoryRetentionLimit'));
    set.push('task-history-limit');
  }

  const raft = objectAt(spec, 'Raft', p('Raft'));
  onlyKeys(raft, ['SnapshotInterval', 'KeepOldSnapshots', 'LogEntriesForSlowFollowers', 'HeartbeatTick', 'ElectionTick'], p('Raft'));
  const si = intAt(raft, 'SnapshotInterval', p('Raft.SnapshotInterval'));
  if (si && si !== Number(current.snapshotInterval)) {
    settings.snapshotInterval = checkSnapshotInterval(si, p('Raft.SnapshotInterval'));
    set.push('snapshot-interval');
  }
  for (const k of ['KeepOldSnapshots', 'LogEntriesForSlowFollowers', 'HeartbeatTick', 'ElectionTick'] as const) {
    const v = intAt(raft, k, p(`Raft.${k}`));
    if (v && v !== RAFT_FIXED[k]) throw unsupported(p(`Raft.${k}`), `tsswarm's Raft keeps ${RAFT_FIXED[k]}`);
  }

  const disp = objectAt(spec, 'Dispatcher', p('Dispatcher'));
  onlyKeys(disp, ['HeartbeatPeriod'], p('Dispatcher'));
  const hb = intAt(disp, 'HeartbeatPeriod', p('Dispatcher.HeartbeatPeriod'));
  if (hb) {
    const ms = checkDispatcherHeartbeat(nsToMs(hb, p('Dispatcher.HeartbeatPeriod')), p('Dispatcher.HeartbeatPeriod'), `${hb}ns`);
    if (ms !== Number(current.dispatcherHeartbeatMs)) {
      settings.dispatcherHeartbeatMs = ms;
      set.push('dispatcher-heartbeat');
    }
  }

  const ca = objectAt(spec, 'CAConfig', p('CAConfig'));
  for (const k of Object.keys(ca)) {
    if (k === 'NodeCertExpiry') continue;
    if (!isEmpty(ca[k]))
      throw unsupported(
        p(`CAConfig.${k}`),
        k === 'ExternalCAs'
          ? 'the managers are the only CA'
          : 'the root CA is rotated with `tsswarm swarm ca --rotate`; an external signing CA cannot be given',
      );
  }
  const exp = intAt(ca, 'NodeCertExpiry', p('CAConfig.NodeCertExpiry'));
  if (exp) {
    const ms = checkCertExpiry(nsToMs(exp, p('CAConfig.NodeCertExpiry')), p('CAConfig.NodeCertExpiry'), `${exp}ns`);
    if (ms !== Number(current.certExpiryMs)) {
      settings.certExpiryMs = ms;
      set.push('cert-expiry');
    }
  }

  if (!isEmpty(spec.TaskDefaults)) throw unsupported(p('TaskDefaults'), 'tasks log with the default driver only');

  const enc = objectAt(spec, 'EncryptionConfig', p('EncryptionConfig'));
  onlyKeys(enc, ['AutoLockManagers'], p('EncryptionConfig'));
  const al = boolAt(enc, 'AutoLockManagers', p('EncryptionConfig.AutoLockManagers'));
  if (al !== undefined && al !== current.autolock) {
    settings.autolock = al;
    set.push('autolock');
  }
  return { settings, set };
}

function onlyKeys(o: JsonObject, keys: readonly string[], at: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k) && !isEmpty(o[k])) throw unsupported(`${at}.${k}`, 'not a field tsswarm knows');
}

/** `POST /swarm/init` as our init, plus the settings to apply once the cluster exists. */
export interface DockerInit {
  listenAddr: string;
  advertiseAddr: string;
  forceNewCluster: boolean;
  autolock: boolean;
  certExpiryMs: number;
  /** Settings beyond what init itself takes (task history, heartbeat, snapshot interval). */
  after: SettingsChange;
  /** '' or active, pause, drain: the first node's availability. */
  availability: string;
}

/** The settings a new cluster starts with, to compare an init's Spec against. */
export const INIT_DEFAULTS: ClusterSettings = {
  taskHistoryLimit: 5,
  dispatcherHeartbeatMs: 5000,
  certExpiryMs: 90 * 24 * 3_600_000,
  snapshotInterval: 10_000,
  autolock: false,
};

export function initFromDocker(body: unknown, net: SwarmNetworking = SWARM_NETWORKING): DockerInit {
  const b = bodyObject(body, 'InitRequest');
  const known = [
    'ListenAddr',
    'AdvertiseAddr',
    'DataPathAddr',
    'DataPathPort',
    'ForceNewCluster',
    'Spec',
    'AutoLockManagers',
    'Availability',
    'DefaultAddrPool',
    'SubnetSize',
  ];
  for (const k of Object.keys(b)) if (!known.includes(k) && !isEmpty(b[k])) throw unsupported(k, 'not a field of an InitRequest');
  if (stringAt(b, 'DataPathAddr', 'DataPathAddr'))
    throw unsupported('DataPathAddr', 'overlay traffic goes over the advertise address; leave it out');
  const port = intAt(b, 'DataPathPort', 'DataPathPort');
  if (port && port !== net.DataPathPort) throw unsupported('DataPathPort', `the VXLAN port is ${net.DataPathPort}`);
  const pool = b.DefaultAddrPool;
  if (!isEmpty(pool) && JSON.stringify(pool) !== JSON.stringify(net.DefaultAddrPool))
    throw unsupported('DefaultAddrPool', `overlay subnets come from ${net.DefaultAddrPool.join(', ')}`);
  const size = intAt(b, 'SubnetSize', 'SubnetSize');
  if (size && size !== net.SubnetSize) throw unsupported('SubnetSize', `overlay subnets are /${net.SubnetSize}`);
  const availability = stringAt(b, 'Availability', 'Availability');
  if (availability && !['active', 'pause', 'drain'].includes(availability))
    throw new UsageError(`invalid Availability: ${JSON.stringify(availability)}`, { field: 'Availability' });
  const spec = isObject(b.Spec) ? b.Spec : b.Spec === undefined || b.Spec === null ? {} : bodyObject(b.Spec, 'Spec');
  const change = settingsFromDockerSpec(INIT_DEFAULTS, spec, 'Spec');
  const top = boolAt(b, 'AutoLockManagers', 'AutoLockManagers') ?? false;
  const autolock = top || change.settings.autolock;
  const certExpiryMs = change.set.includes('cert-expiry') ? Number(change.settings.certExpiryMs) : 0;
  const later = change.set.filter((s) => s !== 'autolock' && s !== 'cert-expiry');
  return {
    listenAddr: stringAt(b, 'ListenAddr', 'ListenAddr'),
    advertiseAddr: stringAt(b, 'AdvertiseAddr', 'AdvertiseAddr'),
    forceNewCluster: boolAt(b, 'ForceNewCluster', 'ForceNewCluster') ?? false,
    autolock,
    certExpiryMs,
    after: { settings: change.settings, set: later },
    availability,
  };
}

export interface DockerJoin {
  listenAddr: string;
  advertiseAddr: string;
  remoteAddrs: string[];
  token: string;
  availability: string;
}

export function joinFromDocker(body: unknown): DockerJoin {
  const b = bodyObject(body, 'JoinRequest');
  const known = ['ListenAddr', 'AdvertiseAddr', 'DataPathAddr', 'RemoteAddrs', 'JoinToken', 'Availability'];
  for (const k of Object.keys(b)) if (!known.includes(k) && !isEmpty(b[k])) throw unsupported(k, 'not a field of a JoinRequest');
  if (stringAt(b, 'DataPathAddr', 'DataPathAddr'))
    throw unsupported('DataPathAddr', 'overlay traffic goes over the advertise address; leave it out');
  const remote = b.RemoteAddrs ?? [];
  if (!Array.isArray(remote) || !remote.every((r) => typeof r === 'string'))
    throw new UsageError('RemoteAddrs must be a list of HOST:PORT strings', { field: 'RemoteAddrs' });
  if (remote.length === 0) throw new UsageError('RemoteAddrs: give the address of at least one manager', { field: 'RemoteAddrs' });
  const token = stringAt(b, 'JoinToken', 'JoinToken');
  if (!token) throw new UsageError('JoinToken is required', { field: 'JoinToken' });
  const availability = stringAt(b, 'Availability', 'Availability');
  if (availability && !['active', 'pause', 'drain'].includes(availability))
    throw new UsageError(`invalid Availability: ${JSON.stringify(availability)}`, { field: 'Availability' });
  return {
    listenAddr: stringAt(b, 'ListenAddr', 'ListenAddr'),
    advertiseAddr: stringAt(b, 'AdvertiseAddr', 'AdvertiseAddr'),
    remoteAddrs: remote as string[],
    token,
    availability,
  };
}
