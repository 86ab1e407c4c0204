// Docker's ServiceSpec and Service JSON (Engine API, swarm) to and from
// tsswarm's ServiceSpec and Service, for the Engine API's /services routes.
// Every Docker field is listed in SERVICE_SPEC_FIELDS: it either maps to a
// field of ours or is refused with a UsageError naming its Docker path when
// it carries a value tsswarm cannot honour; empty and zero values, which the
// docker CLI always sends, are accepted. Defaults are filled as moby fills
// them. Pure: names of networks, secrets and configs are resolved by the
// caller's functions in the context.
import { UsageError } from '../../lib/errors.js';
import {
  type ConfigReference,
  type ContainerSpec,
  EndpointMode,
  type EndpointSpec,
  type FileTarget,
  type HealthConfig,
  type LogDriver,
  type Mount,
  MountType,
  type NetworkAttachmentConfig,
  type Placement,
  type PortConfig,
  PortProtocol,
  PublishMode,
  type ResourceRequirements,
  type Resources,
  RestartCondition,
  type RestartPolicy,
  SeccompMode,
  type SecretReference,
  type Service,
  type ServiceSpec,
  type Task,
  type TaskSpec,
  TaskState,
  type UpdateConfig,
  UpdateFailureAction,
  UpdateOrder,
  UpdateState,
} from '../../proto/gen/objects.js';
import { DEFAULT_RESTART, DEFAULT_STOP_GRACE_MS, DEFAULT_UPDATE, plainSpec } from '../validate.js';
import { isNoNetwork } from '../predefined-networks.js';
import { jobCounts } from '../jobs.js';
import { LogDriverError, logPolicy } from '../log-driver.js';
import { checkSysctl, isNamespacedSysctl, ULIMIT_RESOURCES } from '../container-options.js';
import type {
  DockerContainerSpec,
  DockerEndpointSpec,
  DockerFileTarget,
  DockerMount,
  DockerPortConfig,
  DockerRestartPolicy,
  DockerService,
  DockerServiceSpec,
  DockerServiceStatus,
  DockerTaskSpec,
  DockerUpdateConfig,
  DockerUpdateState,
} from './types.js';
import { durationToDocker, isZero, JsonReader, short, timeToDocker } from './values.js';

// ------------------------------------------------------------------ the field list

/**
 * - mapped: carried to a field of ours and back;
 * - refused: any value but Go's zero value is refused;
 * - some-values: mapped, but some values are refused (the note says which).
 */
export type FieldSupport = 'mapped' | 'refused' | 'some-values';

export interface DockerField {
  /** Docker's path, `[]` for the elements of a list: `TaskTemplate.ContainerSpec.Mounts[].Type`. */
  path: string;
  support: FieldSupport;
  /** For refused fields and values: what tsswarm lacks. For mapped ones: where it goes, or the default. */
  note: string;
  /** Refused as soon as it is present, even empty (`"GlobalJob":{}` chooses a mode). */
  present?: boolean;
}

const M = (path: string, note = ''): DockerField => ({ path, support: 'mapped', note });
const R = (path: string, note: string, present = false): DockerField => ({
  path,
  support: 'refused',
  note,
  ...(present ? { present } : {}),
});
const V = (path: string, note: string): DockerField => ({ path, support: 'some-values', note });

const CS = 'TaskTemplate.ContainerSpec';
const updateFields = (p: string): DockerField[] => [
  M(p, 'absent: Swarm defaults (parallelism 1, pause, monitor 5s, stop-first), filled by validation'),
  M(`${p}.Parallelism`),
  M(`${p}.Delay`),
  V(`${p}.FailureAction`, '"" is pause; pause, continue or rollback'),
  M(`${p}.Monitor`, '0 or absent is 5s, as SwarmKit'),
  M(`${p}.MaxFailureRatio`),
  V(`${p}.Order`, '"" is stop-first; stop-first or start-first'),
];
const networkFields = (p: string): DockerField[] => [
  M(p),
  M(`${p}[].Target`, 'a name or id, resolved to an id'),
  M(`${p}[].Aliases`),
  R(`${p}[].DriverOpts`, "tsswarm's overlay takes no per-attachment driver options"),
];
const fileTargetFields = (p: string): DockerField[] => [
  M(`${p}.File`, 'absent: target = the name (secrets under /run/secrets, configs at /NAME), uid/gid 0, mode 0444'),
  M(`${p}.File.Name`),
  M(`${p}.File.UID`),
  M(`${p}.File.GID`),
  M(`${p}.File.Mode`, 'decimal file mode: 292 is 0444'),
];

