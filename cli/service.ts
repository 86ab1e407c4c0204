// `tsswarm service create|ls|ps|inspect|update|scale|rollback|rm|logs|exec`,
// in the docker CLI's spirit. Command lines become specs in pure functions
// (serviceCreateSpec, serviceUpdateSpec), so flag handling is tested without a
// daemon; the commands call the Control API on the local daemon's socket and,
// unless --detach, follow the tasks with cli/progress.ts.
import { normalizeCapability } from '../lib/capabilities.js';
import { TsswarmError, UsageError } from '../lib/errors.js';
import {
  DEFAULT_RESTART,
  DEFAULT_UPDATE,
  parseConstraint,
  parseSpreadPreference,
  plainSpec,
  SPEC_LIMITS,
  validateServiceSpec,
} from '../spec/index.js';
import type {
  ExecRequest,
  ListServicesResponse,
  LogChunk,
  ServiceLogsRequest,
  ServiceResponse,
  ServiceSummary,
} from '../proto/gen/control.js';
import {
  type ConfigReference,
  ContainerSpec,
  EndpointMode,
  SeccompMode,
  type HealthConfig,
  type LogDriver,
  type Mount,
  MountType,
  type NetworkAttachmentConfig,
  type Node,
  type PortConfig,
  PortProtocol,
  PublishMode,
  type Resources,
  RestartCondition,
  type SecretReference,
  Service,
  ServiceSpec,
  Task,
  TaskSpec,
  TaskState,
  type UpdateConfig,
  UpdateFailureAction,
  UpdateOrder,
  UpdateState,
} from '../proto/gen/objects.js';
import { type FlagDefs, oneOf, parseArgs, wholeNumber } from './args.js';
import { controlApi, controlRead, controlStream, daemonApi } from './client.js';
import { type Command, forEachArg, group, type Io, leaf } from './command.js';
import { type Operation, type Snapshot, watchProgress } from './progress.js';
import { ago, table } from './table.js';
import { filtersFromFlags, formatChoice, renderInspect, renderList, SERVICE_FIELDS, TASK_FIELDS } from './format.js';
import { serviceFilter, taskFilter } from '../spec/docker/filters.js';
import { serviceToDocker } from '../spec/docker/service.js';
import { parseProtocol, protocolName } from '../lib/ports.js';
import { applyPin, resolvePin } from './resolve-image.js';
import { dockerConfigPath, encodedAuthFor, imageRegistry, readDockerConfig } from './registry-auth.js';
import { EMPTY_REGISTRY_AUTH } from '../spec/docker/distribution.js';
import { LogDriverError, logPolicy, MAX_LOG_TAIL, parseLogOpts, parseLogTime } from '../spec/log-driver.js';
import { isNoNetwork, refusedPredefined } from '../spec/predefined-networks.js';
import {
  checkDnsOption,
  checkDnsSearch,
  checkDnsServer,
  checkGroup,
  checkOomScoreAdj,
  formatUlimit,
  parseExtraHost,
  parseGenericResource,
  parseSysctl,
  parseUlimit,
  removeHosts,
} from '../spec/container-options.js';
import { parseEnvFile, readEnvFileText } from './env-file.js';

// ------------------------------------------------------------------ value parsers

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go/docker durations: `5s`, `1m30s`, `300ms`, `1.5h`, `0` → milliseconds (≥ 0). */
export function parseDuration(field: string, v: string): number {
  const s = v.trim();
  const fail = (): UsageError => UsageError.invalid(field, 'a duration such as 5s, 1m30s or 300ms', v);
  if (s === '0') return 0;
  if (!/^(\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))*$/.test(s)) throw fail();
  let ms = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * durationUnits[m[2]!]!;
  if (!Number.isFinite(ms)) throw fail();
  // Longer than Node's longest timer (about 24.8 days) would fire at once: the server refuses it too.
  if (ms > SPEC_LIMITS.durationMs) throw UsageError.invalid(field, `a duration of at most ${SPEC_LIMITS.durationMs}ms (about 24 days)`, v);
  return Math.round(ms);
}

/** docker's sizes: `64M`, `1g`, `512k`, `1.5GiB`, `1048576` (bytes); multiples of 1024. */
export function parseSize(field: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v.trim());
  if (!m) throw UsageError.invalid(field, 'a size such as 64M, 1.5g or 1048576 (bytes)', v);
  const unit = { k: 1, m: 2, g: 3, t: 4, p: 5 }[(m[2] ?? '').toLowerCase() as 'k'] ?? 0;
  return Math.round(Number(m[1]) * 1024 ** unit);
}

/** A memory flag: a size of at most 1 PiB (2^50 bytes), the server's limit. */
function memorySize(field: string, v: string): number {
  const n = parseSize(field, v);
  if (n > SPEC_LIMITS.memoryBytes) throw UsageError.invalid(field, 'a size of at most 1P (2^50 bytes)', v);
  return n;
}

/** `0.5` CPUs → 500000000 nano CPUs. */
export function parseCpus(field: string, v: string): number {
  const n = /^\d*\.?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!(n > 0)) throw UsageError.invalid(field, 'a number of CPUs > 0 such as 0.5 or 2', v);
  const max = SPEC_LIMITS.nanoCpus / 1e9;
  if (n > max) throw UsageError.invalid(field, `a number of CPUs from 0 to ${max}`, v);
  return Math.round(n * 1e9);
}

