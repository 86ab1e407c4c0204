// This node's containers and images as dockerd lists them (`docker ps`,
// `docker image ls`, Portainer's snapshot): the task containers the runtime
// holds, named and labelled as Swarm names and labels task containers, and
// the node's image store. Pure.
import { NotFoundError, TsswarmError, UsageError } from '../../lib/errors.js';
import type { ImageSummary } from '../../proto/gen/control.js';
import { MountType, type Task } from '../../proto/gen/objects.js';
import { GO_ZERO_TIME, timeToDocker } from './values.js';
import { anyOf, anyPrefix, checkFilterKeys, type DockerFilters, filterValues, matchLabels } from './filters.js';
import { humanDuration } from '../cluster.js';
import { onNoNetwork } from '../predefined-networks.js';

/** What the runtime reports of one container (agent/runtime's ContainerState, without importing it). */
export interface ContainerView {
  id: string;
  status: 'created' | 'running' | 'stopped' | 'unknown';
  pid: number;
  exitCode?: number;
  startedAt?: number;
  finishedAt?: number;
  labels: Readonly<Record<string, string>>;
  image: string;
}

const STATE: Record<ContainerView['status'], string> = { created: 'created', running: 'running', stopped: 'exited', unknown: 'dead' };

/** Swarm's labels on a task container, from ours (agent/worker/task.ts), besides ours. */
function swarmLabels(l: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = { ...l };
  if (l['tsswarm.task.id']) out['com.docker.swarm.task.id'] = l['tsswarm.task.id'];
  if (l['tsswarm.service.id']) out['com.docker.swarm.service.id'] = l['tsswarm.service.id'];
  if (l['tsswarm.service.name']) out['com.docker.swarm.service.name'] = l['tsswarm.service.name'];
  if (l['tsswarm.node.id']) out['com.docker.swarm.node.id'] = l['tsswarm.node.id'];
  if (l['tsswarm.task.id'] && l['tsswarm.service.name'])
    out['com.docker.swarm.task.name'] =
      `${l['tsswarm.service.name']}.${l['tsswarm.task.slot'] && l['tsswarm.task.slot'] !== '0' ? l['tsswarm.task.slot'] : (l['tsswarm.node.id'] ?? '')}.${l['tsswarm.task.id']}`;
  return out;
}

/** `docker ps`'s STATUS words: Up 5 minutes, Exited (0) 2 seconds ago, Created. */
function statusWords(c: ContainerView, now: number): string {
  if (c.status === 'running') return `Up ${humanDuration(Math.max(0, now - (c.startedAt ?? now)))}`;
  if (c.status === 'stopped') return `Exited (${c.exitCode ?? 0}) ${humanDuration(Math.max(0, now - (c.finishedAt ?? now)))} ago`;
  return c.status === 'created' ? 'Created' : 'Dead';
}

/** A container as GET /containers/json lists it (Go's types.Container). */
export function containerToDocker(c: ContainerView, now = Date.now()): Record<string, unknown> {
  const labels = swarmLabels(c.labels);
  const name = labels['com.docker.swarm.task.name'] ?? c.id;
  return {
    Id: c.id,
    Names: [`/${name}`],
    Image: c.image,
    ImageID: '',
    Command: '',
    Created: Math.floor((c.startedAt ?? 0) / 1000),
    Ports: [],
    Labels: labels,
    State: STATE[c.status],
    Status: statusWords(c, now),
    HostConfig: { NetworkMode: 'default' },
    NetworkSettings: { Networks: {} },
    Mounts: [],
  };
}

export const CONTAINER_FILTER_KEYS = ['id', 'name', 'label', 'status'] as const;
const STATUS_WORDS = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