/** Every field of Docker's ServiceSpec (API 1.41 to 1.52) and what tsswarm does with it. */
export const SERVICE_SPEC_FIELDS: readonly DockerField[] = [
  M('Name', 'empty: a random name, given by the Control API'),
  M('Labels'),
  M('TaskTemplate'),
  M('Mode', 'absent or {}: Replicated{Replicas:1}'),
  M('Mode.Replicated'),
  M('Mode.Replicated.Replicas', 'absent: 1'),
  M('Mode.Global'),
  M('Mode.ReplicatedJob', 'a job: tasks run to completion; every update starts a new iteration; no UpdateConfig or RollbackConfig'),
  M('Mode.ReplicatedJob.MaxConcurrent', 'absent: 1; 0 is refused while completions are wanted'),
  M('Mode.ReplicatedJob.TotalCompletions', 'absent: 1'),
  M('Mode.GlobalJob', 'one completed task per eligible node'),
  ...updateFields('UpdateConfig'),
  ...updateFields('RollbackConfig'),
  ...networkFields('Networks').map((f) =>
    f.path === 'Networks' ? { ...f, note: 'deprecated: taken as TaskTemplate.Networks when that is empty, and shown there' } : f,
  ),
  M('EndpointSpec'),
  V('EndpointSpec.Mode', '"" is vip; vip or dnsrr'),
  M('EndpointSpec.Ports'),
  M('EndpointSpec.Ports[].Name'),
  V('EndpointSpec.Ports[].Protocol', '"" is tcp; tcp, udp or sctp (validation then refuses publishing sctp)'),
  M('EndpointSpec.Ports[].TargetPort'),
  M('EndpointSpec.Ports[].PublishedPort'),
  V('EndpointSpec.Ports[].PublishMode', '"" is ingress; ingress or host'),

  M(CS, 'required: tsswarm runs containers'),
  R('TaskTemplate.PluginSpec', 'tsswarm runs containers only, not plugins'),
  R('TaskTemplate.NetworkAttachmentSpec', 'tsswarm runs containers only'),
  M('TaskTemplate.Resources'),
  M('TaskTemplate.Resources.Limits'),
  M('TaskTemplate.Resources.Limits.NanoCPUs'),
  M('TaskTemplate.Resources.Limits.MemoryBytes'),
  M('TaskTemplate.Resources.Limits.Pids'),
  M('TaskTemplate.Resources.Reservations'),
  M('TaskTemplate.Resources.Reservations.NanoCPUs'),
  M('TaskTemplate.Resources.Reservations.MemoryBytes'),
  M('TaskTemplate.Resources.Reservations.GenericResources', 'counts of what nodes advertise (node-generic-resources)'),
  M('TaskTemplate.Resources.Reservations.GenericResources[].DiscreteResourceSpec'),
  M('TaskTemplate.Resources.Reservations.GenericResources[].DiscreteResourceSpec.Kind'),
  M('TaskTemplate.Resources.Reservations.GenericResources[].DiscreteResourceSpec.Value'),
  R(
    'TaskTemplate.Resources.Reservations.GenericResources[].NamedResourceSpec',
    'named generic resources: nodes advertise counts only; reserve a DiscreteResourceSpec',
  ),
  R('TaskTemplate.Resources.SwapBytes', 'tsswarm sets no swap limit'),
  R('TaskTemplate.Resources.MemorySwappiness', 'tsswarm sets no memory swappiness'),
  M('TaskTemplate.RestartPolicy', 'absent: condition any, delay 5s, filled by validation'),
  V('TaskTemplate.RestartPolicy.Condition', '"" is any; none, on-failure or any'),
  M('TaskTemplate.RestartPolicy.Delay', 'absent: 5s, as SwarmKit'),
  M('TaskTemplate.RestartPolicy.MaxAttempts'),
  M('TaskTemplate.RestartPolicy.Window'),
  M('TaskTemplate.Placement'),
  M('TaskTemplate.Placement.Constraints'),
  M('TaskTemplate.Placement.Preferences'),
  M('TaskTemplate.Placement.Preferences[].Spread', 'required: spread is the only placement preference'),
  M('TaskTemplate.Placement.Preferences[].Spread.SpreadDescriptor'),
  M('TaskTemplate.Placement.MaxReplicas'),
  M('TaskTemplate.Placement.Platforms'),
  M('TaskTemplate.Placement.Platforms[].Architecture'),
  M('TaskTemplate.Placement.Platforms[].OS'),
  ...networkFields('TaskTemplate.Networks'),
  M('TaskTemplate.LogDriver', 'absent: rotated files on the node, 20m × 5 (spec/log-driver.ts)'),
  V('TaskTemplate.LogDriver.Name', 'json-file, local (both rotated files read by service logs) or none; other drivers are refused'),
  V('TaskTemplate.LogDriver.Options', 'max-size, max-file, compress=false; other options are refused'),
  M('TaskTemplate.ForceUpdate'),
  V('TaskTemplate.Runtime', '"" or container; plugin and attachment are refused: tsswarm runs containers only'),

  M(`${CS}.Image`),
  M(`${CS}.Labels`),
  M(`${CS}.Command`),
  M(`${CS}.Args`),
  M(`${CS}.Hostname`),
  M(`${CS}.Env`),
  M(`${CS}.Dir`),
  M(`${CS}.User`),
  M(`${CS}.Groups`, "names resolved in the image's /etc/group when the container is made, or gids"),
  M(`${CS}.Privileges`),
  R(`${CS}.Privileges.CredentialSpec`, 'credential specs are for Windows containers'),
  R(`${CS}.Privileges.SELinuxContext`, 'tsswarm applies no SELinux labels'),
  M(`${CS}.Privileges.Seccomp`),
  V(`${CS}.Privileges.Seccomp.Mode`, 'default or unconfined; custom profiles are refused'),
  R(`${CS}.Privileges.Seccomp.Profile`, 'tsswarm runs the default seccomp profile or none: custom profiles are not supported'),
  R(`${CS}.Privileges.AppArmor`, 'tsswarm applies no AppArmor profiles'),
  M(`${CS}.Privileges.NoNewPrivileges`),
  M(`${CS}.Init`, 'null is false'),
  M(`${CS}.StopSignal`),
  M(`${CS}.TTY`, 'null is false'),
  R(`${CS}.OpenStdin`, "tsswarm does not attach to a service task's standard input"),
  M(`${CS}.ReadOnly`),
  M(`${CS}.Mounts`),
  V(`${CS}.Mounts[].Type`, 'bind, volume or tmpfs; npipe, cluster and image are refused'),
  M(`${CS}.Mounts[].Source`),
  M(`${CS}.Mounts[].Target`),
  M(`${CS}.Mounts[].ReadOnly`),
  V(`${CS}.Mounts[].Consistency`, '"" or default only: the other values apply to Docker Desktop'),
  M(`${CS}.Mounts[].BindOptions`),
  V(`${CS}.Mounts[].BindOptions.Propagation`, '"" or rprivate: tsswarm bind mounts are rprivate'),
  R(`${CS}.Mounts[].BindOptions.NonRecursive`, 'tsswarm bind mounts are recursive (rbind)'),
  R(`${CS}.Mounts[].BindOptions.CreateMountpoint`, 'tsswarm does not create a missing bind source'),
  R(`${CS}.Mounts[].BindOptions.ReadOnlyNonRecursive`, 'tsswarm bind mounts are recursive (rbind)'),
  R(`${CS}.Mounts[].BindOptions.ReadOnlyForceRecursive`, 'tsswarm bind mounts are recursive (rbind)'),
  M(`${CS}.Mounts[].VolumeOptions`),
  M(`${CS}.Mounts[].VolumeOptions.NoCopy`, 'a new anonymous volume is not filled with the image content at its target'),
  M(`${CS}.Mounts[].VolumeOptions.Labels`, 'kept and shown; tsswarm volumes are directories and carry no labels'),
  R(`${CS}.Mounts[].VolumeOptions.Subpath`, 'tsswarm mounts a whole volume'),
  R(`${CS}.Mounts[].VolumeOptions.DriverConfig`, 'tsswarm volumes are local directories: there are no volume drivers'),
  R(`${CS}.Mounts[].ImageOptions`, 'tsswarm has no image mounts'),
  R(`${CS}.Mounts[].TmpfsOptions`, 'tsswarm tmpfs mounts take no size or mode'),
  R(`${CS}.Mounts[].ClusterOptions`, 'tsswarm has no cluster volumes'),
  M(`${CS}.StopGracePeriod`, 'absent: 10s, filled by validation'),
  M(`${CS}.Healthcheck`),
  M(`${CS}.Healthcheck.Test`),
  M(`${CS}.Healthcheck.Interval`),
  M(`${CS}.Healthcheck.Timeout`),
  M(`${CS}.Healthcheck.StartPeriod`),
  M(`${CS}.Healthcheck.StartInterval`, 'checks run this often while starting within the start period; 0: the interval'),
  M(`${CS}.Healthcheck.Retries`),
  M(`${CS}.Hosts`, '"IP HOSTNAME [ALIAS...]" lines added to /etc/hosts'),
  M(`${CS}.DNSConfig`),
  M(`${CS}.DNSConfig.Nameservers`, "on overlay networks: the embedded DNS server's upstreams for this task; otherwise resolv.conf's"),
  M(`${CS}.DNSConfig.Search`),
  M(`${CS}.DNSConfig.Options`),
  M(`${CS}.Secrets`),
  ...fileTargetFields(`${CS}.Secrets[]`),
  M(`${CS}.Secrets[].SecretID`, 'resolved with SecretName by the Control API'),
  M(`${CS}.Secrets[].SecretName`),
  M(`${CS}.Configs`),
  ...fileTargetFields(`${CS}.Configs[]`),
  R(`${CS}.Configs[].Runtime`, 'runtime config targets are for Windows credential specs', true),
  M(`${CS}.Configs[].ConfigID`, 'resolved with ConfigName by the Control API'),
  M(`${CS}.Configs[].ConfigName`),
  V(`${CS}.Isolation`, '"" or default: Linux containers have no other isolation'),
  V(`${CS}.Sysctls`, 'namespaced ones only: net.*, fs.mqueue.*, kernel.shm*, kernel.msg*, kernel.sem'),
  M(`${CS}.CapabilityAdd`),
  M(`${CS}.CapabilityDrop`),
  M(`${CS}.Ulimits`),
  V(
    `${CS}.Ulimits[].Name`,
    "Docker's names: core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack",
  ),
  M(`${CS}.Ulimits[].Soft`, '-1: unlimited'),
  M(`${CS}.Ulimits[].Hard`, '-1: unlimited'),
  M(`${CS}.OomScoreAdj`, '-1000 to 1000'),
];