/** One CSV record, with double quotes as in docker's `--mount "type=bind,src=/a b,dst=/x"`. */
export function splitCsv(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quoted) {
      if (ch === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** The `key=value` items of one CSV record, keys lower-cased; a bare key (`readonly`) has no value; empty items are skipped. */
export function csvOptions(s: string): Array<[key: string, value: string | undefined]> {
  const out: Array<[string, string | undefined]> = [];
  for (const part of splitCsv(s)) {
    const item = part.trim();
    if (!item) continue;
    const eq = item.indexOf('=');
    out.push(eq < 0 ? [item.toLowerCase(), undefined] : [item.slice(0, eq).toLowerCase(), item.slice(eq + 1)]);
  }
  return out;
}

/** `type=bind,source=/srv,target=/data,readonly` (src/dst/destination/ro aliases; default type volume). */
export function parseMount(field: string, v: string): Mount {
  const m: Mount = { type: MountType.VOLUME, source: '', target: '', readOnly: false, volumeLabels: {}, volumeNocopy: false };
  for (const [key, val] of csvOptions(v)) {
    switch (key) {
      case 'type': {
        const t = { bind: MountType.BIND, volume: MountType.VOLUME, tmpfs: MountType.TMPFS }[val ?? ''];
        if (t === undefined)
          throw new UsageError(`${field} type must be bind, volume or tmpfs (got ${JSON.stringify(val ?? '')} in "${v}")`, { field });
        m.type = t;
        break;
      }
      case 'source':
      case 'src':
        m.source = val ?? '';
        break;
      case 'target':
      case 'destination':
      case 'dst':
        m.target = val ?? '';
        break;
      case 'readonly':
      case 'ro':
        if (val === undefined || val === 'true' || val === '1') m.readOnly = true;
        else if (val === 'false' || val === '0') m.readOnly = false;
        else throw new UsageError(`${field} ${key} must be true or false (got "${val}" in "${v}")`, { field });
        break;
      case 'volume-nocopy':
        // docker's: a new volume is not filled with the image's content at the target.
        if (val === undefined || val === 'true' || val === '1') m.volumeNocopy = true;
        else if (val === 'false' || val === '0') m.volumeNocopy = false;
        else throw new UsageError(`${field} volume-nocopy must be true or false (got "${val}" in "${v}")`, { field });
        break;
      case 'volume-label': {
        // docker's volume-label=KEY=VALUE (as `docker service create --mount`): kept on the mount, shown by inspect.
        const eq = (val ?? '').indexOf('=');
        const k = eq < 0 ? (val ?? '') : val!.slice(0, eq);
        if (!k) throw new UsageError(`${field} volume-label needs KEY=VALUE (got "${v}")`, { field });
        m.volumeLabels[k] = eq < 0 ? '' : val!.slice(eq + 1);
        break;
      }
      default:
        throw new UsageError(
          `${field}: unknown option "${key}" in "${v}": use type, source (src), target (dst), readonly (ro), volume-label, volume-nocopy`,
          { field },
        );
    }
  }
  if (!m.target) throw new UsageError(`${field} needs target=PATH, where the mount appears in the container (got "${v}")`, { field });
  if (m.type !== MountType.VOLUME && Object.keys(m.volumeLabels).length)
    throw new UsageError(`${field}: volume-label is for type=volume mounts only (got "${v}")`, { field });
  if (m.type !== MountType.VOLUME && m.volumeNocopy)
    throw new UsageError(`${field}: volume-nocopy is for type=volume mounts only (got "${v}")`, { field });
  if (m.type === MountType.TMPFS && m.source) throw new UsageError(`${field}: a tmpfs mount takes no source (got "${v}")`, { field });
  if (m.type === MountType.BIND && !m.source)
    throw new UsageError(`${field}: a bind mount needs source=/host/path (got "${v}")`, { field });
  return m;
}

/**
 * A published port: `published=8080,target=80[,protocol=tcp|udp|sctp][,mode=ingress|host]`
 * or docker's short form `[PUBLISHED:]TARGET[/PROTOCOL]` (ingress mode; no published port: one from 30000-32767).
 */
export function parsePublish(field: string, v: string): PortConfig {
  const p: PortConfig = { name: '', protocol: PortProtocol.TCP, targetPort: 0, publishedPort: 0, publishMode: PublishMode.INGRESS };
  const portNumber = (what: string, x: string): number => {
    const n = /^\d+$/.test(x.trim()) ? Number(x) : NaN;
    if (!(n >= 1 && n <= 65535)) throw new UsageError(`${field} ${what} must be a port from 1 to 65535 (got "${x}" in "${v}")`, { field });
    return n;
  };
  const protocol = (x: string): PortProtocol => {
    const pr = parseProtocol(x);
    if (pr === undefined) throw new UsageError(`${field} protocol must be tcp, udp or sctp (got "${x}" in "${v}")`, { field });
    return pr;
  };
  if (v.includes('=')) {
    for (const [key, value] of csvOptions(v)) {
      const val = value ?? '';
      if (key === 'published') p.publishedPort = portNumber('published', val);
      else if (key === 'target') p.targetPort = portNumber('target', val);
      else if (key === 'protocol') p.protocol = protocol(val);
      else if (key === 'mode') {
        const m = { ingress: PublishMode.INGRESS, host: PublishMode.HOST }[val.toLowerCase()];
        if (m === undefined) throw new UsageError(`${field} mode must be ingress or host (got "${val}" in "${v}")`, { field });
        p.publishMode = m;
      } else throw new UsageError(`${field}: unknown option "${key}" in "${v}": use published, target, protocol, mode`, { field });
    }
    if (!p.targetPort) throw new UsageError(`${field} needs target=PORT, the port the container listens on (got "${v}")`, { field });
    return p;
  }
  const m = /^(?:([^:/]*):)?([^:/]+)(?:\/(\w+))?$/.exec(v.trim());
  if (!m)
    throw UsageError.invalid(
      field,
      'published=P,target=T[,protocol=tcp|udp][,mode=ingress|host] or [PUBLISHED:]TARGET[/PROTOCOL], e.g. 8080:80',
      v,
    );
  if (m[1]) p.publishedPort = portNumber('published port', m[1]);
  p.targetPort = portNumber('target port', m[2]!);
  if (m[3]) p.protocol = protocol(m[3]);
  return p;
}

/** `--network NAME` or `--network name=NAME,alias=A[,alias=B]`. */
export function parseNetworkFlag(field: string, v: string): NetworkAttachmentConfig {
  if (!v.includes('=')) {
    if (!v.trim()) throw UsageError.invalid(field, 'a network name or id', v);
    return { target: v.trim(), aliases: [] };
  }
  const n: NetworkAttachmentConfig = { target: '', aliases: [] };
  for (const [key, value] of csvOptions(v)) {
    const val = value ?? '';
    if (key === 'name' || key === 'target') n.target = val;
    else if (key === 'alias') n.aliases.push(val);
    else throw new UsageError(`${field}: unknown option "${key}" in "${v}": use name and alias`, { field });
  }
  if (!n.target) throw new UsageError(`${field} needs name=NETWORK (got "${v}")`, { field });
  return n;
}

/**
 * `--secret NAME` or `--secret source=NAME,target=FILE,uid=U,gid=G,mode=0400`
 * (src alias), and `--config` the same: docker's forms. The target defaults
 * to the source for a secret (a name under /run/secrets/) and to `/<source>`
 * for a config; the mode is octal (0400 or 400). uid, gid and mode left out
 * get the managers' defaults (0, 0, 0444).
 */
export function parseFileRef(kind: 'secret', field: string, v: string): SecretReference;
export function parseFileRef(kind: 'config', field: string, v: string): ConfigReference;
export function parseFileRef(kind: 'secret' | 'config', field: string, v: string): SecretReference | ConfigReference {
  const t = { name: '', uid: '', gid: '', mode: 0 };
  let source = '';
  if (!v.includes('=')) source = v.trim();
  else {
    for (const [key, value] of csvOptions(v)) {
      const val = (value ?? '').trim();
      if (key === 'source' || key === 'src') source = val;
      else if (key === 'target') t.name = val;
      else if (key === 'uid' || key === 'gid') {
        if (!/^\d+$/.test(val)) throw UsageError.invalid(`${field} ${key}`, `a numeric ${key} such as ${key}=1000`, val);
        t[key] = val;
      } else if (key === 'mode') {
        const m = /^(?:0o?)?([0-7]{1,4})$/i.exec(val);
        const mode = m ? Number.parseInt(m[1]!, 8) : NaN;
        if (!(mode > 0 && mode <= 0o777))
          throw UsageError.invalid(`${field} mode`, 'an octal file mode from 0001 to 0777, e.g. mode=0400', val);
        t.mode = mode;
      } else throw new UsageError(`${field}: unknown option "${key}" in "${v}": use source, target, uid, gid and mode`, { field });
    }
  }
  if (!source)
    throw new UsageError(`${field} needs the ${kind}'s name: ${field} NAME or ${field} source=NAME[,target=...] (got "${v}")`, { field });
  if (!t.name) t.name = kind === 'secret' ? source : `/${source}`;
  return kind === 'secret' ? { secretId: '', secretName: source, target: t } : { configId: '', configName: source, target: t };
}

const portKey = (p: PortConfig): string =>
  p.publishedPort ? `${p.protocol}/published/${p.publishedPort}` : `${p.protocol}/target/${p.targetPort}/${p.publishMode}`;

/** Splits a command line like a shell would (quotes and backslashes, no expansion): `--args "sh -c 'echo hi'"`. */
export function shellSplit(field: string, s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (q) {
      if (ch === q) q = null;
      else if (ch === '\\' && q === '"' && i + 1 < s.length) cur += s[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      q = ch;
      has = true;
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (q) throw new UsageError(`${field} has an unterminated ${q} quote (got ${JSON.stringify(s)})`, { field });
  if (has) out.push(cur);
  return out;
}

function keyValue(field: string, s: string): [string, string] {
  const eq = s.indexOf('=');
  if (eq === 0 || s === '') throw UsageError.invalid(field, 'KEY=VALUE or KEY', s);
  return eq < 0 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
}

/** `-e KEY=VALUE`, or `-e KEY` taking KEY from the CLI's environment (skipped when unset, as docker does). */
function envEntry(field: string, s: string, env: NodeJS.ProcessEnv): string | null {
  const eq = s.indexOf('=');
  if (eq === 0 || s === '' || /\s/.test(eq < 0 ? s : s.slice(0, eq))) throw UsageError.invalid(field, 'KEY=VALUE or KEY', s);
  if (eq > 0) return s;
  return env[s] === undefined ? null : `${s}=${env[s]}`;
}

const envKey = (e: string): string => (e.includes('=') ? e.slice(0, e.indexOf('=')) : e);

function ratio(field: string, v: string): number {
  const n = /^\d*\.?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!(n >= 0 && n <= 1)) throw UsageError.invalid(field, 'a number from 0 to 1', v);
  return n;
}

// ------------------------------------------------------------------ flags

const str = (valueName: string, description: string, short?: string) =>
  ({ type: 'string', valueName, description, ...(short ? { short } : {}) }) as const;
const many = (valueName: string, description: string, short?: string) =>
  ({ type: 'string', multiple: true, valueName, description, ...(short ? { short } : {}) }) as const;
const bool = (description: string, short?: string) => ({ type: 'boolean', description, ...(short ? { short } : {}) }) as const;
const optBool = (description: string, short?: string) =>
  ({ type: 'boolean', optional: true, description, ...(short ? { short } : {}) }) as const;

function updateConfigFlags<P extends 'update' | 'rollback'>(p: P) {
  const what = p === 'update' ? 'update' : 'rollback';
  return {
    [`${p}-parallelism`]: str('N', `Tasks changed at once during a ${what} (0: all at once; default 1)`),
    [`${p}-delay`]: str('DURATION', `Delay between ${what} batches (e.g. 10s)`),
    [`${p}-failure-action`]: str(
      'ACTION',
      p === 'update' ? 'On update failure: pause (default), continue or rollback' : 'On rollback failure: pause (default) or continue',
    ),
    [`${p}-monitor`]: str('DURATION', `How long each new task is watched for failure (default 5s)`),
    [`${p}-max-failure-ratio`]: str('RATIO', `Failure rate tolerated during a ${what} (0 to 1)`),
    [`${p}-order`]: str('ORDER', 'stop-first (default) or start-first'),
  } as Record<`${P}-${'parallelism' | 'delay' | 'failure-action' | 'monitor' | 'max-failure-ratio' | 'order'}`, ReturnType<typeof str>>;
}

/** Flags create and update share. */
const specFlags = {
  name: str('NAME', 'Service name'),
  replicas: str('N', 'Number of tasks (replicated mode), or of completions (replicated-job mode)'),
  mode: str('MODE', 'replicated (default), global, replicated-job or global-job'),
  'max-concurrent': str('N', 'Job tasks run at once (replicated-job mode; default: --replicas)'),
  env: many('KEY=VALUE', 'Set an environment variable (KEY alone: take it from this shell)', 'e'),
  workdir: str('DIR', 'Working directory inside the container', 'w'),
  user: str('USER[:GROUP]', 'User (name or uid, optional group)', 'u'),
  hostname: str('NAME', 'Container hostname'),
  entrypoint: str('CMD', 'Override the image entrypoint'),
  mount: many(
    'SPEC',
    'Attach a mount: type=bind|volume|tmpfs,source=...,target=...[,readonly][,volume-label=KEY=VALUE][,volume-nocopy]; a volume without source is anonymous',
  ),
  constraint: many('EXPR', 'Placement constraint, e.g. node.role==worker'),
  network: many('NETWORK', 'Attach to a network: NAME, or name=NAME,alias=ALIAS'),
  publish: many('SPEC', 'Publish a port: published=8080,target=80[,protocol=tcp|udp][,mode=ingress|host], or 8080:80[/udp]', 'p'),
  secret: many('SECRET', 'Give the tasks a secret: NAME, or source=NAME[,target=FILE][,uid=0][,gid=0][,mode=0444] (at /run/secrets/FILE)'),
  config: many('CONFIG', 'Give the tasks a config: NAME, or source=NAME[,target=/PATH][,uid=0][,gid=0][,mode=0444] (default /NAME)'),
  'endpoint-mode': str('MODE', 'vip (default: a virtual IP per network) or dnsrr (DNS round robin)'),
  'placement-pref': many('PREF', 'Placement preference: spread=node.labels.KEY'),
  'max-replicas': str('N', 'Maximum tasks per node (0: no limit)'),
  'replicas-max-per-node': str('N', "Docker's spelling of --max-replicas"),
  'reserve-cpu': str('CPUS', 'Reserve CPUs, e.g. 0.5'),
  'reserve-memory': str('SIZE', 'Reserve memory, e.g. 64M'),
  'limit-cpu': str('CPUS', 'Limit CPUs, e.g. 1.5'),
  'limit-memory': str('SIZE', 'Limit memory, e.g. 256M'),
  'limit-pids': str('N', 'Limit the number of processes (0: no limit)'),
  'restart-condition': str('COND', 'Restart when: none, on-failure or any (default; on-failure for jobs)'),
  'restart-delay': str('DURATION', 'Delay between restart attempts (default 5s)'),
  'restart-max-attempts': str('N', 'Maximum restarts before giving up (0: no limit)'),
  'restart-window': str('DURATION', 'Window used to count restart attempts (0: forever)'),
  ...updateConfigFlags('update'),
  ...updateConfigFlags('rollback'),
  'health-cmd': str('CMD', 'Command (run by /bin/sh) that checks health'),
  'health-interval': str('DURATION', 'Time between health checks'),
  'health-timeout': str('DURATION', 'Maximum time a check may take'),
  'health-retries': str('N', 'Consecutive failures that make a task unhealthy'),
  'health-start-period': str('DURATION', 'Start period during which failures do not count'),
  'health-start-interval': str('DURATION', 'Time between health checks during the start period'),
  'no-healthcheck': bool("Disable the image's health check"),
  'stop-grace-period': str('DURATION', 'Time to wait before killing a task being stopped (default 10s)'),
  'stop-signal': str('SIGNAL', 'Signal that stops a task'),
  label: many('KEY=VALUE', 'Service label', 'l'),
  'container-label': many('KEY=VALUE', 'Container label'),
  // Optional booleans: `service update --init=false` turns the setting off, no flag leaves it as it is.
  init: optBool('Run an init (tini) as PID 1 in each container; --init=false to turn it off'),
  'read-only': optBool("Mount the container's root filesystem read-only; --read-only=false to turn it off"),
  'cap-add': many('CAP', 'Add a Linux capability to the default set (NET_ADMIN, CAP_SYS_PTRACE, or ALL)'),
  'cap-drop': many('CAP', 'Drop a Linux capability from the default set (CHOWN, or ALL)'),
  'security-opt': many('OPT', 'Security option: seccomp=unconfined, seccomp=builtin, no-new-privileges[=true|false]'),
  tty: optBool('Allocate a pseudo-TTY (stdin, stdout and stderr are a terminal); --tty=false to turn it off', 't'),
  'log-driver': str('DRIVER', 'Where task output goes: json-file or local (rotated files on the node), or none'),
  'log-opt': many('KEY=VALUE', 'Log driver option: max-size=SIZE (default 20m), max-file=N (default 5), compress=false'),
  'env-file': many('FILE', 'Read environment variables from a file (KEY=VALUE lines; --env wins)'),
  sysctl: many('KEY=VALUE', 'Set a namespaced kernel parameter (net.*, fs.mqueue.*, kernel.shm*, kernel.msg*, kernel.sem)'),
  ulimit: many('NAME=SOFT[:HARD]', 'Set a process limit, e.g. nofile=1024:2048 (-1: unlimited)'),
  dns: many('IP', 'Nameserver for names outside the cluster'),
  'dns-option': many('OPT', 'resolv.conf option, e.g. ndots:2'),
  'dns-search': many('DOMAIN', 'resolv.conf search domain'),
  host: many('HOST:IP', 'Add a line to /etc/hosts'),
  group: many('GROUP', 'Add a supplementary group (name in the image, or gid)'),
  'oom-score-adj': str('N', "Tune the container's OOM preference (-1000 to 1000)"),
  'generic-resource': many('KIND=COUNT', 'Reserve generic resources a node advertises, e.g. gpu=2'),
  detach: bool('Exit at once instead of waiting for the service to converge', 'd'),
  quiet: bool('Suppress progress output', 'q'),
  'with-registry-auth': bool(
    "Send the credentials of `tsswarm login` for the image's registry to the nodes that pull it (kept with the service, never shown)",
  ),
  'no-resolve-image': bool("Do not ask the registry for the image's digest to pin it (image:tag@sha256:…) in the spec"),
} as const satisfies FlagDefs;

const updateOnlyFlags = {
  image: str('IMAGE', 'New image'),
  args: str('"CMD ARG..."', 'New command arguments (one string, split like a shell)'),
  'env-add': many('KEY=VALUE', 'Add or update an environment variable'),
  'env-rm': many('KEY', 'Remove an environment variable'),
  'mount-add': many('SPEC', 'Add or update a mount (by target)'),
  'mount-rm': many('TARGET', 'Remove the mount at this target'),
  'constraint-add': many('EXPR', 'Add a placement constraint'),
  'network-add': many('NETWORK', 'Attach to a network'),
  'network-rm': many('NETWORK', 'Detach from a network'),
  'publish-add': many('SPEC', 'Publish a port (as --publish)'),
  'publish-rm': many('TARGET[/PROTOCOL]', 'Stop publishing the ports of this target port'),
  'secret-add': many('SECRET', 'Add a secret (as --secret)'),
  'secret-rm': many('SECRET', 'Remove a secret, by name'),
  'config-add': many('CONFIG', 'Add a config (as --config)'),
  'config-rm': many('CONFIG', 'Remove a config, by name'),
  'constraint-rm': many('EXPR', 'Remove a placement constraint'),
  'placement-pref-add': many('PREF', 'Add a placement preference'),
  'placement-pref-rm': many('PREF', 'Remove a placement preference'),
  'label-add': many('KEY=VALUE', 'Add or update a service label'),
  'label-rm': many('KEY', 'Remove a service label'),
  'container-label-add': many('KEY=VALUE', 'Add or update a container label'),
  'container-label-rm': many('KEY', 'Remove a container label'),
  'sysctl-add': many('KEY=VALUE', 'Add or update a sysctl'),
  'sysctl-rm': many('KEY', 'Remove a sysctl'),
  'ulimit-add': many('NAME=SOFT[:HARD]', 'Add or update a ulimit'),
  'ulimit-rm': many('NAME', 'Remove a ulimit'),
  'dns-add': many('IP', 'Add a nameserver'),
  'dns-rm': many('IP', 'Remove a nameserver'),
  'dns-option-add': many('OPT', 'Add a resolv.conf option'),
  'dns-option-rm': many('OPT', 'Remove a resolv.conf option'),
  'dns-search-add': many('DOMAIN', 'Add a search domain'),
  'dns-search-rm': many('DOMAIN', 'Remove a search domain'),
  'host-add': many('HOST:IP', 'Add a line to /etc/hosts'),
  'host-rm': many('HOST[:IP]', 'Remove a host (every address of it, or the one given)'),
  'group-add': many('GROUP', 'Add a supplementary group'),
  'group-rm': many('GROUP', 'Remove a supplementary group'),
  'generic-resource-add': many('KIND=COUNT', 'Add or update a generic resource reservation'),
  'generic-resource-rm': many('KIND', 'Remove a generic resource reservation'),
  force: bool('Replace the tasks even if nothing changed'),
  rollback: bool('Roll back to the previous spec'),
} as const satisfies FlagDefs;

const updateFlags = { ...specFlags, ...updateOnlyFlags } as const;

/** The flag tables (create: `create`, updateOnly: what `update` adds), read by the flag-table test (test/cli/service-flags.test.ts). */
export const SERVICE_FLAG_TABLES = { create: specFlags, updateOnly: updateOnlyFlags } as const;

/** Parsed flags, loosely typed so that create and update share the code below. */
type Flags = Record<string, string | boolean | string[] | undefined>;
const s = (f: Flags, k: string): string | undefined => f[k] as string | undefined;
const l = (f: Flags, k: string): string[] => (f[k] as string[] | undefined) ?? [];
const b = (f: Flags, k: string): boolean => f[k] === true;

function resources(r: Resources | null | undefined): Resources {
  return { nanoCpus: r?.nanoCpus ?? 0, memoryBytes: r?.memoryBytes ?? 0, pids: r?.pids ?? 0, generic: [...(r?.generic ?? [])] };
}

function applyUpdateConfig(f: Flags, p: 'update' | 'rollback', cur: UpdateConfig | null | undefined): UpdateConfig | null | undefined {
  const keys = ['parallelism', 'delay', 'failure-action', 'monitor', 'max-failure-ratio', 'order'].map((k) => `${p}-${k}`);
  if (!keys.some((k) => s(f, k) !== undefined)) return cur;
  const u: UpdateConfig = { ...DEFAULT_UPDATE, ...(cur ?? {}) };
  const v = (k: string): string | undefined => s(f, `${p}-${k}`);
  if (v('parallelism') !== undefined) u.parallelism = wholeNumber(`--${p}-parallelism`, v('parallelism')!, { max: SPEC_LIMITS.replicas });
  if (v('delay') !== undefined) u.delayMs = parseDuration(`--${p}-delay`, v('delay')!);
  if (v('monitor') !== undefined) u.monitorMs = parseDuration(`--${p}-monitor`, v('monitor')!);
  if (v('max-failure-ratio') !== undefined) u.maxFailureRatio = ratio(`--${p}-max-failure-ratio`, v('max-failure-ratio')!);
  if (v('failure-action') !== undefined) {
    const choices = p === 'update' ? (['pause', 'continue', 'rollback'] as const) : (['pause', 'continue'] as const);
    const a = oneOf(`--${p}-failure-action`, v('failure-action')!, choices);
    u.failureAction = { pause: UpdateFailureAction.PAUSE, continue: UpdateFailureAction.CONTINUE, rollback: UpdateFailureAction.ROLLBACK }[
      a
    ];
  }
  if (v('order') !== undefined)
    u.order =
      oneOf(`--${p}-order`, v('order')!, ['stop-first', 'start-first'] as const) === 'start-first'
        ? UpdateOrder.START_FIRST
        : UpdateOrder.STOP_FIRST;
  return u;
}

/** --max-replicas or Docker's --replicas-max-per-node: one of them, with the name given (for errors). */
function maxReplicasFlag(f: Flags): [string, string | undefined] {
  const ours = s(f, 'max-replicas');
  const docker = s(f, 'replicas-max-per-node');
  if (ours !== undefined && docker !== undefined)
    throw new UsageError('--max-replicas and --replicas-max-per-node are the same setting: give one of them', {
      field: '--replicas-max-per-node',
    });
  return docker !== undefined ? ['--replicas-max-per-node', docker] : ['--max-replicas', ours];
}

/** Add-or-replace by key, keeping order. */
function upsert<T>(list: T[], items: T[], key: (t: T) => string): T[] {
  const out = [...list];
  for (const it of items) {
    const i = out.findIndex((x) => key(x) === key(it));
    if (i >= 0) out[i] = it;
    else out.push(it);
  }
  return out;
}

const MODES = ['replicated', 'global', 'replicated-job', 'global-job'] as const;
const UPDATE_CONFIG_FLAGS = (['update', 'rollback'] as const).flatMap((p) =>
  ['parallelism', 'delay', 'failure-action', 'monitor', 'max-failure-ratio', 'order'].map((k) => `${p}-${k}`),
);

/** The spec's mode in `--mode`'s words. */
export const modeOf = (s: ServiceSpec | null | undefined): (typeof MODES)[number] =>
  s?.replicatedJob ? 'replicated-job' : s?.globalJob ? 'global-job' : s?.global ? 'global' : 'replicated';

/**
 * `--mode`, `--replicas` and `--max-concurrent`, as docker's: a replicated
 * job's `--replicas` is its total completions and `--max-concurrent` defaults
 * to it (each 1 when left out); jobs take no update or rollback config, since
 * every update of a job starts a new iteration.
 */
function applyModeFlags(spec: ServiceSpec, f: Flags): void {
  const replicas = s(f, 'replicas');
  const concurrent = s(f, 'max-concurrent');
  const mode = s(f, 'mode') === undefined ? undefined : oneOf('--mode', s(f, 'mode')!, MODES);
  if (mode !== undefined && mode !== modeOf(spec)) {
    spec.replicated = spec.global = spec.replicatedJob = spec.globalJob = null;
    if (mode === 'global') spec.global = {};
    else if (mode === 'global-job') spec.globalJob = {};
    else if (mode === 'replicated-job') spec.replicatedJob = { totalCompletions: 1, maxConcurrent: 1 };
    else spec.replicated = { replicas: 1 };
  }
  const now = modeOf(spec);
  const how = mode !== undefined ? `--mode ${mode}` : `service ${spec.name} is ${now}`;
  if (replicas !== undefined && (now === 'global' || now === 'global-job'))
    throw new UsageError(`--replicas can only be used with replicated or replicated-job mode (${how})`, { field: '--replicas' });
  if (concurrent !== undefined && now !== 'replicated-job')
    throw new UsageError(`--max-concurrent can only be used with replicated-job mode (${how})`, { field: '--max-concurrent' });
  if (now === 'replicated-job' || now === 'global-job') {
    const k = UPDATE_CONFIG_FLAGS.find((x) => s(f, x) !== undefined);
    if (k)
      throw new UsageError(`--${k} cannot be used with jobs (${how}): every update of a job starts a new iteration of it`, {
        field: `--${k}`,
      });
  }
  const n = replicas === undefined ? undefined : wholeNumber('--replicas', replicas, { max: SPEC_LIMITS.replicas });
  if (now === 'replicated-job') {
    const j = (spec.replicatedJob ??= { totalCompletions: 1, maxConcurrent: 1 });
    if (n !== undefined) {
      j.totalCompletions = n;
      if (mode !== undefined && concurrent === undefined) j.maxConcurrent = n;
    }
    if (concurrent !== undefined) j.maxConcurrent = wholeNumber('--max-concurrent', concurrent, { max: SPEC_LIMITS.replicas });
  } else if (n !== undefined) spec.replicated = { replicas: n };
}

/**
 * Applies the flags create and update share to a (plain, mutable) spec: lists
 * are added to (replacing entries with the same key; update's `--env-add`
 * etc. do the same as `--env`), single values replace.
 */
function applySpecFlags(
  spec: ServiceSpec,
  f: Flags,
  env: NodeJS.ProcessEnv,
  ids?: ReadonlyMap<string, string>,
  readFile: ReadEnvFile = readEnvFileText,
): void {
  const task = (spec.task ??= TaskSpec.create());
  const c = (task.container ??= ContainerSpec.create());
  const both = (a: string, bName: string): [string, string[]][] => [
    [`--${a}`, l(f, a)],
    [`--${bName}`, l(f, bName)],
  ];

  if (s(f, 'name') !== undefined) spec.name = s(f, 'name')!;
  applyModeFlags(spec, f);

  // As the docker CLI: the files first, so that --env wins over them.
  for (const path of l(f, 'env-file')) c.env = upsert(c.env, parseEnvFile('--env-file', path, readFile('--env-file', path), env), envKey);
  for (const [field, vals] of both('env', 'env-add')) {
    const entries = vals.map((v) => envEntry(field, v, env)).filter((e): e is string => e !== null);
    c.env = upsert(c.env, entries, envKey);
  }
  if (s(f, 'workdir') !== undefined) {
    const w = s(f, 'workdir')!;
    if (w && !w.startsWith('/')) throw UsageError.invalid('--workdir', 'an absolute path', w);
    c.dir = w;
  }
  if (s(f, 'user') !== undefined) c.user = s(f, 'user')!;
  if (s(f, 'hostname') !== undefined) c.hostname = s(f, 'hostname')!;
  if (s(f, 'entrypoint') !== undefined) c.command = shellSplit('--entrypoint', s(f, 'entrypoint')!);
  if (s(f, 'stop-grace-period') !== undefined) c.stopGracePeriodMs = parseDuration('--stop-grace-period', s(f, 'stop-grace-period')!);
  if (s(f, 'stop-signal') !== undefined) c.stopSignal = s(f, 'stop-signal')!;
  if (f.init !== undefined) c.init = f.init === true;
  if (f['read-only'] !== undefined) c.readOnly = f['read-only'] === true;
  if (f.tty !== undefined) c.tty = f.tty === true;
  applyLogDriverFlags(task, f);

  for (const [field, vals] of both('mount', 'mount-add'))
    c.mounts = upsert(
      c.mounts,
      vals.map((v) => parseMount(field, v)),
      (m) => m.target,
    );
  for (const [field, vals] of both('label', 'label-add')) for (const v of vals) spec.labels[keyValue(field, v)[0]] = keyValue(field, v)[1];
  for (const [field, vals] of both('container-label', 'container-label-add'))
    for (const v of vals) c.labels[keyValue(field, v)[0]] = keyValue(field, v)[1];

  // networks and endpoint (`ids` maps names to ids when the caller resolved them)
  for (const [field, vals] of both('network', 'network-add')) {
    const add = vals.map((v) => parseNetworkFlag(field, v)).map((n) => ({ ...n, target: ids?.get(n.target) ?? n.target }));
    task.networks = upsert(task.networks, add, (n) => n.target.toLowerCase());
  }
  // secrets and configs: added as given (the managers refuse two at one target, and resolve the names)
  for (const [field, vals] of both('secret', 'secret-add'))
    c.secrets = [...c.secrets, ...vals.map((v) => parseFileRef('secret', field, v))];
  for (const [field, vals] of both('config', 'config-add'))
    c.configs = [...c.configs, ...vals.map((v) => parseFileRef('config', field, v))];
  const ports = both('publish', 'publish-add').flatMap(([field, vals]) => vals.map((v) => parsePublish(field, v)));
  if (ports.length || s(f, 'endpoint-mode') !== undefined) {
    const ep = (spec.endpoint ??= { mode: EndpointMode.VIP, ports: [] });
    ep.ports = upsert(ep.ports, ports, portKey);
    if (s(f, 'endpoint-mode') !== undefined)
      ep.mode =
        oneOf('--endpoint-mode', s(f, 'endpoint-mode')!, ['vip', 'dnsrr'] as const) === 'dnsrr' ? EndpointMode.DNSRR : EndpointMode.VIP;
  }

  // placement
  const cons = both('constraint', 'constraint-add').flatMap(([field, vals]) => vals.map((v) => (parseConstraint(v, field), v.trim())));
  const prefs = both('placement-pref', 'placement-pref-add').flatMap(([field, vals]) =>
    vals.map((v) => `node.labels.${parseSpreadPreference(v, field)}`),
  );
  const [maxField, maxValue] = maxReplicasFlag(f);
  if (cons.length || prefs.length || maxValue !== undefined) {
    const p = (task.placement ??= { constraints: [], preferences: [], maxReplicas: 0, platforms: [] });
    for (const x of cons) if (!p.constraints.includes(x)) p.constraints.push(x);
    for (const x of prefs) if (!p.preferences.some((q) => q.spread === x)) p.preferences.push({ spread: x });
    if (maxValue !== undefined) p.maxReplicas = wholeNumber(maxField, maxValue, { max: SPEC_LIMITS.replicas });
  }

  // resources
  const res = { 'reserve-cpu': 0, 'reserve-memory': 0, 'limit-cpu': 0, 'limit-memory': 0, 'limit-pids': 0 };
  if (Object.keys(res).some((k) => s(f, k) !== undefined)) {
    const r = (task.resources ??= { limits: null, reservations: null });
    const lim = resources(r.limits);
    const rsv = resources(r.reservations);
    if (s(f, 'reserve-cpu') !== undefined) rsv.nanoCpus = parseCpus('--reserve-cpu', s(f, 'reserve-cpu')!);
    if (s(f, 'reserve-memory') !== undefined) rsv.memoryBytes = memorySize('--reserve-memory', s(f, 'reserve-memory')!);
    if (s(f, 'limit-cpu') !== undefined) lim.nanoCpus = parseCpus('--limit-cpu', s(f, 'limit-cpu')!);
    if (s(f, 'limit-memory') !== undefined) lim.memoryBytes = memorySize('--limit-memory', s(f, 'limit-memory')!);
    if (s(f, 'limit-pids') !== undefined) lim.pids = wholeNumber('--limit-pids', s(f, 'limit-pids')!, { max: SPEC_LIMITS.pids });
    if (lim.nanoCpus > 0 && rsv.nanoCpus > lim.nanoCpus)
      throw new UsageError(`--reserve-cpu (${rsv.nanoCpus / 1e9}) must not be more than --limit-cpu (${lim.nanoCpus / 1e9})`, {
        field: '--reserve-cpu',
      });
    if (lim.memoryBytes > 0 && rsv.memoryBytes > lim.memoryBytes)
      throw new UsageError(`--reserve-memory must not be more than --limit-memory`, { field: '--reserve-memory' });
    r.limits = lim.nanoCpus || lim.memoryBytes || lim.pids ? lim : null;
    r.reservations = rsv.nanoCpus || rsv.memoryBytes || rsv.generic.length ? rsv : null;
  }

  // restart policy
  if (['restart-condition', 'restart-delay', 'restart-max-attempts', 'restart-window'].some((k) => s(f, k) !== undefined)) {
    const r = { ...DEFAULT_RESTART, ...(task.restart ?? {}) };
    if (s(f, 'restart-condition') !== undefined) {
      const cond = oneOf('--restart-condition', s(f, 'restart-condition')!, ['none', 'on-failure', 'any'] as const);
      r.condition = { none: RestartCondition.NONE, 'on-failure': RestartCondition.ON_FAILURE, any: RestartCondition.ANY }[cond];
    }
    if (s(f, 'restart-delay') !== undefined) r.delayMs = parseDuration('--restart-delay', s(f, 'restart-delay')!);
    if (s(f, 'restart-max-attempts') !== undefined)
      r.maxAttempts = wholeNumber('--restart-max-attempts', s(f, 'restart-max-attempts')!, { max: SPEC_LIMITS.restartAttempts });
    if (s(f, 'restart-window') !== undefined) r.windowMs = parseDuration('--restart-window', s(f, 'restart-window')!);
    task.restart = r;
  }

  spec.update = applyUpdateConfig(f, 'update', spec.update);
  spec.rollback = applyUpdateConfig(f, 'rollback', spec.rollback);

  // health check
  const healthKeys = ['health-cmd', 'health-interval', 'health-timeout', 'health-retries', 'health-start-period', 'health-start-interval'];
  const given = healthKeys.filter((k) => s(f, k) !== undefined);
  if (b(f, 'no-healthcheck')) {
    if (given.length)
      throw new UsageError(`--no-healthcheck conflicts with --${given[0]}: give one or the other`, { field: '--no-healthcheck' });
    c.healthcheck = { test: ['NONE'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, startIntervalMs: 0 };
  } else if (given.length) {
    const h: HealthConfig = {
      test: [],
      intervalMs: 0,
      timeoutMs: 0,
      retries: 0,
      startPeriodMs: 0,
      startIntervalMs: 0,
      ...(c.healthcheck ?? {}),
    };
    if (h.test[0] === 'NONE') h.test = [];
    if (s(f, 'health-cmd') !== undefined) h.test = s(f, 'health-cmd') ? ['CMD-SHELL', s(f, 'health-cmd')!] : [];
    if (s(f, 'health-interval') !== undefined) h.intervalMs = parseDuration('--health-interval', s(f, 'health-interval')!);
    if (s(f, 'health-timeout') !== undefined) h.timeoutMs = parseDuration('--health-timeout', s(f, 'health-timeout')!);
    if (s(f, 'health-start-period') !== undefined) h.startPeriodMs = parseDuration('--health-start-period', s(f, 'health-start-period')!);
    if (s(f, 'health-start-interval') !== undefined)
      h.startIntervalMs = parseDuration('--health-start-interval', s(f, 'health-start-interval')!);
    if (s(f, 'health-retries') !== undefined)
      h.retries = wholeNumber('--health-retries', s(f, 'health-retries')!, { max: SPEC_LIMITS.healthRetries });
    c.healthcheck = h;
  }
}

// ------------------------------------------------------------------ capabilities and security options

const ALL_CAPS = 'ALL';
const RESET_CAPS = 'RESET';

/** Normalized capability names of one flag (`net_admin` → `CAP_NET_ADMIN`); `RESET` passes only on update. */
function capabilityFlag(field: string, vals: readonly string[], allowReset: boolean): Set<string> {
  const out = new Set<string>();
  for (const v of vals) {
    if (v.trim().toUpperCase() === RESET_CAPS) {
      if (!allowReset)
        throw new UsageError(`${field} RESET clears the service's list on service update only: on create, leave the flag out`, { field });
      out.add(RESET_CAPS);
      continue;
    }
    try {
      out.add(normalizeCapability(field, v));
    } catch (e) {
      throw new UsageError((e as Error).message, { field });
    }
  }
  return out;
}

/** As the docker CLI stores a list: sorted, and ALL alone when present. */
const capList = (set: ReadonlySet<string>): string[] => (set.has(ALL_CAPS) ? [ALL_CAPS] : [...set].sort());

/**
 * `service create --cap-add/--cap-drop` → the lists to store, by the docker
 * CLI's rule: adding wins over dropping the same capability, ALL stands for
 * every capability in its list.
 */
export function createCapabilities(add: readonly string[], drop: readonly string[]): { add: string[]; drop: string[] } {
  const a = capabilityFlag('--cap-add', add, false);
  const d = capabilityFlag('--cap-drop', drop, false);
  for (const c of a) d.delete(c);
  return { add: capList(a), drop: capList(d) };
}

/**
 * `service update --cap-add/--cap-drop` applied to the service's lists, as the
 * docker CLI does: dropping a capability the service adds removes it from the
 * add list (and the reverse); otherwise it joins the other list. Adding wins
 * when one update names a capability in both; RESET empties that list first.
 */
export function updateCapabilities(
  curAdd: readonly string[],
  curDrop: readonly string[],
  add: readonly string[],
  drop: readonly string[],
): { add: string[]; drop: string[] } {
  const toAdd = capabilityFlag('--cap-add', add, true);
  const toDrop = capabilityFlag('--cap-drop', drop, true);
  const a = toAdd.has(RESET_CAPS) ? new Set<string>() : new Set(curAdd);
  const d = toDrop.has(RESET_CAPS) ? new Set<string>() : new Set(curDrop);
  toAdd.delete(RESET_CAPS);
  toDrop.delete(RESET_CAPS);
  for (const c of toDrop) {
    if (toAdd.has(c)) continue;
    if (a.has(c)) a.delete(c);
    else d.add(c);
  }
  for (const c of toAdd) {
    if (d.has(c)) d.delete(c);
    else a.add(c);
  }
  return { add: capList(a), drop: capList(d) };
}

const SECURITY_OPT_HELP =
  'tsswarm supports seccomp=unconfined, seccomp=builtin (the default profile), no-new-privileges and no-new-privileges=true|false';

/** One `--security-opt`: the setting it changes. Anything we cannot honour (AppArmor, SELinux labels, a custom seccomp profile) is refused. */
export function parseSecurityOpt(field: string, v: string): { seccomp: SeccompMode } | { noNewPrivileges: boolean } {
  const opt = v.trim();
  const eq = opt.indexOf('=');
  const key = (eq < 0 ? opt : opt.slice(0, eq)).toLowerCase();
  const val = eq < 0 ? undefined : opt.slice(eq + 1);
  if (key === 'no-new-privileges') {
    if (val === undefined) return { noNewPrivileges: true };
    const bv = { true: true, '1': true, false: false, '0': false }[val.toLowerCase()];
    if (bv === undefined) throw new UsageError(`${field} no-new-privileges takes true or false (got "${v}")`, { field });
    return { noNewPrivileges: bv };
  }
  if (key === 'seccomp') {
    if (val === 'unconfined') return { seccomp: SeccompMode.SECCOMP_UNCONFINED };
    if (val === 'builtin') return { seccomp: SeccompMode.SECCOMP_DEFAULT };
    throw new UsageError(`${field} "${v}": custom seccomp profiles are not supported; ${SECURITY_OPT_HELP}`, { field });
  }
  throw new UsageError(`${field} "${v}" is not supported: ${SECURITY_OPT_HELP}`, { field });
}

/**
 * `--log-driver` and `--log-opt` (create and update): as docker's update, a
 * new driver comes with exactly the options given beside it; options alone
 * are refused rather than dropped.
 */
function applyLogDriverFlags(task: TaskSpec, f: Flags): void {
  const name = s(f, 'log-driver');
  const opts = l(f, 'log-opt');
  if (name === undefined) {
    if (opts.length)
      throw new UsageError('--log-opt needs --log-driver beside it (json-file or local): --log-driver json-file --log-opt max-size=10m', {
        field: '--log-opt',
      });
    return;
  }
  try {
    const d: LogDriver = { name, options: parseLogOpts(opts) };
    logPolicy(d);
    task.logDriver = d;
  } catch (e) {
    if (e instanceof LogDriverError)
      throw new UsageError(e.message, { field: e.message.startsWith('--log-opt') ? '--log-opt' : '--log-driver' });
    throw e;
  }
}

/**
 * `--cap-add`, `--cap-drop` and `--security-opt` (create and update). Each
 * `--security-opt` sets its own setting and leaves the others as they are, so
 * on update `seccomp=builtin` and `no-new-privileges=false` undo earlier ones.
 */
function applySecurityFlags(c: ContainerSpec, f: Flags, mode: 'create' | 'update'): void {
  const add = l(f, 'cap-add');
  const drop = l(f, 'cap-drop');
  if (add.length || drop.length) {
    const r =
      mode === 'create' ? createCapabilities(add, drop) : updateCapabilities(c.capabilityAdd ?? [], c.capabilityDrop ?? [], add, drop);
    c.capabilityAdd = r.add;
    c.capabilityDrop = r.drop;
  }
  for (const v of l(f, 'security-opt')) {
    const o = parseSecurityOpt('--security-opt', v);
    if ('seccomp' in o) c.seccomp = o.seccomp;
    else c.noNewPrivileges = o.noNewPrivileges;
  }
}

/** Reads an `--env-file` (tests give a fake). */
export type ReadEnvFile = (field: string, path: string) => string;

const dedupe = (xs: readonly string[]): string[] => [...new Set(xs)];
const withoutAll = (xs: readonly string[], rm: readonly string[]): string[] => xs.filter((x) => !rm.includes(x));

/**
 * --sysctl, --ulimit, --dns, --dns-option, --dns-search, --host, --group,
 * --oom-score-adj and --generic-resource, with update's -add/-rm forms: the
 * removals first, then the additions (a key given again replaces its value),
 * as the docker CLI applies them.
 */
function applyContainerOptionFlags(task: TaskSpec, c: ContainerSpec, f: Flags): void {
  const both = (a: string): [string, string[]][] => [
    [`--${a}`, l(f, a)],
    [`--${a}-add`, l(f, `${a}-add`)],
  ];
  const sysctls = { ...(c.sysctls ?? {}) };
  for (const k of l(f, 'sysctl-rm')) delete sysctls[k.trim()];
  for (const [field, vals] of both('sysctl'))
    for (const v of vals) {
      const [k, val] = parseSysctl(field, v);
      sysctls[k] = val;
    }
  c.sysctls = sysctls;

  const rmUlimits = l(f, 'ulimit-rm').map((x) => x.trim());
  c.ulimits = (c.ulimits ?? []).filter((u) => !rmUlimits.includes(u.name));
  for (const [field, vals] of both('ulimit'))
    c.ulimits = upsert(
      c.ulimits,
      vals.map((v) => parseUlimit(field, v)),
      (u) => u.name,
    );

  const dnsKeys = ['dns', 'dns-option', 'dns-search'].flatMap((k) => [k, `${k}-add`, `${k}-rm`]);
  if (dnsKeys.some((k) => l(f, k).length)) {
    const d = { nameservers: [], search: [], options: [], ...(c.dnsConfig ?? {}) };
    const one = (k: string, cur: string[], check: (field: string, v: string) => void): string[] => {
      const add = both(k).flatMap(([field, vals]) => vals.map((v) => (check(field, v.trim()), v.trim())));
      return dedupe([
        ...withoutAll(
          cur,
          l(f, `${k}-rm`).map((x) => x.trim()),
        ),
        ...add,
      ]);
    };
    d.nameservers = one('dns', d.nameservers, checkDnsServer);
    d.search = one('dns-search', d.search, checkDnsSearch);
    d.options = one('dns-option', d.options, checkDnsOption);
    c.dnsConfig = d.nameservers.length || d.search.length || d.options.length ? d : null;
  }

  let hosts = c.hosts ?? [];
  for (const x of l(f, 'host-rm')) hosts = removeHosts('--host-rm', hosts, x);
  for (const [field, vals] of both('host')) hosts = dedupe([...hosts, ...vals.map((v) => parseExtraHost(field, v))]);
  c.hosts = hosts;

  const groups = both('group').flatMap(([field, vals]) => vals.map((v) => (checkGroup(field, v.trim()), v.trim())));
  c.groups = dedupe([
    ...withoutAll(
      c.groups ?? [],
      l(f, 'group-rm').map((x) => x.trim()),
    ),
    ...groups,
  ]);

  const oom = s(f, 'oom-score-adj');
  if (oom !== undefined) {
    const n = /^-?\d+$/.test(oom.trim()) ? Number(oom) : NaN;
    checkOomScoreAdj('--oom-score-adj', n);
    c.oomScoreAdj = n;
  }

  const rmKinds = l(f, 'generic-resource-rm').map((x) => x.trim());
  const add = both('generic-resource').flatMap(([field, vals]) => vals.map((v) => parseGenericResource(field, v)));
  if (rmKinds.length || add.length) {
    const r = (task.resources ??= { limits: null, reservations: null });
    const rsv = resources(r.reservations);
    rsv.generic = upsert(
      rsv.generic.filter((g) => !rmKinds.includes(g.kind)),
      add,
      (g) => g.kind,
    );
    r.reservations = rsv.nanoCpus || rsv.memoryBytes || rsv.generic.length ? rsv : null;
  }
}

export interface CreateOptions {
  spec: ServiceSpec;
  detach: boolean;
  quiet: boolean;
}

/** `service create` flags and `IMAGE [COMMAND [ARG...]]` → the spec to send. Pure (env only for `-e KEY`). */
export function serviceCreateSpec(
  flags: Flags,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  readFile: ReadEnvFile = readEnvFileText,
): CreateOptions {
  const [image, ...cmd] = args;
  if (!image) throw new UsageError('give the image to run: tsswarm service create [OPTIONS] IMAGE [COMMAND] [ARG...]', { field: 'IMAGE' });
  const spec = ServiceSpec.create({ task: TaskSpec.create({ container: ContainerSpec.create({ image, args: cmd }) }) });
  applySpecFlags(spec, flags, env, undefined, readFile);
  applySecurityFlags(spec.task.container, flags, 'create');
  applyContainerOptionFlags(spec.task, spec.task.container, flags);
  if (!spec.replicated && !spec.global && !spec.replicatedJob && !spec.globalJob) spec.replicated = { replicas: 1 };
  return { spec, detach: b(flags, 'detach'), quiet: b(flags, 'quiet') };
}

/** Parses a `service create` command line (after `create`) into a spec, without a daemon. */
export function parseCreateArgv(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = {},
  readFile: ReadEnvFile = readEnvFileText,
): CreateOptions {
  const p = parseArgs(
    argv,
    { ...specFlags, help: { type: 'boolean', description: '' } },
    { command: 'tsswarm service create', stopAtPositional: true },
  );
  return serviceCreateSpec(p.flags, [...p.positionals, ...p.rest], env, readFile);
}

/**
 * `service update` flags applied to the service's current spec → the new spec.
 * Pure. `networkIds` maps the names given to --network/--network-add/--network-rm
 * to ids (the stored spec holds ids), when the caller looked them up.
 */
export function serviceUpdateSpec(
  current: ServiceSpec,
  flags: Flags,
  env: NodeJS.ProcessEnv = {},
  networkIds?: ReadonlyMap<string, string>,
  readFile: ReadEnvFile = readEnvFileText,
): ServiceSpec {
  const spec = plainSpec(current);
  const task = (spec.task ??= TaskSpec.create());
  const c = (task.container ??= ContainerSpec.create());
  if (s(flags, 'image') !== undefined) {
    if (!s(flags, 'image')) throw UsageError.invalid('--image', 'an image reference', '');
    c.image = s(flags, 'image')!;
  }
  if (s(flags, 'args') !== undefined) c.args = shellSplit('--args', s(flags, 'args')!);
  for (const k of l(flags, 'env-rm')) c.env = c.env.filter((e) => envKey(e) !== k);
  for (const t of l(flags, 'mount-rm')) {
    if (!c.mounts.some((m) => m.target === t))
      throw new UsageError(
        `--mount-rm ${t}: the service has no mount at ${t} (its targets: ${c.mounts.map((m) => m.target).join(', ') || 'none'})`,
        { field: '--mount-rm' },
      );
    c.mounts = c.mounts.filter((m) => m.target !== t);
  }
  if (task.placement) {
    for (const x of l(flags, 'constraint-rm')) {
      const key = (v: string): string => v.replace(/\s+/g, '');
      task.placement.constraints = task.placement.constraints.filter((y) => key(y) !== key(x));
    }
    for (const x of l(flags, 'placement-pref-rm')) {
      const spread = `node.labels.${parseSpreadPreference(x, '--placement-pref-rm')}`;
      task.placement.preferences = task.placement.preferences.filter((q) => q.spread !== spread);
    }
  }
  for (const x of l(flags, 'network-rm')) {
    const gone = new Set([x.toLowerCase(), (networkIds?.get(x) ?? x).toLowerCase()]);
    if (!task.networks.some((n) => gone.has(n.target.toLowerCase())))
      throw new UsageError(`--network-rm ${x}: the service is not attached to network ${x}`, { field: '--network-rm' });
    task.networks = task.networks.filter((n) => !gone.has(n.target.toLowerCase()));
  }
  const named = (x: string, id: string, name: string): boolean => x === id || x.toLowerCase() === name.toLowerCase();
  for (const x of l(flags, 'secret-rm')) {
    if (!c.secrets.some((r) => named(x, r.secretId, r.secretName)))
      throw new UsageError(
        `--secret-rm ${x}: the service uses no secret ${x} (its secrets: ${c.secrets.map((r) => r.secretName).join(', ') || 'none'})`,
        { field: '--secret-rm' },
      );
    c.secrets = c.secrets.filter((r) => !named(x, r.secretId, r.secretName));
  }
  for (const x of l(flags, 'config-rm')) {
    if (!c.configs.some((r) => named(x, r.configId, r.configName)))
      throw new UsageError(
        `--config-rm ${x}: the service uses no config ${x} (its configs: ${c.configs.map((r) => r.configName).join(', ') || 'none'})`,
        { field: '--config-rm' },
      );
    c.configs = c.configs.filter((r) => !named(x, r.configId, r.configName));
  }
  for (const x of l(flags, 'publish-rm')) {
    const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(x.trim());
    if (!m) throw UsageError.invalid('--publish-rm', 'a target port, optionally with its protocol: 80 or 53/udp', x);
    const proto = m[2] ? parseProtocol(m[2]) : undefined;
    const hit = (p: PortConfig): boolean => p.targetPort === Number(m[1]) && (proto === undefined || p.protocol === proto);
    if (!spec.endpoint?.ports.some(hit))
      throw new UsageError(`--publish-rm ${x}: the service publishes no port with target ${x}`, { field: '--publish-rm' });
    spec.endpoint.ports = spec.endpoint.ports.filter((p) => !hit(p));
  }
  for (const k of l(flags, 'label-rm')) delete spec.labels[k];
  for (const k of l(flags, 'container-label-rm')) delete c.labels[k];
  applySpecFlags(spec, flags, env, networkIds, readFile);
  applySecurityFlags(c, flags, 'update');
  applyContainerOptionFlags(task, c, flags);
  if (b(flags, 'force')) task.forceUpdate = (task.forceUpdate ?? 0) + 1;
  return spec;
}

/** Parses a `service update` command line (after `update`): the service ref and the new spec from `current`. */
export function parseUpdateArgv(
  argv: readonly string[],
  current: ServiceSpec,
  env: NodeJS.ProcessEnv = {},
  networkIds?: ReadonlyMap<string, string>,
  readFile: ReadEnvFile = readEnvFileText,
): ServiceSpec {
  const p = parseArgs(argv, { ...updateFlags, help: { type: 'boolean', description: '' } }, { command: 'tsswarm service update' });
  return serviceUpdateSpec(current, p.flags, env, networkIds, readFile);
}

// ------------------------------------------------------------------ output helpers

function json(io: Io, v: unknown): void {
  io.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

/** A service as `inspect` shows it: enum names, not numbers. */
export function serviceJson(svc: Service): object {
  return Service.toObject(svc, { enums: String });
}

const capital = (w: string): string => (w ? w[0]!.toUpperCase() + w.slice(1) : w);
const word = (st: TaskState | undefined): string => (TaskState[st ?? TaskState.NEW] ?? 'unknown').toLowerCase();
const shortId = (id: string, noTrunc = false): string => (noTrunc ? id : id.slice(0, 12));

function nodeNames(nodes: Node[]): Map<string, string> {
  return new Map(nodes.map((n) => [n.meta.id, n.description?.hostname || n.spec?.name || n.meta.id]));
}

function stripDigest(image: string, noTrunc: boolean): string {
  return noTrunc ? image : image.replace(/@sha256:[0-9a-f]+$/, '');
}

/** REPLICAS as docker's: `running/desired`, and for a job `(completed/total completed)` (a global job's total: its nodes). */
export function replicasColumn(x: ServiceSummary): string {
  const sp = x.service.spec;
  const base = `${x.running}/${x.desired}`;
  if (sp.replicatedJob) return `${base} (${x.completed}/${sp.replicatedJob.totalCompletions} completed)`;
  if (sp.globalJob) return `${base} (${x.completed}/${x.completed + x.desired} completed)`;
  return base;
}

/** `service ls` rows. */
export function serviceRows(r: ListServicesResponse): string[][] {
  return r.services.map((x) => {
    const svc = x.service;
    return [
      shortId(svc.meta.id),
      svc.spec.name,
      modeOf(svc.spec),
      replicasColumn(x),
      stripDigest(svc.spec.task?.container?.image ?? '', false),
    ];
  });
}

export interface PsOptions {
  noTrunc?: boolean;
  now?: number;
  nodes?: ReadonlyMap<string, string>;
}

/**
 * `service ps` rows: tasks grouped by slot (global: node), newest first; older
 * tasks of a slot are shown as `\_ web.1`, as docker does.
 */
export function taskRows(tasks: readonly Task[], o: PsOptions = {}): string[][] {
  const now = o.now ?? Date.now();
  const groupKey = (t: Task): string => `${t.serviceName}\0${t.slot ? String(t.slot).padStart(10, '0') : t.nodeId}`;
  const sorted = [...tasks].sort(
    (a, b) =>
      groupKey(a).localeCompare(groupKey(b)) ||
      (b.meta?.createdAt ?? 0) - (a.meta?.createdAt ?? 0) ||
      (b.meta?.version ?? 0) - (a.meta?.version ?? 0),
  );
  let prev = '';
  return sorted.map((t) => {
    const k = groupKey(t);
    const name = `${t.serviceName}.${t.slot || t.nodeId}`;
    const shown = k === prev ? ` \\_ ${name}` : name;
    prev = k;
    const st = t.status;
    const err = st?.err ? (o.noTrunc || st.err.length <= 30 ? `"${st.err}"` : `"${st.err.slice(0, 29)}…"`) : '';
    return [
      shortId(t.meta.id, o.noTrunc),
      shown,
      stripDigest(t.spec?.container?.image ?? '', !!o.noTrunc),
      t.nodeId ? (o.nodes?.get(t.nodeId) ?? shortId(t.nodeId, o.noTrunc)) : '',
      capital(word(t.desiredState)),
      st?.timestamp ? `${capital(word(st.state))} ${ago(st.timestamp, now).replace(/^L/, 'l')}` : capital(word(st?.state)),
      err,
      // As docker service ps: the node ports of host-mode publishing, the picked ones included.
      (st?.portStatus ?? []).map((p) => `*:${p.publishedPort}->${p.targetPort}/${protocolName(p.protocol)}`).join(','),
    ];
  });
}

/** How `service logs` prints each line, as the docker CLI's flags choose. */
export interface LogFormat {
  nodes?: ReadonlyMap<string, string>;
  timestamps?: boolean;
  noTrunc?: boolean;
  noTaskIds?: boolean;
  /** Ids for names in the prefix (`SERVICEID.1.TASKID@NODEID`), as docker's --no-resolve. */
  noResolve?: boolean;
  /** No `task@node    | ` prefix at all. */
  raw?: boolean;
  /** `com.docker.swarm.node.id=...,com.docker.swarm.service.id=...,com.docker.swarm.task.id=... ` before each line. */
  details?: boolean;
}

/**
 * `web.1.abcdef123456@node1    | line` for each line of a chunk, the time
 * first and the details after the bar when asked, in the docker CLI's order.
 * Unlike the docker CLI, --details keeps the com.docker.swarm.* keys even
 * beside the prefix (docker prints them only with --raw).
 */
export function formatLogChunk(c: LogChunk, o: LogFormat = {}): string {
  let who = '';
  if (!o.raw) {
    const service = o.noResolve ? c.serviceId || c.serviceName : c.serviceName;
    const node = o.noResolve ? c.nodeId : (o.nodes?.get(c.nodeId) ?? shortId(c.nodeId, o.noTrunc));
    who = `${service}.${c.slot || shortId(c.nodeId, o.noTrunc)}${o.noTaskIds ? '' : `.${shortId(c.taskId, o.noTrunc)}`}@${node}    | `;
  }
  const text = Buffer.from(c.data).toString('utf8');
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  const ts = o.timestamps && c.time ? `${new Date(Number(c.time)).toISOString()} ` : '';
  const details = o.details
    ? `com.docker.swarm.node.id=${c.nodeId},com.docker.swarm.service.id=${c.serviceId},com.docker.swarm.task.id=${c.taskId} `
    : '';
  return lines.map((line) => `${ts}${who}${details}${line}\n`).join('');
}

/** `--since`/`--until` into the request's Unix ms (0: not given). */
export function logWindow(since: string | undefined, until: string | undefined, nowMs: number): { sinceMs: number; untilMs: number } {
  const at = (flag: string, v: string | undefined): number => {
    if (v === undefined || v === '') return 0;
    try {
      return Math.max(1, parseLogTime(flag, v, nowMs));
    } catch (e) {
      if (e instanceof LogDriverError) throw new UsageError(e.message, { field: flag });
      throw e;
    }
  };
  const w = { sinceMs: at('--since', since), untilMs: at('--until', until) };
  if (w.sinceMs && w.untilMs && w.untilMs <= w.sinceMs)
    throw new UsageError(`--until must be later than --since (got --since ${since} --until ${until})`, { field: '--until' });
  return w;
}

// ------------------------------------------------------------------ calls

function isTTY(io: Io): boolean {
  return (io.stdout as { isTTY?: boolean }).isTTY === true;
}

async function listNodeNames(): Promise<Map<string, string>> {
  try {
    return nodeNames((await controlApi('listNodes')).nodes);
  } catch {
    return new Map();
  }
}

/** A leader election or a restarting daemon should not end the watch: such errors are retried for a while. */
const TRANSIENT_RETRIES = 20;
const TRANSIENT_DELAY_MS = 500;

async function snapshotOf(id: string, names: { map: Map<string, string> | null }): Promise<Snapshot> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await readSnapshot(id, names);
    } catch (e) {
      const code = (e as TsswarmError).code;
      if (attempt >= TRANSIENT_RETRIES || (code !== 'UNAVAILABLE' && code !== 'NOT_LEADER' && code !== 'DEADLINE_EXCEEDED')) throw e;
      await new Promise((r) => setTimeout(r, TRANSIENT_DELAY_MS));
    }
  }
}

async function readSnapshot(id: string, names: { map: Map<string, string> | null }): Promise<Snapshot> {
  const [s, t] = await Promise.all([
    controlApi('getService', { ref: id }),
    controlApi('listTasks', { services: [id], nodes: [], desiredRunning: false }),
  ]);
  if (s.service.spec?.global && (names.map === null || t.tasks.some((x) => x.nodeId && !names.map!.has(x.nodeId))))
    names.map = await listNodeNames();
  return { service: s.service, tasks: t.tasks, nodeNames: names.map ?? undefined };
}

/** Ctrl-C while watching stops the watch, not the service. */
function interruptSignal(): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const onInt = (): void => ac.abort();
  process.once('SIGINT', onInt);
  return { signal: ac.signal, done: () => process.removeListener('SIGINT', onInt) };
}

/** Waits for a service to converge, showing progress unless quiet; the exit code. */
async function follow(io: Io, svc: Service, op: Operation, quiet: boolean): Promise<number> {
  const names = { map: null as Map<string, string> | null };
  const sink = quiet ? { write: () => true } : io.stdout;
  const { signal, done } = interruptSignal();
  try {
    const r = await watchProgress({
      op,
      initial: svc.updateStatus,
      fetch: () => snapshotOf(svc.meta.id, names),
      out: sink,
      isTTY: !quiet && isTTY(io),
      signal,
    });
    if (r === null) {
      io.stderr.write(`stopped watching; service ${svc.spec.name} keeps converging (see \`tsswarm service ps ${svc.spec.name}\`)\n`);
      return 0;
    }
    if (!r.ok) {
      io.stderr.write(`tsswarm: ${r.message}\n`);
      return 1;
    }
    return 0;
  } finally {
    done();
  }
}

function warn(io: Io, warnings: readonly string[]): void {
  for (const w of warnings) io.stderr.write(`WARNING: ${w}\n`);
}

// ------------------------------------------------------------------ commands

/**
 * What the docker CLI does to a spec before sending it: --with-registry-auth
 * puts the credentials `tsswarm login` stored for the image's registry in
 * pullOptions (or, without a login, an explicit "none" that clears what the
 * service held); then, unless --no-resolve-image (or `resolve` is false: an
 * update without --image), the daemon asks the registry for the image's
 * digest, with the user's login when there is one, pinned as
 * image:tag@sha256:… (a registry out of reach is a warning and the tag is
 * kept).
 */
export async function prepareImage(io: Io, spec: ServiceSpec, flags: Flags, resolve: boolean): Promise<void> {
  const c = spec.task.container;
  let registryAuth: string | undefined;
  const path = dockerConfigPath();
  if (flags['with-registry-auth']) {
    registryAuth = encodedAuthFor(readDockerConfig(path), c.image, path);
    // Without a login the flag still sends "no credentials", which replaces any the service holds (as docker's `{}`).
    c.pullOptions = { registryAuth: registryAuth ?? EMPTY_REGISTRY_AUTH };
    if (!registryAuth)
      io.stderr.write(
        `WARNING: --with-registry-auth: no login for ${imageRegistry(c.image)} in ${path}: the nodes pull ${c.image} without credentials\n`,
      );
  }
  if (!resolve || flags['no-resolve-image'] || !c.image) return;
  // The digest is asked with this user's login even when the spec does not carry it (an update
  // keeps the service's own): the daemon uses it for this one question.
  if (!registryAuth) {
    try {
      registryAuth = encodedAuthFor(readDockerConfig(path), c.image, path);
    } catch {
      registryAuth = undefined;
    }
  }
  applyPin(spec, await resolvePin(io, c.image, registryAuth));
}

const createCommand = leaf({
  name: 'create',
  summary: 'Create a new service',
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
  flags: specFlags,
  stopAtPositional: true,
  async run({ flags, positionals, rest, io }) {
    const o = serviceCreateSpec(flags, [...positionals, ...rest], process.env);
    // A spec the managers would refuse is refused before any registry is asked.
    validateServiceSpec(plainSpec(o.spec));
    await prepareImage(io, o.spec, flags, true);
    const r = await controlApi('createService', { spec: o.spec });
    warn(io, r.warnings);
    io.stdout.write(`${r.service.meta.id}\n`);
    return o.detach ? 0 : follow(io, r.service, 'create', o.quiet);
  },
});

const FORMAT_HELP = 'table (default), json, or a Go template: {{.ID}}, {{json .}}, table {{.ID}}\\t{{.Name}}';

/** `service ls` template fields, docker's: ID, Name, Mode, Replicas, Image, Ports (the ingress ports). */
export function serviceContexts(r: ListServicesResponse): Array<Record<string, string>> {
  const rows = serviceRows(r);
  return r.services.map((x, i) => {
    const [ID, Name, Mode, Replicas, Image] = rows[i]!;
    const ports = (x.service.endpoint?.ports ?? x.service.spec.endpoint?.ports ?? [])
      .filter((p) => p.publishMode !== PublishMode.HOST && p.publishedPort)
      .map((p) => `*:${p.publishedPort}->${p.targetPort}/${protocolName(p.protocol)}`)
      .join(', ');
    return { ID: ID!, Name: Name!, Mode: Mode!, Replicas: Replicas!, Image: Image!, Ports: ports };
  });
}

const lsCommand = leaf({
  name: 'ls',
  summary: 'List services',
  flags: {
    quiet: bool('Only display IDs', 'q'),
    format: str('FORMAT', FORMAT_HELP),
    filter: many('KEY=VALUE', 'Filter as docker: id=, label=KEY[=VALUE], mode=replicated|global, name=', 'f'),
  },
  async run({ flags, positionals, io }) {
    if (positionals.length) throw new UsageError(`"tsswarm service ls" accepts no arguments (got "${positionals.join(' ')}")`);
    const choice = formatChoice(flags.format);
    const keep = serviceFilter(filtersFromFlags(flags.filter));
    const all = await controlRead(io, 'listServices');
    const r = { ...all, services: all.services.filter((x) => keep(x.service)) };
    if (choice.kind === 'json')
      json(
        io,
        r.services.map((x) => ({ ...serviceJson(x.service), Replicas: { running: x.running, desired: x.desired } })),
      );
    else if (choice.kind === 'table' || choice.kind === 'raw') io.stdout.write(renderList(choice, SERVICE_FIELDS, serviceContexts(r)));
    else if (flags.quiet) io.stdout.write(r.services.map((x) => `${x.service.meta.id}\n`).join(''));
    else io.stdout.write(table(['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE'], serviceRows(r)));
    return 0;
  },
});

/**
 * `--filter` of `service ps` (docker's keys: id, name, node, desired-state; and
 * label, service) as a task predicate; `nodes` maps node ids to names, `selfId`
 * is the node `node=self` names, as the docker CLI resolves it.
 */
export function psFilter(flags: readonly string[], nodes: ReadonlyMap<string, string>, selfId?: string): (t: Task) => boolean {
  return taskFilter(filtersFromFlags(flags), {
    serviceOf: () => undefined,
    labelsOf: (t) => t.serviceLabels ?? {},
    resolveNode: (ref) => {
      if (ref === 'self' && selfId) return selfId;
      if (nodes.has(ref)) return ref;
      const named = [...nodes].find(([, name]) => name === ref);
      if (named) return named[0];
      return [...nodes.keys()].find((id) => id.startsWith(ref)) ?? ref;
    },
  });
}

/** `service ps` template fields, docker's: the cells of its table. */
const taskContexts = (rows: readonly string[][]): Array<Record<string, string>> =>
  rows.map((r) => Object.fromEntries(Object.keys(TASK_FIELDS.headers).map((k, i) => [k, r[i] ?? ''])));

const psCommand = leaf({
  name: 'ps',
  summary: 'List the tasks of one or more services',
  usage: '[OPTIONS] SERVICE [SERVICE...]',
  flags: {
    'no-trunc': bool('Do not truncate output'),
    filter: many('KEY=VALUE', 'Filter as docker: desired-state=running|shutdown|accepted|…, id=, name=, node=, label=', 'f'),
    quiet: bool('Only display task IDs', 'q'),
    format: str('FORMAT', FORMAT_HELP),
  },
  async run({ flags, positionals, io }) {
    if (!positionals.length) throw new UsageError('give at least one service: tsswarm service ps SERVICE [SERVICE...]');
    const choice = formatChoice(flags.format);
    filtersFromFlags(flags.filter); // a malformed --filter is refused before anything is asked
    const nodes = await listNodeNames();
    const self = filtersFromFlags(flags.filter).get('node')?.has('self') ? (await daemonApi('info')).nodeId : undefined;
    const keep = psFilter(flags.filter, nodes, self);
    const r = await controlRead(io, 'listTasks', { services: positionals });
    const tasks = r.tasks.filter(keep);
    if (choice.kind === 'json') {
      // Every field, enums as numbers (JSON.stringify of a decoded message would drop defaults and name enums).
      json(
        io,
        tasks.map((x) => Task.toObject(x)),
      );
      return 0;
    }
    const noTrunc = flags['no-trunc'];
    if (choice.kind === 'table' || choice.kind === 'raw') {
      io.stdout.write(renderList(choice, TASK_FIELDS, taskContexts(taskRows(tasks, { noTrunc, nodes }))));
      return 0;
    }
    if (flags.quiet) {
      io.stdout.write(tasks.map((t) => `${shortId(t.meta.id, noTrunc)}\n`).join(''));
      return 0;
    }
    const rows = taskRows(tasks, { noTrunc, nodes });
    io.stdout.write(table(['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR', 'PORTS'], rows));
    return 0;
  },
});

/** `node ps`: the tasks on the nodes `nodeIds`, as `service ps` shows them. */
export async function nodePsOutput(
  io: Io,
  nodeIds: readonly string[],
  o: { filter: readonly string[]; format?: string; noTrunc: boolean; quiet: boolean; selfId?: string },
): Promise<string> {
  const choice = formatChoice(o.format);
  filtersFromFlags(o.filter);
  const nodes = await listNodeNames();
  const keep = psFilter(o.filter, nodes, o.selfId);
  const tasks = (await controlRead(io, 'listTasks', { nodes: [...nodeIds] })).tasks.filter(keep);
  if (choice.kind === 'json')
    return (
      JSON.stringify(
        tasks.map((x) => Task.toObject(x)),
        null,
        2,
      ) + '\n'
    );
  const rows = taskRows(tasks, { noTrunc: o.noTrunc, nodes });
  if (choice.kind === 'table' || choice.kind === 'raw') return renderList(choice, TASK_FIELDS, taskContexts(rows));
  if (o.quiet) return tasks.map((t) => `${shortId(t.meta.id, o.noTrunc)}\n`).join('');
  return table(['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR', 'PORTS'], rows);
}

const ms = (n: number): string => (n % 1000 === 0 ? `${n / 1000}s` : `${n}ms`);

/** `service inspect --pretty`; `networks` maps network ids to names. */
export function prettyService(svc: Service, networks: ReadonlyMap<string, string> = new Map()): string {
  const sp = svc.spec;
  const t = sp.task;
  const c = t?.container;
  const out: string[] = [`ID:\t\t${svc.meta.id}`, `Name:\t\t${sp.name}`];
  if (Object.keys(sp.labels).length) out.push('Labels:', ...Object.entries(sp.labels).map(([k, v]) => ` ${k}=${v}`));
  out.push(
    `Service Mode:\t${{ replicated: 'Replicated', global: 'Global', 'replicated-job': 'ReplicatedJob', 'global-job': 'GlobalJob' }[modeOf(sp)]}`,
  );
  if (sp.replicated) out.push(` Replicas:\t${sp.replicated.replicas}`);
  if (sp.replicatedJob)
    out.push(` Max Concurrent:\t${sp.replicatedJob.maxConcurrent}`, ` Total Completions:\t${sp.replicatedJob.totalCompletions}`);
  const us = svc.updateStatus;
  if (us)
    out.push(
      'UpdateStatus:',
      ` State:\t\t${(UpdateState[us.state] ?? '').toLowerCase()}`,
      ...(us.startedAt ? [` Started:\t${ago(us.startedAt)}`] : []),
      ...(us.message ? [` Message:\t${us.message}`] : []),
    );
  const p = t?.placement;
  if (p?.constraints.length) out.push('Placement:', ` Constraints:\t[${p.constraints.join(' ')}]`);
  if (p?.preferences.length) out.push(' Preferences:', ...p.preferences.map((x) => `  Spread:\t${x.spread}`));
  for (const [title, u] of [
    ['UpdateConfig', sp.update],
    ['RollbackConfig', sp.rollback],
  ] as const) {
    if (!u) continue;
    out.push(`${title}:`, ` Parallelism:\t${u.parallelism}`);
    if (u.delayMs) out.push(` Delay:\t\t${ms(u.delayMs)}`);
    out.push(
      ` On failure:\t${(UpdateFailureAction[u.failureAction] ?? '').toLowerCase()}`,
      ` Monitoring Period: ${ms(u.monitorMs)}`,
      ` Max failure ratio: ${u.maxFailureRatio}`,
      ` Update order:      ${u.order === UpdateOrder.START_FIRST ? 'start-first' : 'stop-first'}`,
    );
  }
  if (c) {
    out.push('ContainerSpec:', ` Image:\t\t${c.image}`);
    if (c.command.length) out.push(` Command:\t${c.command.join(' ')}`);
    if (c.args.length) out.push(` Args:\t\t${c.args.join(' ')}`);
    if (c.env.length) out.push(` Env:\t\t${c.env.join(' ')}`);
    if (c.dir) out.push(` Dir:\t\t${c.dir}`);
    if (c.user) out.push(` User:\t\t${c.user}`);
    if (c.hostname) out.push(` Hostname:\t${c.hostname}`);
    if (c.healthcheck?.test.length) out.push(` Healthcheck:\t${c.healthcheck.test.join(' ')}`);
    if (c.groups?.length) out.push(` Groups:\t${c.groups.join(' ')}`);
    if (c.oomScoreAdj) out.push(` OomScoreAdj:\t${c.oomScoreAdj}`);
    const sysctls = Object.entries(c.sysctls ?? {});
    if (sysctls.length) out.push(' Sysctls:', ...sysctls.map(([k, v]) => `  ${k}=${v}`));
    if (c.ulimits?.length) out.push(' Ulimits:', ...c.ulimits.map((u) => `  ${formatUlimit(u)}`));
    if (c.hosts?.length) out.push(' Hosts:', ...c.hosts.map((h) => `  ${h}`));
    const dns = c.dnsConfig;
    if (dns && (dns.nameservers.length || dns.search.length || dns.options.length))
      out.push(
        ' DNS:',
        ...(dns.nameservers.length ? [`  Nameservers:\t${dns.nameservers.join(' ')}`] : []),
        ...(dns.search.length ? [`  Search:\t${dns.search.join(' ')}`] : []),
        ...(dns.options.length ? [`  Options:\t${dns.options.join(' ')}`] : []),
      );
    // References only: a spec never holds a secret's value.
    const file = (t: { name: string; uid: string; gid: string; mode: number } | null | undefined): string[] =>
      t ? [`  UID:\t\t${t.uid}`, `  GID:\t\t${t.gid}`, `  Mode:\t\t0${t.mode.toString(8)}`] : [];
    if (c.secrets.length) {
      out.push('Secrets:');
      for (const r of c.secrets)
        out.push(` Target:\t${r.target?.name ?? ''}`, `  Source:\t${r.secretName || r.secretId}`, ...file(r.target));
    }
    if (c.configs.length) {
      out.push('Configs:');
      for (const r of c.configs)
        out.push(` Target:\t${r.target?.name ?? ''}`, `  Source:\t${r.configName || r.configId}`, ...file(r.target));
    }
    if (c.mounts.length) {
      out.push('Mounts:');
      for (const m of c.mounts)
        out.push(
          ` Target:\t${m.target}`,
          `  Source:\t${m.source}`,
          `  ReadOnly:\t${m.readOnly}`,
          `  Type:\t\t${(MountType[m.type] ?? '').toLowerCase()}`,
        );
    }
  }
  const r = t?.resources;
  if (r?.limits || r?.reservations) {
    out.push('Resources:');
    for (const [title, x] of [
      ['Reservations', r.reservations],
      ['Limits', r.limits],
    ] as const) {
      if (!x) continue;
      out.push(` ${title}:`);
      if (x.nanoCpus) out.push(`  CPU:\t\t${x.nanoCpus / 1e9}`);
      if (x.memoryBytes) out.push(`  Memory:\t${x.memoryBytes} B`);
      if (x.pids) out.push(`  Pids:\t\t${x.pids}`);
      for (const g of x.generic ?? []) out.push(`  ${g.kind}:\t\t${g.value}`);
    }
  }
  const rp = t?.restart;
  if (rp)
    out.push(
      'RestartPolicy:',
      ` Condition:\t${(RestartCondition[rp.condition] ?? '').toLowerCase().replace('_', '-')}`,
      ` Delay:\t\t${ms(rp.delayMs)}`,
      ` Max attempts:\t${rp.maxAttempts}`,
      ` Window:\t${ms(rp.windowMs)}`,
    );
  const netName = (id: string): string => networks.get(id) ?? id;
  if (t?.networks.length)
    out.push(
      `Networks:\t${t.networks.map((n) => netName(n.target) + (n.aliases.length ? ` (aliases: ${n.aliases.join(', ')})` : '')).join(' ')}`,
    );
  out.push(`Endpoint Mode:\t${sp.endpoint?.mode === EndpointMode.DNSRR ? 'dnsrr' : 'vip'}`);
  // The allocated ports (published ports filled in) when there are, else the asked-for ones.
  const ports = svc.endpoint?.ports.length ? svc.endpoint.ports : (sp.endpoint?.ports ?? []);
  if (ports.length) {
    out.push('Ports:');
    for (const p of ports) {
      out.push(
        ` PublishedPort = ${p.publishedPort || '(being allocated)'}`,
        `  Protocol = ${protocolName(p.protocol)}`,
        `  TargetPort = ${p.targetPort}`,
        `  PublishMode = ${(PublishMode[p.publishMode] ?? '').toLowerCase()}`,
      );
    }
  }
  const vips = svc.endpoint?.virtualIps ?? [];
  if (vips.length) out.push('Virtual IPs:', ...vips.map((v) => ` ${v.addr}\ton ${netName(v.networkId)}`));
  return out.join('\n') + '\n';
}

const inspectCommand = leaf({
  name: 'inspect',
  summary: 'Display detailed information on one or more services (JSON unless --pretty)',
  usage: '[OPTIONS] SERVICE [SERVICE...]',
  flags: {
    pretty: bool('Print in a human friendly format'),
    format: str('FORMAT', 'A Go template over the service as the Docker API shows it: {{.ID}}, {{.Spec.Name}}, {{json .Spec.Labels}}', 'f'),
  },
  async run({ flags, positionals, io }) {
    if (!positionals.length) throw new UsageError('give at least one service (id, id prefix or name)');
    formatChoice(flags.format);
    if (flags.pretty && flags.format !== undefined)
      throw new UsageError('--format is incompatible with human friendly format (--pretty): give one of them', { field: '--format' });
    const svcs: Service[] = [];
    for (const ref of positionals) svcs.push((await controlRead(io, 'getService', { ref })).service);
    const names = flags.pretty ? await networkNames() : new Map<string, string>();
    if (flags.format !== undefined && flags.format !== 'json')
      io.stdout.write(
        renderInspect(
          flags.format,
          svcs.map((x) => serviceToDocker(x, { insertDefaults: true })),
        ),
      );
    else if (flags.pretty) io.stdout.write(svcs.map((x) => prettyService(x, names)).join('\n'));
    else json(io, svcs.map(serviceJson));
    return 0;
  },
});

/** Network names given on the command line → ids (the stored spec holds ids). */
async function resolveNetworks(values: readonly string[]): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const v of values) {
    const name = parseNetworkFlag('--network', v).target;
    // none, host and bridge name no network object: the managers keep none and refuse the others with the reason.
    if (ids.has(name) || isNoNetwork(name) || refusedPredefined(name)) continue;
    const r = await controlApi('getNetwork', { ref: name });
    ids.set(name, r.network.meta.id);
  }
  return ids;
}

