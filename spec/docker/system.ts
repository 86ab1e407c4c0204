// `GET /version`, `GET /info` and the `Swarm` header of `GET /_ping` as
// dockerd answers them, from what the daemon knows about its host and its
// cluster. Pure: the engine server gathers the facts.
import type { InfoResponse } from '../../proto/gen/control.js';
import type { JsonObject } from './common.js';
import { hostOf } from './node.js';
import { type ClusterFacts, toDockerClusterInfo } from './swarm.js';

/** dockerd's words for a locked manager (moby daemon/cluster/errors.go): its 503s and the Error of `/info`. */
export const SWARM_LOCKED_MESSAGE =
  'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.';

/** What the engine knows about its host and build. */
export interface EngineHost {
  /** A stable id of this engine (dockerd's ID). */
  id: string;
  name: string;
  /** tsswarm's version (ServerVersion). */
  version: string;
  ncpu: number;
  memTotal: number;
  /** uname's machine (x86_64, aarch64). */
  architecture: string;
  /** Go's GOARCH (amd64, arm64), as /version reports it. */
  goArch: string;
  kernelVersion: string;
  operatingSystem: string;
  /** The runtime behind the engine, shown where dockerd shows its Go version. */
  runtimeVersion: string;
  rootDir: string;
  images: number;
}

/** uname's machine name as Go's GOARCH. */
export function goArch(machine: string): string {
  return ({ x86_64: 'amd64', aarch64: 'arm64', armv7l: 'arm', i386: '386', i686: '386' } as Record<string, string>)[machine] ?? machine;
}

/** `GET /version`: the engine's build and the API versions it speaks (`max` advertised, `min` accepted). */
export function toDockerVersion(h: EngineHost, api: { max: string; min: string }): JsonObject {
  const details = {
    ApiVersion: api.max,
    Arch: h.goArch,
    BuildTime: '',
    Experimental: 'false',
    GitCommit: '',
    GoVersion: h.runtimeVersion,
    KernelVersion: h.kernelVersion,
    MinAPIVersion: api.min,
    Os: 'linux',
  };
  return {
    Platform: { Name: `tsswarm ${h.version}` },
    Components: [{ Name: 'Engine', Version: h.version, Details: details }],
    Version: h.version,
    ApiVersion: api.max,
    MinAPIVersion: api.min,
    GitCommit: '',
    GoVersion: h.runtimeVersion,
    Os: 'linux',
    Arch: h.goArch,
    KernelVersion: h.kernelVersion,
    BuildTime: '',
  };
}

/** The node's state as dockerd names it: inactive, pending, active, locked or error. */
export function localNodeState(info: Pick<InfoResponse, 'state'>): string {
  return ['inactive', 'pending', 'active', 'locked', 'error'].includes(info.state) ? info.state : 'inactive';
}

/** The `Swarm` header of `/_ping`: `inactive`, `pending`, `locked`, `error`, or `active/manager` and `active/worker`. */
export function swarmHeader(info: Pick<InfoResponse, 'state' | 'role'>): string {
  const s = localNodeState(info);
  return s === 'active' ? `${s}/${info.role === 'manager' ? 'manager' : 'worker'}` : s;
}

/**
 * The Swarm section of `/info`. A manager adds the cluster, node and manager
 * counts (`cluster` is null when the leader could not be asked: then Error
 * says why, as dockerd's does); a worker shows the managers it knows; an
 * inactive or locked node only its state.
 */
export function toDockerSwarmInfo(
  info: InfoResponse,
  cluster: ClusterFacts | null,
  workerManagers: readonly string[],
  error = '',
): JsonObject {
  const state = localNodeState(info);
  const base: JsonObject = {
    NodeID: state === 'active' ? info.nodeId : '',
    NodeAddr: hostOf(info.nodeAddr),
    LocalNodeState: state,
    ControlAvailable: state === 'active' && info.isManager,
    Error: state === 'locked' ? SWARM_LOCKED_MESSAGE : info.error || error,
    RemoteManagers: null,
  };
  if (state !== 'active') return base;
  if (info.isManager) {
    base.RemoteManagers = info.managers.map((m) => ({ NodeID: m.nodeId, Addr: m.addr }));
    base.Nodes = info.nodes;
    // As dockerd: every node with a ManagerStatus, i.e. every Raft member (a new manager counts while it catches up).
    base.Managers = info.managers.length;
    if (cluster) base.Cluster = toDockerClusterInfo(cluster);
  } else {
    base.RemoteManagers = workerManagers.map((a) => ({ NodeID: '', Addr: a }));
  }
  return base;
}

export function toDockerInfo(h: EngineHost, swarm: JsonObject): JsonObject {
  return {
    ID: h.id,
    Containers: 0,
    ContainersRunning: 0,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: h.images,
    Driver: 'overlayfs',
    DockerRootDir: h.rootDir,
    Name: h.name,
    ServerVersion: h.version,
    OSType: 'linux',
    OperatingSystem: h.operatingSystem,
    KernelVersion: h.kernelVersion,
    Architecture: h.architecture,
    NCPU: h.ncpu,
    MemTotal: h.memTotal,
    IndexServerAddress: 'https://index.docker.io/v1/',
    Labels: [],
    ExperimentalBuild: false,
    LiveRestoreEnabled: true,
    Isolation: '',
    DefaultRuntime: 'runc',
    Runtimes: { runc: { path: 'runc' } },
    SecurityOptions: ['name=seccomp,profile=builtin'],
    Swarm: swarm,
    Warnings: null,
  };
}