const fieldsByPath = new Map(SERVICE_SPEC_FIELDS.map((f) => [f.path, f]));

/** `TaskTemplate.ContainerSpec.Mounts[3]` → `TaskTemplate.ContainerSpec.Mounts[]`. */
const pattern = (path: string): string => path.replace(/\[\d+\]/g, '[]');

function refusal(path: string, note: string): UsageError {
  return new UsageError(`${path} is not supported by tsswarm yet: ${note}`, { field: path });
}

/**
 * The keys of one object that are refused, or unknown to tsswarm, and hold a
 * value: the first one is refused. Mapped keys are read by the caller.
 */
function walk(r: JsonReader | null): void {
  if (!r) return;
  for (const k of Object.keys(r.o)) {
    const path = r.at(k);
    const f = fieldsByPath.get(pattern(path));
    const v = r.o[k];
    if (!f) {
      if (!isZero(v))
        throw new UsageError(`${path} is not supported by tsswarm: it is not a field of Docker's ServiceSpec that tsswarm knows`, {
          field: path,
        });
    } else if (f.support === 'refused' && (f.present ? v !== null && v !== undefined : !isZero(v))) throw refusal(path, f.note);
  }
}

function oneOf<T>(r: JsonReader, key: string, choices: Record<string, T>, what: string): T {
  const v = r.str(key);
  if (Object.hasOwn(choices, v)) return choices[v]!;
  throw new UsageError(`${r.at(key)} must be ${what} (got ${short(v)})`, { field: r.at(key) });
}

// ------------------------------------------------------------------ Docker → ours

/** How the caller resolves what a spec names (the /services routes look them up in the store, as moby's populateNetworkID). */
export interface FromDockerContext {
  /** A network name or id → its id; throws (NotFoundError) for an unknown one. Absent: the target is kept as given. */
  resolveNetwork?: (nameOrId: string) => string;
  /** A secret reference's id and name → both resolved; absent: kept (the Control API resolves them). */
  resolveSecret?: (ref: { id: string; name: string }) => { id: string; name: string };
  resolveConfig?: (ref: { id: string; name: string }) => { id: string; name: string };
}

/**
 * A Docker ServiceSpec (the parsed body of POST /services/create or
 * /services/{id}/update) as tsswarm's ServiceSpec, with moby's defaults: a
 * missing or empty Mode, or Replicated without Replicas, is one replica;
 * Labels null is {}. Throws UsageError naming the Docker field for a value of
 * the wrong type, a value out of Docker's choices, or a field tsswarm cannot
 * honour. The result still goes through validateServiceSpec (the Control API
 * runs it), which checks values and fills Swarm's other defaults.
 */
export function serviceSpecFromDocker(json: unknown, ctx: FromDockerContext = {}): ServiceSpec {
  const r = JsonReader.of(json, '');
  if (!r) throw new UsageError('the request body must be a ServiceSpec object (got null)', { field: 'ServiceSpec' });
  walk(r);
  const tt = r.obj('TaskTemplate');
  walk(tt);
  const task = taskSpecFromDocker(tt, 'TaskTemplate', ctx);
  const top = r.list('Networks');
  if (top.length) {
    if (task.networks.length)
      throw new UsageError(
        'Networks is deprecated and TaskTemplate.Networks is also set: give the networks in TaskTemplate.Networks only',
        { field: 'Networks' },
      );
    task.networks = networksFromDocker(top, ctx);
  }
  const spec: ServiceSpec = {
    name: r.str('Name'),
    labels: r.strMap('Labels'),
    task,
    replicated: null,
    global: null,
    update: updateFromDocker(r.obj('UpdateConfig')),
    rollback: updateFromDocker(r.obj('RollbackConfig')),
    endpoint: endpointFromDocker(r.obj('EndpointSpec')),
  };
  const mode = r.obj('Mode');
  walk(mode);
  const chosen = mode
    ? ['Replicated', 'Global', 'ReplicatedJob', 'GlobalJob'].filter((k) => mode.o[k] !== null && mode.o[k] !== undefined)
    : [];
  if (chosen.length > 1) throw new UsageError(`Mode must specify only one service mode (got ${chosen.join(' and ')})`, { field: 'Mode' });
  const global = mode?.obj('Global');
  const rjob = mode?.obj('ReplicatedJob');
  const gjob = mode?.obj('GlobalJob');
  if (global) {
    walk(global);
    spec.global = {};
  } else if (gjob) {
    walk(gjob);
    spec.globalJob = {};
  } else if (rjob) {
    walk(rjob);
    // moby's defaults: one completion, one at a time.
    const n = (k: string): number => (rjob.o[k] === null || rjob.o[k] === undefined ? 1 : rjob.uint(k));
    spec.replicatedJob = { maxConcurrent: n('MaxConcurrent'), totalCompletions: n('TotalCompletions') };
  } else {
    const rep = mode?.obj('Replicated');
    walk(rep ?? null);
    const n = rep?.o.Replicas;
    spec.replicated = { replicas: n === null || n === undefined ? 1 : rep!.uint('Replicas') };
  }
  return plainSpec(spec);
}