async function networkNames(): Promise<Map<string, string>> {
  try {
    return new Map((await controlApi('listNetworks')).networks.map((n) => [n.meta.id, n.spec.name]));
  } catch {
    return new Map();
  }
}

const retryable = (e: unknown): boolean => (e as TsswarmError).code === 'CONFLICT';

const updateCommand = leaf({
  name: 'update',
  summary: 'Update a service',
  usage: '[OPTIONS] SERVICE',
  flags: updateFlags,
  async run({ flags, positionals, io }) {
    if (positionals.length !== 1) throw new UsageError('give exactly one service to update: tsswarm service update [OPTIONS] SERVICE');
    const ref = positionals[0]!;
    let r: ServiceResponse;
    let op: Operation = 'update';
    if (flags.rollback) {
      const { service } = await controlApi('getService', { ref });
      const unchanged =
        JSON.stringify(serviceUpdateSpec(service!.spec, { ...flags, rollback: false, detach: false, quiet: false })) ===
        JSON.stringify(plainSpec(service!.spec));
      if (!unchanged)
        throw new UsageError('--rollback cannot be combined with other changes: roll back first, then update', { field: '--rollback' });
      r = await controlApi('updateService', { ref: service!.meta.id, version: service!.meta.version, spec: null, rollback: true });
      op = 'rollback';
    } else {
      // Read the version, then write against it: a concurrent change is refused, and retried.
      const networkIds = await resolveNetworks([...flags.network, ...flags['network-add'], ...flags['network-rm']]);
      for (let attempt = 0; ; attempt++) {
        const { service } = await controlApi('getService', { ref });
        const spec = serviceUpdateSpec(service!.spec, flags, process.env, networkIds);
        // As the docker CLI: the digest is asked again only for a new --image (a moved tag then re-pulls).
        await prepareImage(io, spec, flags, flags.image !== undefined);
        try {
          r = await controlApi('updateService', { ref: service!.meta.id, version: service!.meta.version, spec, rollback: false });
          break;
        } catch (e) {
          if (attempt < 3 && retryable(e)) continue;
          throw e;
        }
      }
    }
    warn(io, r.warnings);
    io.stdout.write(`${r.service.spec.name}\n`);
    return flags.detach ? 0 : follow(io, r.service, op, flags.quiet);
  },
});