/** GET /containers/json filters dockerd's way for the keys tsswarm has: id and name (prefix), label, status; others refused. */
export function containerFilter(f: DockerFilters): (c: ContainerView) => boolean {
  checkFilterKeys(f, CONTAINER_FILTER_KEYS);
  const v = (k: string): string[] => filterValues(f, k);
  for (const s of v('status')) if (!STATUS_WORDS.includes(s)) throw new UsageError(`Invalid filter 'status=${s}'`, { field: 'filters' });
  return (c) => {
    const labels = swarmLabels(c.labels);
    const name = labels['com.docker.swarm.task.name'] ?? c.id;
    return (
      anyPrefix(c.id, v('id')) &&
      (v('name').length === 0 || v('name').some((n) => name.includes(n.replace(/^\//, '')))) &&
      matchLabels(labels, v('label')) &&
      anyOf(STATE[c.status], v('status'))
    );
  };
}

/** An image as GET /images/json lists it (Go's image.Summary). */
export function imageToDocker(i: ImageSummary): Record<string, unknown> {
  return {
    Id: i.id,
    ParentId: '',
    RepoTags: [...i.references],
    RepoDigests: [...(i.repoDigests ?? [])],
    Created: Math.floor(Number(i.createdAt) / 1000),
    Size: Number(i.size),
    SharedSize: -1,
    Labels: {},
    Containers: -1,
  };
}

export const IMAGE_FILTER_KEYS = ['reference', 'dangling'] as const;

/** GET /images/json filters: `reference` (a name, or name:tag, matched against the references), `dangling` (untagged). */
export function imageFilter(f: DockerFilters): (i: ImageSummary) => boolean {
  checkFilterKeys(f, IMAGE_FILTER_KEYS);
  const refs = filterValues(f, 'reference');
  const dangling = filterValues(f, 'dangling').map((d) => {
    if (!['true', '1', 'false', '0'].includes(d)) throw new UsageError(`Invalid filter 'dangling=${d}'`, { field: 'filters' });
    return d === 'true' || d === '1';
  });
  const matches = (ref: string, want: string): boolean =>
    ref === want || ref.split(':')[0] === want || ref.replace(/^docker\.io\/(library\/)?/, '') === want;
  return (i) =>
    (refs.length === 0 || i.references.some((r) => refs.some((w) => matches(r, w)))) &&
    (dangling.length === 0 || dangling.includes(i.references.length === 0));
}

/** The container's name as dockerd shows it: Swarm's task name, else its id. */
export function containerName(c: ContainerView): string {
  return swarmLabels(c.labels)['com.docker.swarm.task.name'] ?? c.id;
}

/**
 * A container by reference as dockerd resolves it (GET /containers/{id}/json):
 * full id, then exact name (with or without its leading `/`), then a unique
 * id prefix; several matches and none are dockerd's errors.
 */
export function findContainer<T extends ContainerView>(cs: readonly T[], ref: string): T {
  const byId = cs.find((c) => c.id === ref);
  if (byId) return byId;
  const name = ref.replace(/^\//, '');
  const byName = cs.find((c) => containerName(c) === name);
  if (byName) return byName;
  const byPrefix = ref ? cs.filter((c) => c.id.startsWith(ref)) : [];
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) throw new TsswarmError('INVALID_ARGUMENT', `multiple IDs found with provided prefix: ${ref}`);
  throw new NotFoundError(`No such container: ${ref}`);
}

/** What inspect shows besides the runtime's state: the task the node runs it for, its image, network names. */
export interface ContainerDetail {
  /** The task, while this node's worker holds it. */
  task?: Task;
  /** The image as the node's store has it. */
  image?: { id: string; env: string[]; entrypoint: string[]; cmd: string[]; workdir: string; user: string };
  networkName?: (id: string) => string | undefined;
  /** The container's address on its node's default bridge (the egress bridge), as the node's agent gave it. */
  bridge?: { ip: string; prefixLen: number; gateway: string; mac: string };
}

const MOUNT_TYPE: Record<MountType, string> = { [MountType.BIND]: 'bind', [MountType.VOLUME]: 'volume', [MountType.TMPFS]: 'tmpfs' };

/**
 * A container as GET /containers/{id}/json shows it (Go's ContainerJSON), from
 * the runtime's state and the task's spec: State, Config (the spec's env, never
 * a secret's value: those are files), Mounts, NetworkSettings with the task's
 * addresses, a minimal HostConfig. Fields tsswarm has no notion of are empty
 * as dockerd leaves them.
 */
export function containerInspectToDocker(c: ContainerView, d: ContainerDetail = {}): Record<string, unknown> {
  const labels = swarmLabels(c.labels);
  const cs = d.task?.spec?.container;
  const img = d.image;
  const entrypoint = cs?.command?.length ? cs.command : (img?.entrypoint ?? []);
  const cmd = cs?.args?.length ? cs.args : cs?.command?.length ? [] : (img?.cmd ?? []);
  const argv = [...entrypoint, ...cmd];
  const env = [...(img?.env ?? [])];
  for (const e of cs?.env ?? []) {
    const k = e.split('=')[0];
    const i = env.findIndex((x) => x.split('=')[0] === k);
    if (i >= 0) env[i] = e;
    else env.push(e);
  }
  const networks: Record<string, unknown> = {};
  for (const a of d.task?.networks ?? []) {
    const [ip, prefix] = (a.addresses[0] ?? '').split('/');
    networks[d.networkName?.(a.networkId) ?? a.networkId] = {
      IPAMConfig: ip ? { IPv4Address: ip } : null,
      Links: null,
      Aliases: a.aliases.length ? [...a.aliases] : null,
      MacAddress: '',
      DriverOpts: null,
      NetworkID: a.networkId,
      EndpointID: '',
      Gateway: '',
      IPAddress: ip ?? '',
      IPPrefixLen: prefix ? Number(prefix) : 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DNSNames: null,
    };
  }
  // Docker's own local networks: a task with no network is on the node's default bridge; one on none has no address.
  const onNone = onNoNetwork(d.task?.spec);
  if (Object.keys(networks).length === 0 && (onNone || d.bridge)) {
    const b = onNone ? undefined : d.bridge;
    networks[onNone ? 'none' : 'bridge'] = {
      IPAMConfig: null,
      Links: null,
      Aliases: null,
      MacAddress: b?.mac ?? '',
      DriverOpts: null,
      NetworkID: '',
      EndpointID: '',
      Gateway: b?.gateway ?? '',
      IPAddress: b?.ip ?? '',
      IPPrefixLen: b?.prefixLen ?? 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DNSNames: null,
    };
  }
  const mounts = (cs?.mounts ?? []).map((m) => ({
    Type: MOUNT_TYPE[m.type] ?? 'bind',
    ...(m.type === MountType.VOLUME ? { Name: m.source, Driver: 'local' } : {}),
    Source: m.type === MountType.BIND ? m.source : '',
    Destination: m.target,
    Mode: '',
    RW: !m.readOnly,
    Propagation: m.type === MountType.BIND ? 'rprivate' : '',
  }));
  const running = c.status === 'running';
  const res = d.task?.spec?.resources?.limits;
  return {
    Id: c.id,
    Created: timeToDocker(c.startedAt ?? 0),
    Path: argv[0] ?? '',
    Args: argv.slice(1),
    State: {
      Status: STATE[c.status],
      Running: running,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: c.status === 'unknown',
      Pid: running ? c.pid : 0,
      ExitCode: c.exitCode ?? 0,
      Error: '',
      StartedAt: c.startedAt ? timeToDocker(c.startedAt) : GO_ZERO_TIME,
      FinishedAt: c.finishedAt ? timeToDocker(c.finishedAt) : GO_ZERO_TIME,
    },
    Image: img?.id ?? '',
    ResolvConfPath: '',
    HostnamePath: '',
    HostsPath: '',
    LogPath: '',
    Name: `/${containerName(c)}`,
    RestartCount: 0,
    Driver: 'overlay',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      NetworkMode: Object.keys(networks).length ? Object.keys(networks)[0] : 'none',
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: false,
      ReadonlyRootfs: cs?.readOnly ?? false,
      Init: cs?.init ?? false,
      CapAdd: cs?.capabilityAdd?.length ? [...cs.capabilityAdd] : null,
      CapDrop: cs?.capabilityDrop?.length ? [...cs.capabilityDrop] : null,
      NanoCpus: Number(res?.nanoCpus ?? 0),
      Memory: Number(res?.memoryBytes ?? 0),
      PidsLimit: res?.pids ? Number(res.pids) : null,
    },
    GraphDriver: { Name: 'overlay', Data: null },
    Mounts: mounts,
    Config: {
      Hostname: cs?.hostname ?? '',
      Domainname: '',
      User: cs?.user || img?.user || '',
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: cs?.tty ?? false,
      OpenStdin: false,
      StdinOnce: false,
      Env: env,
      Cmd: cmd.length ? cmd : null,
      Image: cs?.image ?? c.image,
      Volumes: null,
      WorkingDir: cs?.dir || img?.workdir || '',
      Entrypoint: entrypoint.length ? entrypoint : null,
      OnBuild: null,
      Labels: labels,
      ...(cs?.stopSignal ? { StopSignal: cs.stopSignal } : {}),
    },
    NetworkSettings: {
      Bridge: '',
      SandboxID: '',
      SandboxKey: '',
      Ports: {},
      Networks: networks,
    },
  };
}

/** A volume of this node (a directory of the runtime's volumes folder); an anonymous one carries its task's labels. */
export interface VolumeView {
  name: string;
  mountpoint: string;
  createdAt: number;
  labels?: Record<string, string>;
}

/** GET /volumes as dockerd answers it (Go's volume.ListResponse). */
export function volumesToDocker(vs: readonly VolumeView[]): { Volumes: unknown[]; Warnings: string[] } {
  return {
    Volumes: vs.map((v) => ({
      CreatedAt: timeToDocker(v.createdAt),
      Driver: 'local',
      // An anonymous volume carries its task's labels: shown under Swarm's names too, as a task container's.
      Labels: swarmLabels(v.labels ?? {}),
      Mountpoint: v.mountpoint,
      Name: v.name,
      Options: {},
      Scope: 'local',
    })),
    Warnings: [],
  };
}