function taskSpecFromDocker(r: JsonReader | null, path: string, ctx: FromDockerContext): TaskSpec {
  const runtime = r?.str('Runtime') ?? '';
  if (runtime !== '' && runtime !== 'container') {
    const p = `${path}.Runtime`;
    if (runtime === 'plugin' || runtime === 'attachment') throw refusal(p, `"${runtime}": tsswarm runs containers only`);
    throw new UsageError(`${p} must be container (got ${short(runtime)})`, { field: p });
  }
  const c = r?.obj('ContainerSpec') ?? null;
  if (!c)
    throw new UsageError(`${path}.ContainerSpec is required: tsswarm runs containers (give at least ContainerSpec.Image)`, {
      field: `${path}.ContainerSpec`,
    });
  const t = r!;
  return {
    container: containerFromDocker(c, ctx),
    resources: resourcesFromDocker(t.obj('Resources')),
    restart: restartFromDocker(t.obj('RestartPolicy')),
    placement: placementFromDocker(t.obj('Placement')),
    networks: networksFromDocker(t.list('Networks'), ctx),
    forceUpdate: t.uint('ForceUpdate'),
    logDriver: logDriverFromDocker(t.obj('LogDriver')),
  };
}

/** TaskTemplate.LogDriver as given, once spec/log-driver.ts accepts it (a refusal names Name or Options). */
function logDriverFromDocker(r: JsonReader | null): LogDriver | null {
  if (!r) return null;
  walk(r);
  const name = r.str('Name');
  const options = r.strMap('Options');
  if (name === '' && Object.keys(options).length === 0) return null;
  try {
    logPolicy({ name, options });
  } catch (e) {
    if (!(e instanceof LogDriverError)) throw e;
    const field = r.at(e.message.startsWith('--log-opt') ? 'Options' : 'Name');
    throw new UsageError(`${field} is not valid: ${e.message}`, { field });
  }
  return { name, options };
}

function networksFromDocker(list: readonly JsonReader[], ctx: FromDockerContext): NetworkAttachmentConfig[] {
  return list.map((n) => {
    walk(n);
    const target = n.str('Target');
    // `none` names no network object (loopback only): kept as given, checked with the rest of the spec.
    const resolve = target && ctx.resolveNetwork && !isNoNetwork(target);
    return { target: resolve ? ctx.resolveNetwork!(target) : target, aliases: n.strs('Aliases') };
  });
}

function resourcesFromDocker(r: JsonReader | null): ResourceRequirements | null {
  if (!r) return null;
  walk(r);
  const one = (x: JsonReader | null, pids: boolean): Resources | null => {
    if (!x) return null;
    walk(x);
    const generic = pids
      ? []
      : x.list('GenericResources').flatMap((g) => {
          walk(g);
          const d = g.obj('DiscreteResourceSpec');
          // An element holding nothing (a zero NamedResourceSpec) reserves nothing.
          if (!d) return [];
          walk(d);
          return [{ kind: d.str('Kind'), value: d.int('Value') }];
        });
    return { nanoCpus: x.int('NanoCPUs'), memoryBytes: x.int('MemoryBytes'), pids: pids ? x.int('Pids') : 0, generic };
  };
  return { limits: one(r.obj('Limits'), true), reservations: one(r.obj('Reservations'), false) };
}

const RESTART_CONDITIONS: Record<string, RestartCondition> = {
  '': RestartCondition.ANY,
  any: RestartCondition.ANY,
  'on-failure': RestartCondition.ON_FAILURE,
  none: RestartCondition.NONE,
};

function restartFromDocker(r: JsonReader | null): RestartPolicy | null {
  if (!r) return null;
  walk(r);
  const delay = r.o.Delay;
  return {
    condition: oneOf(r, 'Condition', RESTART_CONDITIONS, 'none, on-failure or any'),
    // SwarmKit waits its default delay when the policy names none (and no delay only when Delay is 0).
    delayMs: delay === null || delay === undefined ? DEFAULT_RESTART.delayMs : r.duration('Delay'),
    maxAttempts: r.uint('MaxAttempts'),
    windowMs: r.duration('Window'),
  };
}

function placementFromDocker(r: JsonReader | null): Placement | null {
  if (!r) return null;
  walk(r);
  return {
    constraints: r.strs('Constraints'),
    preferences: r.list('Preferences').map((p) => {
      walk(p);
      const s = p.obj('Spread');
      if (!s) throw new UsageError(`${p.at('Spread')} is required: spread is the only placement preference`, { field: p.at('Spread') });
      walk(s);
      return { spread: s.str('SpreadDescriptor') };
    }),
    maxReplicas: r.uint('MaxReplicas'),
    platforms: r.list('Platforms').map((p) => {
      walk(p);
      return { os: p.str('OS'), architecture: p.str('Architecture') };
    }),
  };
}

const FAILURE_ACTIONS: Record<string, UpdateFailureAction> = {
  '': UpdateFailureAction.PAUSE,
  pause: UpdateFailureAction.PAUSE,
  continue: UpdateFailureAction.CONTINUE,
  rollback: UpdateFailureAction.ROLLBACK,
};
const ORDERS: Record<string, UpdateOrder> = {
  '': UpdateOrder.STOP_FIRST,
  'stop-first': UpdateOrder.STOP_FIRST,
  'start-first': UpdateOrder.START_FIRST,
};