/** `web=5` → ['web', 5]. */
export function parseScaleArg(a: string): [string, number] {
  const eq = a.lastIndexOf('=');
  if (eq <= 0) throw new UsageError(`invalid scale specifier "${a}": write SERVICE=REPLICAS, e.g. web=5`, { field: 'SERVICE=REPLICAS' });
  return [a.slice(0, eq), wholeNumber(`replicas for ${a.slice(0, eq)}`, a.slice(eq + 1), { max: SPEC_LIMITS.replicas })];
}

const scaleCommand = leaf({
  name: 'scale',
  summary: 'Scale one or more replicated services',
  usage: 'SERVICE=REPLICAS [SERVICE=REPLICAS...]',
  flags: { detach: bool('Exit at once instead of waiting for the services to converge', 'd') },
  async run({ flags, positionals, io }) {
    if (!positionals.length) throw new UsageError('give at least one SERVICE=REPLICAS, e.g. tsswarm service scale web=5');
    const wanted = positionals.map(parseScaleArg);
    let followed = 0;
    const failed = await forEachArg(io, wanted, async ([ref, n]) => {
      let r!: ServiceResponse;
      for (let attempt = 0; ; attempt++) {
        const { service } = await controlApi('getService', { ref });
        const mode = modeOf(service!.spec);
        if (mode !== 'replicated' && mode !== 'replicated-job')
          throw new UsageError(`scale works on replicated services and replicated jobs only: service ${service!.spec.name} is ${mode}`);
        const spec = plainSpec(service!.spec);
        // A replicated job's scale is its total completions (as docker's), and starts a new iteration.
        if (spec.replicatedJob) spec.replicatedJob.totalCompletions = n;
        else spec.replicated = { replicas: n };
        try {
          r = await controlApi('updateService', { ref: service!.meta.id, version: service!.meta.version, spec, rollback: false });
          break;
        } catch (e) {
          if (attempt < 3 && retryable(e)) continue;
          throw e;
        }
      }
      io.stdout.write(`${r.service.spec.name} scaled to ${n}\n`);
      if (!flags.detach) followed = Math.max(followed, await follow(io, r.service, 'scale', false));
    });
    return Math.max(failed, followed);
  },
});