function updateFromDocker(r: JsonReader | null): UpdateConfig | null {
  if (!r) return null;
  walk(r);
  const monitor = r.duration('Monitor');
  return {
    parallelism: r.uint('Parallelism'),
    delayMs: r.duration('Delay'),
    failureAction: oneOf(r, 'FailureAction', FAILURE_ACTIONS, 'pause, continue or rollback'),
    // Docker cannot send a zero monitor (omitempty): 0 is SwarmKit's default.
    monitorMs: monitor || DEFAULT_UPDATE.monitorMs,
    maxFailureRatio: r.float('MaxFailureRatio'),
    order: oneOf(r, 'Order', ORDERS, 'stop-first or start-first'),
  };
}

const PROTOCOLS: Record<string, PortProtocol> = {
  '': PortProtocol.TCP,
  tcp: PortProtocol.TCP,
  udp: PortProtocol.UDP,
  sctp: PortProtocol.SCTP,
};
const PUBLISH_MODES: Record<string, PublishMode> = { '': PublishMode.INGRESS, ingress: PublishMode.INGRESS, host: PublishMode.HOST };

function endpointFromDocker(r: JsonReader | null): EndpointSpec | null {
  if (!r) return null;
  walk(r);
  const mode = r.str('Mode');
  if (mode !== '' && mode !== 'vip' && mode !== 'dnsrr')
    throw new UsageError(`EndpointSpec.Mode: invalid resolution mode: ${short(mode)}: give vip or dnsrr`, { field: 'EndpointSpec.Mode' });
  return {
    mode: mode === 'dnsrr' ? EndpointMode.DNSRR : EndpointMode.VIP,
    ports: r.list('Ports').map((p) => {
      walk(p);
      return {
        name: p.str('Name'),
        protocol: oneOf(p, 'Protocol', PROTOCOLS, 'tcp, udp or sctp'),
        targetPort: p.uint('TargetPort'),
        publishedPort: p.uint('PublishedPort'),
        publishMode: oneOf(p, 'PublishMode', PUBLISH_MODES, 'ingress or host'),
      };
    }),
  };
}

const MOUNT_TYPES: Record<string, MountType> = { bind: MountType.BIND, volume: MountType.VOLUME, tmpfs: MountType.TMPFS };

function mountFromDocker(m: JsonReader): Mount {
  walk(m);
  const type = m.str('Type');
  if (!Object.hasOwn(MOUNT_TYPES, type)) {
    if (['npipe', 'cluster', 'image'].includes(type)) throw refusal(m.at('Type'), `"${type}": tsswarm mounts bind, volume and tmpfs only`);
    throw new UsageError(`${m.at('Type')} must be bind, volume or tmpfs (got ${short(type)})`, { field: m.at('Type') });
  }
  const consistency = m.str('Consistency');
  if (consistency !== '' && consistency !== 'default')
    throw refusal(m.at('Consistency'), `"${consistency}": mount consistency applies to Docker Desktop only; leave it out`);
  const bind = m.obj('BindOptions');
  walk(bind);
  const propagation = bind?.str('Propagation') ?? '';
  if (propagation !== '' && propagation !== 'rprivate')
    throw refusal(bind!.at('Propagation'), `"${propagation}": tsswarm bind mounts are rprivate`);
  const vol = m.obj('VolumeOptions');
  walk(vol);
  return {
    type: MOUNT_TYPES[type]!,
    source: m.str('Source'),
    target: m.str('Target'),
    readOnly: m.bool('ReadOnly'),
    volumeLabels: vol?.strMap('Labels') ?? {},
    volumeNocopy: vol?.bool('NoCopy') ?? false,
  };
}

function fileTargetFromDocker(r: JsonReader): FileTarget | null {
  const f = r.obj('File');
  if (!f) return null;
  walk(f);
  return { name: f.str('Name'), uid: f.str('UID'), gid: f.str('GID'), mode: f.uint('Mode') };
}

const SECCOMP: Record<string, SeccompMode> = {
  '': SeccompMode.SECCOMP_DEFAULT,
  default: SeccompMode.SECCOMP_DEFAULT,
  unconfined: SeccompMode.SECCOMP_UNCONFINED,
};

function containerFromDocker(r: JsonReader, ctx: FromDockerContext): ContainerSpec {
  walk(r);
  const isolation = r.str('Isolation');
  if (isolation !== '' && isolation !== 'default')
    throw refusal(r.at('Isolation'), `"${isolation}": Linux containers have only the default isolation`);
  const priv = r.obj('Privileges');
  walk(priv);
  const seccomp = priv?.obj('Seccomp') ?? null;
  walk(seccomp);
  const seccompMode = seccomp?.str('Mode') ?? '';
  if (seccompMode === 'custom') throw refusal(seccomp!.at('Mode'), '"custom": custom seccomp profiles; give default or unconfined');
  const health = r.obj('Healthcheck');
  walk(health);
  const dns = r.obj('DNSConfig');
  walk(dns);
  const healthcheck: HealthConfig | null = health && {
    test: health.strs('Test'),
    intervalMs: health.duration('Interval'),
    timeoutMs: health.duration('Timeout'),
    retries: health.uint('Retries'),
    startPeriodMs: health.duration('StartPeriod'),
    startIntervalMs: health.duration('StartInterval'),
  };
  return {
    image: r.str('Image'),
    command: r.strs('Command'),
    args: r.strs('Args'),
    env: r.strs('Env'),
    dir: r.str('Dir'),
    user: r.str('User'),
    hostname: r.str('Hostname'),
    labels: r.strMap('Labels'),
    mounts: r.list('Mounts').map(mountFromDocker),
    stopGracePeriodMs: r.duration('StopGracePeriod'),
    stopSignal: r.str('StopSignal'),
    tty: r.bool('TTY'),
    readOnly: r.bool('ReadOnly'),
    init: r.bool('Init'),
    healthcheck,
    secrets: r.list('Secrets').map((s): SecretReference => {
      walk(s);
      const ref = { id: s.str('SecretID'), name: s.str('SecretName') };
      const { id, name } = ctx.resolveSecret ? ctx.resolveSecret(ref) : ref;
      return { secretId: id, secretName: name, target: fileTargetFromDocker(s) };
    }),
    configs: r.list('Configs').map((s): ConfigReference => {
      walk(s);
      const ref = { id: s.str('ConfigID'), name: s.str('ConfigName') };
      const { id, name } = ctx.resolveConfig ? ctx.resolveConfig(ref) : ref;
      return { configId: id, configName: name, target: fileTargetFromDocker(s) };
    }),
    capabilityAdd: r.strs('CapabilityAdd'),
    capabilityDrop: r.strs('CapabilityDrop'),
    seccomp: oneOf(seccomp ?? new JsonReader({}, ''), 'Mode', SECCOMP, 'default, unconfined or custom'),
    noNewPrivileges: priv?.bool('NoNewPrivileges') ?? false,
    groups: r.strs('Groups'),
    sysctls: sysctlsFromDocker(r),
    ulimits: r.list('Ulimits').map((u) => {
      walk(u);
      const name = u.str('Name');
      if (!Object.hasOwn(ULIMIT_RESOURCES, name))
        throw new UsageError(`${u.at('Name')} must be one of ${Object.keys(ULIMIT_RESOURCES).join(', ')} (got ${short(name)})`, {
          field: u.at('Name'),
        });
      return { name, soft: u.int('Soft'), hard: u.int('Hard') };
    }),
    dnsConfig:
      dns && (dns.has('Nameservers') || dns.has('Search') || dns.has('Options'))
        ? { nameservers: dns.strs('Nameservers'), search: dns.strs('Search'), options: dns.strs('Options') }
        : null,
    hosts: r.strs('Hosts'),
    oomScoreAdj: r.int('OomScoreAdj'),
  };
}

/** Namespaced sysctls only, refused here by Docker's path (validation checks the rest of each value). */
function sysctlsFromDocker(r: JsonReader): Record<string, string> {
  const m = r.strMap('Sysctls');
  for (const k of Object.keys(m)) if (!isNamespacedSysctl(k)) checkSysctl(r.at('Sysctls'), k, m[k]!);
  return m;
}

// ------------------------------------------------------------------ ours → Docker

export interface ToDockerSpecOptions {
  /**
   * moby's `insertDefaults=true` (`docker service inspect`): Swarm's defaults
   * shown where the spec leaves a part out: UpdateConfig, RollbackConfig,
   * RestartPolicy, Resources and Placement ({}), StopGracePeriod (10s).
   */
  insertDefaults?: boolean;
}

const lower = <E extends Record<number, string>>(e: E, v: number, fallback: string): string => (e[v] ?? fallback).toLowerCase();
const nonEmpty = <T>(xs: readonly T[] | null | undefined): T[] | undefined => (xs?.length ? [...xs] : undefined);
const nonEmptyMap = (m: Record<string, string> | null | undefined): Record<string, string> | undefined =>
  m && Object.keys(m).length ? { ...m } : undefined;
const nz = (n: number | null | undefined): number | undefined => (n ? n : undefined);
/** Drops the keys whose value is undefined, as Go's omitempty: the JSON stays the same, and tests compare objects. */
function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as Array<keyof T>) if (o[k] === undefined) delete o[k];
  return o;
}

export function portToDocker(p: PortConfig): DockerPortConfig {
  return compact({
    Name: p.name || undefined,
    Protocol: lower(PortProtocol, p.protocol, 'tcp') as DockerPortConfig['Protocol'],
    TargetPort: nz(p.targetPort),
    PublishedPort: nz(p.publishedPort),
    PublishMode: lower(PublishMode, p.publishMode, 'ingress') as DockerPortConfig['PublishMode'],
  });
}

function endpointSpecToDocker(e: EndpointSpec | null | undefined): DockerEndpointSpec {
  if (!e) return {};
  return compact({ Mode: e.mode === EndpointMode.DNSRR ? 'dnsrr' : 'vip', Ports: nonEmpty(e.ports)?.map(portToDocker) });
}

function updateToDocker(u: UpdateConfig): DockerUpdateConfig {
  return compact({
    Parallelism: u.parallelism,
    Delay: nz(durationToDocker(u.delayMs)),
    FailureAction: lower(UpdateFailureAction, u.failureAction, 'pause') as DockerUpdateConfig['FailureAction'],
    Monitor: nz(durationToDocker(u.monitorMs)),
    MaxFailureRatio: u.maxFailureRatio,
    Order: (u.order === UpdateOrder.START_FIRST ? 'start-first' : 'stop-first') as DockerUpdateConfig['Order'],
  });
}

function restartToDocker(r: RestartPolicy): DockerRestartPolicy {
  return compact({
    Condition: ({ [RestartCondition.ANY]: 'any', [RestartCondition.ON_FAILURE]: 'on-failure', [RestartCondition.NONE]: 'none' } as const)[
      r.condition
    ],
    Delay: durationToDocker(r.delayMs),
    MaxAttempts: r.maxAttempts,
    Window: nz(durationToDocker(r.windowMs)),
  });
}

function mountToDocker(m: Mount): DockerMount {
  return compact({
    Type: lower(MountType, m.type, 'bind') as DockerMount['Type'],
    Source: m.source || undefined,
    Target: m.target || undefined,
    ReadOnly: m.readOnly || undefined,
    VolumeOptions:
      nonEmptyMap(m.volumeLabels) || m.volumeNocopy
        ? { ...(m.volumeNocopy ? { NoCopy: true } : {}), ...(nonEmptyMap(m.volumeLabels) ? { Labels: { ...m.volumeLabels } } : {}) }
        : undefined,
  });
}

function fileToDocker(t: FileTarget | null | undefined): DockerFileTarget | null {
  return t ? { Name: t.name, UID: t.uid, GID: t.gid, Mode: t.mode } : null;
}

function containerToDocker(c: ContainerSpec, o: ToDockerSpecOptions): DockerContainerSpec {
  const h = c.healthcheck;
  const privileged = c.noNewPrivileges || c.seccomp !== SeccompMode.SECCOMP_DEFAULT;
  return compact({
    Image: c.image || undefined,
    Labels: nonEmptyMap(c.labels),
    Command: nonEmpty(c.command),
    Args: nonEmpty(c.args),
    Hostname: c.hostname || undefined,
    Env: nonEmpty(c.env),
    Dir: c.dir || undefined,
    User: c.user || undefined,
    Privileges: privileged
      ? compact({
          CredentialSpec: null,
          SELinuxContext: null,
          Seccomp: c.seccomp === SeccompMode.SECCOMP_UNCONFINED ? { Mode: 'unconfined' as const } : undefined,
          NoNewPrivileges: c.noNewPrivileges,
        })
      : undefined,
    Init: c.init,
    StopSignal: c.stopSignal || undefined,
    TTY: c.tty || undefined,
    ReadOnly: c.readOnly || undefined,
    Mounts: nonEmpty(c.mounts)?.map(mountToDocker),
    StopGracePeriod: nz(durationToDocker(c.stopGracePeriodMs || (o.insertDefaults ? DEFAULT_STOP_GRACE_MS : 0))),
    Healthcheck: h
      ? compact({
          Test: nonEmpty(h.test),
          Interval: nz(durationToDocker(h.intervalMs)),
          Timeout: nz(durationToDocker(h.timeoutMs)),
          StartPeriod: nz(durationToDocker(h.startPeriodMs)),
          StartInterval: nz(durationToDocker(h.startIntervalMs ?? 0)),
          Retries: nz(h.retries),
        })
      : undefined,
    DNSConfig: c.dnsConfig
      ? compact({
          Nameservers: nonEmpty(c.dnsConfig.nameservers),
          Search: nonEmpty(c.dnsConfig.search),
          Options: nonEmpty(c.dnsConfig.options),
        })
      : {},
    Hosts: nonEmpty(c.hosts),
    Groups: nonEmpty(c.groups),
    Sysctls: nonEmptyMap(c.sysctls),
    Ulimits: nonEmpty(c.ulimits)?.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })),
    OomScoreAdj: nz(c.oomScoreAdj),
    Secrets: nonEmpty(c.secrets)?.map((s) => ({ File: fileToDocker(s.target), SecretID: s.secretId, SecretName: s.secretName })),
    Configs: nonEmpty(c.configs)?.map((s) =>
      compact({ File: fileToDocker(s.target) ?? undefined, ConfigID: s.configId, ConfigName: s.configName }),
    ),
    // moby's IsolationFromGRPC turns SwarmKit's unset isolation into "default", so dockerd always shows it.
    Isolation: 'default',
    CapabilityAdd: nonEmpty(c.capabilityAdd),
    CapabilityDrop: nonEmpty(c.capabilityDrop),
  });
}