const rollbackCommand = leaf({
  name: 'rollback',
  summary: 'Return a service to its previous spec',
  usage: '[OPTIONS] SERVICE',
  flags: { detach: bool('Exit at once instead of waiting for the service to converge', 'd'), quiet: bool('Suppress progress output', 'q') },
  async run({ flags, positionals, io }) {
    if (positionals.length !== 1) throw new UsageError('give exactly one service to roll back');
    const r = await controlApi('updateService', { ref: positionals[0], version: 0, spec: null, rollback: true });
    io.stdout.write(`${r.service.spec.name}\n`);
    return flags.detach ? 0 : follow(io, r.service, 'rollback', flags.quiet);
  },
});

const rmCommand = leaf({
  name: 'rm',
  summary: 'Remove one or more services',
  usage: 'SERVICE [SERVICE...]',
  flags: {},
  async run({ positionals, io }) {
    if (!positionals.length) throw new UsageError('give at least one service to remove');
    return forEachArg(io, positionals, async (ref) => {
      await controlApi('removeService', { ref });
      io.stdout.write(`${ref}\n`);
    });
  },
});

const logsCommand = leaf({
  name: 'logs',
  summary: 'Fetch the logs of a service or task',
  usage: '[OPTIONS] SERVICE|TASK',
  flags: {
    follow: bool('Follow log output', 'f'),
    tail: str('N', 'Number of lines to show from the end of the logs of each task (default all)', 'n'),
    timestamps: bool('Show timestamps', 't'),
    'no-trunc': bool('Do not truncate ids'),
    'no-task-ids': bool('Do not include task ids'),
    'no-resolve': bool('Do not map ids to names in the prefix (TASKID@NODEID)'),
    raw: bool('Do not print the task@node prefix'),
    details: bool('Show the com.docker.swarm.* details of each line'),
    since: str('TIME', 'Only lines since this time: RFC 3339 (2026-12-07T10:00:00Z), Unix seconds, or a duration back (10m)'),
    until: str('TIME', 'Only lines before this time (same forms as --since)'),
  },
  async run({ flags, positionals, io }) {
    if (positionals.length !== 1) throw new UsageError('give exactly one service or task: tsswarm service logs [OPTIONS] SERVICE|TASK');
    const tail = flags.tail === undefined || flags.tail === 'all' ? 0 : wholeNumber('--tail', flags.tail, { max: MAX_LOG_TAIL });
    const window = logWindow(flags.since, flags.until, Date.now());
    const nodes = flags['no-resolve'] || flags.raw ? new Map<string, string>() : await listNodeNames();
    const req: ServiceLogsRequest = { ref: positionals[0]!, follow: flags.follow, tail, timestamps: flags.timestamps, ...window };
    const fmt: LogFormat = {
      nodes,
      timestamps: flags.timestamps,
      noTrunc: flags['no-trunc'],
      noTaskIds: flags['no-task-ids'],
      noResolve: flags['no-resolve'],
      raw: flags.raw,
      details: flags.details,
    };
    const { signal, done } = interruptSignal();
    try {
      await controlStream('serviceLogs', req, (c) => (c.stream === 'stderr' ? io.stderr : io.stdout).write(formatLogChunk(c, fmt)), signal);
    } finally {
      done();
    }
    return 0;
  },
});