export function taskSpecToDocker(t: TaskSpec, o: ToDockerSpecOptions = {}): DockerTaskSpec {
  const res = t.resources ?? (o.insertDefaults ? { limits: null, reservations: null } : null);
  const one = (x: Resources | null | undefined, pids: boolean) =>
    x
      ? compact({
          NanoCPUs: nz(x.nanoCpus),
          MemoryBytes: nz(x.memoryBytes),
          ...(pids ? { Pids: nz(x.pids) } : {}),
          GenericResources: nonEmpty(x.generic)?.map((g) => ({ DiscreteResourceSpec: { Kind: g.kind, Value: g.value } })),
        })
      : undefined;
  const restart = t.restart ?? (o.insertDefaults ? DEFAULT_RESTART : null);
  const p = t.placement ?? (o.insertDefaults ? { constraints: [], preferences: [], maxReplicas: 0, platforms: [] } : null);
  return compact({
    ContainerSpec: containerToDocker(t.container, o),
    Resources: res ? compact({ Limits: one(res.limits, true), Reservations: one(res.reservations, false) }) : undefined,
    RestartPolicy: restart ? restartToDocker(restart) : undefined,
    Placement: p
      ? compact({
          Constraints: nonEmpty(p.constraints),
          Preferences: nonEmpty(p.preferences)?.map((x) => ({ Spread: { SpreadDescriptor: x.spread } })),
          MaxReplicas: nz(p.maxReplicas),
          Platforms: nonEmpty(p.platforms)?.map((x) => ({ Architecture: x.architecture, OS: x.os })),
        })
      : undefined,
    Networks: nonEmpty(t.networks)?.map((n) => compact({ Target: n.target, Aliases: nonEmpty(n.aliases) })),
    ForceUpdate: t.forceUpdate,
    LogDriver: t.logDriver ? compact({ Name: t.logDriver.name, Options: nonEmptyMap(t.logDriver.options) }) : undefined,
    Runtime: 'container' as const,
  });
}

/**
 * tsswarm's ServiceSpec as Docker's: Labels always an object, Mode always
 * set (neither mode in ours reads as replicated with 0 replicas), Runtime
 * "container" as moby answers it, durations in nanoseconds.
 */
export function serviceSpecToDocker(spec: ServiceSpec, o: ToDockerSpecOptions = {}): DockerServiceSpec {
  // A job has no update config (every update of it is a new iteration): none is made up for it.
  const defaults = o.insertDefaults && !spec.replicatedJob && !spec.globalJob;
  const upd = spec.update ?? (defaults ? DEFAULT_UPDATE : null);
  const rb = spec.rollback ?? (defaults ? DEFAULT_UPDATE : null);
  return compact({
    Name: spec.name || undefined,
    Labels: { ...(spec.labels ?? {}) },
    TaskTemplate: taskSpecToDocker(spec.task, o),
    Mode: modeToDocker(spec),
    UpdateConfig: upd ? updateToDocker(upd) : undefined,
    RollbackConfig: rb ? updateToDocker(rb) : undefined,
    EndpointSpec: spec.endpoint ? endpointSpecToDocker(spec.endpoint) : undefined,
  });
}

function modeToDocker(spec: ServiceSpec): DockerServiceSpec['Mode'] {
  if (spec.global) return { Global: {} };
  if (spec.globalJob) return { GlobalJob: {} };
  const j = spec.replicatedJob;
  if (j) return { ReplicatedJob: { MaxConcurrent: j.maxConcurrent, TotalCompletions: j.totalCompletions } };
  return { Replicated: { Replicas: spec.replicated?.replicas ?? 0 } };
}

const UPDATE_STATES: Partial<Record<UpdateState, DockerUpdateState>> = {
  [UpdateState.UPDATING]: 'updating',
  [UpdateState.PAUSED]: 'paused',
  [UpdateState.COMPLETED]: 'completed',
  [UpdateState.ROLLBACK_STARTED]: 'rollback_started',
  [UpdateState.ROLLBACK_PAUSED]: 'rollback_paused',
  [UpdateState.ROLLBACK_COMPLETED]: 'rollback_completed',
};

/** Our update state as Docker's word; UPDATE_UNKNOWN has none (moby leaves State empty too). */
export function updateStateToDocker(s: UpdateState): DockerUpdateState | undefined {
  return UPDATE_STATES[s];
}

export interface ToDockerServiceOptions extends ToDockerSpecOptions {
  /** `status=true` (API ≥ 1.41): the task counts the route computed. */
  status?: DockerServiceStatus;
}