const execCommand = leaf({
  name: 'exec',
  summary: "Run a command in a service's running task (or a given task)",
  usage: '[OPTIONS] SERVICE|TASK [--] COMMAND [ARG...]',
  description: "Output is streamed; the exit code is the command's. Without --slot the lowest running slot is used.",
  flags: {
    slot: str('N', 'Run in the task of this slot'),
    env: many('KEY=VALUE', 'Set an environment variable', 'e'),
    user: str('USER', 'User to run the command as', 'u'),
    workdir: str('DIR', 'Working directory for the command', 'w'),
  },
  stopAtPositional: true,
  async run({ flags, positionals, rest, io }) {
    const [ref, ...after] = positionals;
    if (!ref || ref === '--') throw new UsageError('give a service or task and a command: tsswarm service exec SERVICE -- CMD [ARG...]');
    const cmd = after[0] === '--' ? [...after.slice(1), ...rest] : [...after, ...rest];
    if (!cmd.length) throw new UsageError('give the command to run: tsswarm service exec SERVICE -- CMD [ARG...]', { field: 'COMMAND' });
    const req: ExecRequest = {
      ref,
      slot: flags.slot === undefined ? 0 : wholeNumber('--slot', flags.slot, { min: 1 }),
      cmd,
      env: flags.env.map((e) => envEntry('--env', e, process.env)).filter((e): e is string => e !== null),
      user: flags.user ?? '',
      workdir: flags.workdir ?? '',
    };
    let exit: number | null = null;
    const { signal, done } = interruptSignal();
    const raw = (w: { write(c: string): unknown }, bytes: Uint8Array): void => {
      if (bytes.length) (w.write as (c: Uint8Array | string) => unknown).call(w, Buffer.from(bytes));
    };
    try {
      await controlStream(
        'exec',
        req,
        (m) => {
          raw(io.stdout, m.stdout);
          raw(io.stderr, m.stderr);
          if (m.exited) exit = m.exitCode;
        },
        signal,
      );
    } finally {
      done();
    }
    if (signal.aborted) return 130;
    if (exit === null) throw new TsswarmError('INTERNAL', "the exec stream ended without the command's exit code");
    return exit;
  },
});

const serviceCommands: readonly Command[] = [
  createCommand,
  inspectCommand,
  logsCommand,
  lsCommand,
  psCommand,
  rmCommand,
  rollbackCommand,
  scaleCommand,
  updateCommand,
  execCommand,
];

export const serviceCommand: Command = group({ name: 'service', summary: 'Manage services', subcommands: () => serviceCommands });