/** A stored Service as GET /services answers it. */
export function serviceToDocker(s: Service, o: ToDockerServiceOptions = {}): DockerService {
  const u = s.updateStatus;
  const ep = s.endpoint;
  return compact({
    ID: s.meta.id,
    Version: { Index: s.meta.version },
    CreatedAt: timeToDocker(s.meta.createdAt),
    UpdatedAt: timeToDocker(s.meta.updatedAt),
    Spec: serviceSpecToDocker(s.spec, o),
    PreviousSpec: s.previousSpec ? serviceSpecToDocker(s.previousSpec, o) : undefined,
    Endpoint: compact({
      Spec: endpointSpecToDocker(ep?.spec),
      Ports: nonEmpty(ep?.ports)?.map(portToDocker),
      VirtualIPs: nonEmpty(ep?.virtualIps)?.map((v) => ({ NetworkID: v.networkId, Addr: v.addr })),
    }),
    UpdateStatus: u
      ? compact({
          State: updateStateToDocker(u.state),
          StartedAt: u.startedAt ? timeToDocker(u.startedAt) : undefined,
          CompletedAt: u.completedAt ? timeToDocker(u.completedAt) : undefined,
          Message: u.message || undefined,
        })
      : undefined,
    ServiceStatus: o.status ? { ...o.status } : undefined,
    JobStatus: s.jobStatus
      ? { JobIteration: { Index: s.jobStatus.jobIteration }, LastExecution: timeToDocker(s.jobStatus.lastExecution) }
      : undefined,
  });
}

/**
 * `ServiceStatus` as SwarmKit's ListServiceStatuses counts it (what `docker
 * service ls` shows as REPLICAS): running = the service's tasks whose state
 * is running, whatever their desired state; desired = the replicas, or for a
 * global service its tasks whose desired state is running; for a job, the
 * tasks that may run now and those of its current iteration that completed
 * (spec/jobs.ts). `tasks`: every task of the service.
 */
export function serviceStatusOf(s: Service, tasks: Iterable<Task>): DockerServiceStatus {
  if (s.spec.replicatedJob || s.spec.globalJob) {
    const list = [...tasks];
    const j = jobCounts(s, list);
    return {
      RunningTasks: list.filter((t) => t.status?.state === TaskState.RUNNING).length,
      DesiredTasks: j.desired,
      CompletedTasks: j.completed,
    };
  }
  const st: DockerServiceStatus = {
    RunningTasks: 0,
    DesiredTasks: s.spec.global ? 0 : (s.spec.replicated?.replicas ?? 0),
    CompletedTasks: 0,
  };
  for (const t of tasks) {
    if (t.status?.state === TaskState.RUNNING) st.RunningTasks++;
    if (s.spec.global && t.desiredState === TaskState.RUNNING) st.DesiredTasks++;
  }
  return st;
}

// ------------------------------------------------------------------ our field paths in Docker's words

const DOCKER_NAMES: Record<string, string> = {
  name: 'Name',
  labels: 'Labels',
  task: 'TaskTemplate',
  container: 'ContainerSpec',
  image: 'Image',
  command: 'Command',
  args: 'Args',
  env: 'Env',
  dir: 'Dir',
  user: 'User',
  hostname: 'Hostname',
  mounts: 'Mounts',
  type: 'Type',
  source: 'Source',
  target: 'Target',
  readOnly: 'ReadOnly',
  volumeLabels: 'VolumeOptions.Labels',
  volumeNocopy: 'VolumeOptions.NoCopy',
  stopGracePeriodMs: 'StopGracePeriod',
  stopSignal: 'StopSignal',
  tty: 'TTY',
  init: 'Init',
  healthcheck: 'Healthcheck',
  test: 'Test',
  intervalMs: 'Interval',
  timeoutMs: 'Timeout',
  retries: 'Retries',
  startPeriodMs: 'StartPeriod',
  secrets: 'Secrets',
  configs: 'Configs',
  secretId: 'SecretID',
  secretName: 'SecretName',
  configId: 'ConfigID',
  configName: 'ConfigName',
  uid: 'UID',
  gid: 'GID',
  capabilityAdd: 'CapabilityAdd',
  capabilityDrop: 'CapabilityDrop',
  seccomp: 'Privileges.Seccomp.Mode',
  noNewPrivileges: 'Privileges.NoNewPrivileges',
  resources: 'Resources',
  limits: 'Limits',
  reservations: 'Reservations',
  nanoCpus: 'NanoCPUs',
  memoryBytes: 'MemoryBytes',
  pids: 'Pids',
  restart: 'RestartPolicy',
  condition: 'Condition',
  delayMs: 'Delay',
  maxAttempts: 'MaxAttempts',
  windowMs: 'Window',
  placement: 'Placement',
  constraints: 'Constraints',
  preferences: 'Preferences',
  spread: 'Spread.SpreadDescriptor',
  maxReplicas: 'MaxReplicas',
  platforms: 'Platforms',
  networks: 'Networks',
  aliases: 'Aliases',
  forceUpdate: 'ForceUpdate',
  logDriver: 'LogDriver',
  mode: 'Mode',
  replicated: 'Replicated',
  replicas: 'Replicas',
  replicatedJob: 'ReplicatedJob',
  maxConcurrent: 'MaxConcurrent',
  totalCompletions: 'TotalCompletions',
  globalJob: 'GlobalJob',
  update: 'UpdateConfig',
  rollback: 'RollbackConfig',
  parallelism: 'Parallelism',
  failureAction: 'FailureAction',
  monitorMs: 'Monitor',
  maxFailureRatio: 'MaxFailureRatio',
  order: 'Order',
  endpoint: 'EndpointSpec',
  ports: 'Ports',
  protocol: 'Protocol',
  targetPort: 'TargetPort',
  publishedPort: 'PublishedPort',
  publishMode: 'PublishMode',
};

/**
 * One of our spec field paths (`spec.task.container.secrets[0].target.name`)
 * in Docker's words (`TaskTemplate.ContainerSpec.Secrets[0].File.Name`), for
 * errors answered to a Docker client; a path it does not know is returned as
 * it is.
 */
export function dockerFieldPath(path: string): string {
  if (!path.startsWith('spec.')) return path;
  const parts = path.slice('spec.'.length).split('.');
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const m = /^([A-Za-z]+)((?:\[\d+\])*)$/.exec(parts[i]!);
    if (!m) return path;
    const [, name, index] = m;
    // A secret's or config's target is Docker's File; a mount's or network's stays Target.
    const fileTarget = name === 'target' && /^(secrets|configs)\[/.test(parts[i - 1] ?? '');
    const d = fileTarget ? 'File' : DOCKER_NAMES[name!];
    if (!d) return path;
    out.push(d + index);
  }
  return out.join('.');
}

/** A validation message (`spec.task.container.env[0] "x" is not KEY=VALUE ...`) with its leading field path in Docker's words. */
export function dockerMessage(message: string): string {
  return message.replace(/^spec\.[A-Za-z0-9_.[\]]*[A-Za-z\]]/, (p) => dockerFieldPath(p));
}
