// Validation of a ServiceSpec as the Control API receives it, and Swarm's
// defaults for the parts left out. Pure: the same spec always gives the same
// answer, so the CLI and tests can call it without a store.
import { normalizeCapabilities } from '../lib/capabilities.js';
import { TsswarmError } from '../lib/errors.js';
import { decodeRegistryAuth, serverRegistry } from './docker/distribution.js';
import { expandTemplate, isTemplate, parseTemplate, sampleTemplateContext } from '../lib/template.js';
import { isVolumeName, VOLUME_NAME_HINT } from '../lib/volumes.js';
import {
  type ContainerSpec,
  SeccompMode,
  EndpointMode,
  type HealthConfig,
  MountType,
  PortProtocol,
  PublishMode,
  type Resources,
  RestartCondition,
  type RestartPolicy,
  ServiceSpec,
  TaskSpec,
  type UpdateConfig,
  UpdateFailureAction,
  UpdateOrder,
} from '../proto/gen/objects.js';
import { parseConstraints, parseSpreadPreference } from './constraint.js';
import { LogDriverError, logPolicy } from './log-driver.js';
import { checkContainerOptions, checkGenericResources, OPTION_LIMITS } from './container-options.js';
import { protocolName } from '../lib/ports.js';
import type { NetworkSpec } from '../proto/gen/objects.js';
import { isNoNetwork, NO_NETWORK, refusedPredefined } from './predefined-networks.js';

/** Whether a service is a job (replicated-job or global-job): tasks that run to completion. */
export const isJob = (s: ServiceSpec | null | undefined): boolean => isSet(s?.replicatedJob) || isSet(s?.globalJob);

/** Swarm's restart policy when none is given. */
export const DEFAULT_RESTART: Readonly<RestartPolicy> = Object.freeze({
  condition: RestartCondition.ANY,
  delayMs: 5_000,
  maxAttempts: 0,
  windowMs: 0,
});
/** Swarm's update (and rollback) config when none is given. */
export const DEFAULT_UPDATE: Readonly<UpdateConfig> = Object.freeze({
  parallelism: 1,
  delayMs: 0,
  failureAction: UpdateFailureAction.PAUSE,
  monitorMs: 5_000,
  maxFailureRatio: 0,
  order: UpdateOrder.STOP_FIRST,
});
export const DEFAULT_STOP_GRACE_MS = 10_000;
/** Docker's smallest memory limit. */
export const MIN_MEMORY_LIMIT = 6 * 1024 * 1024;

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const HOST_LABEL_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const ENV_KEY_RE = /^[^=\s]+$/;
const USER_RE = /^[^:\s]+(:[^:\s]+)?$/;
const SIGNAL_RE = /^(SIG)?[A-Z][A-Z0-9+-]*$|^\d{1,2}$/;

function bad(field: string, message: string): TsswarmError {
  return new TsswarmError('INVALID_ARGUMENT', `${field} ${message}`);
}

/** A deep, plain copy with every field at its proto3 default (message fields null when absent). */
export function plainSpec(spec: ServiceSpec): ServiceSpec {
  return ServiceSpec.toObject(spec) as unknown as ServiceSpec;
}

const isSet = <T>(v: T | null | undefined): v is T => v !== null && v !== undefined;

function nonNegative(field: string, v: number, fix: string): void {
  if (!Number.isFinite(v) || v < 0) throw bad(field, `must be ≥ 0 (got ${v}): ${fix}`);
}

function checkResources(field: string, r: Resources | null | undefined, pidsAllowed: boolean): void {
  if (!isSet(r)) return;
  nonNegative(`${field}.nanoCpus`, r.nanoCpus, 'give a positive number of CPUs, e.g. 0.5');
  nonNegative(`${field}.memoryBytes`, r.memoryBytes, 'give a positive size, e.g. 64M');
  nonNegative(`${field}.pids`, r.pids, 'give a positive process count');
  if (!pidsAllowed && r.pids > 0) throw bad(`${field}.pids`, 'is a limit only: set it under limits (--limit-pids)');
  if (pidsAllowed && r.generic?.length)
    throw bad(`${field}.generic`, 'is a reservation only: generic resources are reserved (--generic-resource), never limited');
}

function checkUpdateConfig(field: string, u: UpdateConfig): void {
  nonNegative(`${field}.parallelism`, u.parallelism, 'give how many tasks to update at once (0: all)');
  if (!Number.isInteger(u.parallelism)) throw bad(`${field}.parallelism`, `must be a whole number (got ${u.parallelism})`);
  nonNegative(`${field}.delayMs`, u.delayMs, 'give a duration such as 10s');
  nonNegative(`${field}.monitorMs`, u.monitorMs, 'give a duration such as 5s');
  if (!(u.maxFailureRatio >= 0 && u.maxFailureRatio <= 1))
    throw bad(`${field}.maxFailureRatio`, `must be from 0 to 1 (got ${u.maxFailureRatio}): e.g. 0.2 tolerates one failed task in five`);
  if (!(u.failureAction in UpdateFailureAction))
    throw bad(`${field}.failureAction`, `must be pause, continue or rollback (got ${u.failureAction})`);
  if (!(u.order in UpdateOrder)) throw bad(`${field}.order`, `must be stop-first or start-first (got ${u.order})`);
}

function checkHealth(field: string, h: HealthConfig): void {
  const t = h.test;
  if (t.length > 0) {
    const kind = t[0];
    if (kind === 'NONE') {
      if (t.length !== 1) throw bad(`${field}.test`, '["NONE"] takes nothing after NONE');
    } else if (kind === 'CMD') {
      if (t.length < 2)
        throw bad(`${field}.test`, '["CMD", ...] needs a command after CMD, e.g. ["CMD", "curl", "-f", "http://localhost/"]');
    } else if (kind === 'CMD-SHELL') {
      if (t.length !== 2 || !t[1]) throw bad(`${field}.test`, '["CMD-SHELL", "..."] takes exactly one shell command line');
    } else {
      throw bad(`${field}.test`, `must start with CMD, CMD-SHELL or NONE (got ${JSON.stringify(kind)})`);
    }
  }
  for (const k of ['intervalMs', 'timeoutMs', 'startPeriodMs', 'startIntervalMs'] as const) {
    nonNegative(`${field}.${k}`, h[k], 'give a duration such as 30s (0: the default)');
    if (h[k] > 0 && h[k] < 1) throw bad(`${field}.${k}`, 'must be at least 1ms');
  }
  nonNegative(`${field}.retries`, h.retries, 'give how many failures in a row make the task unhealthy');
}

/**
 * Capabilities are known Linux names, stored normalized (`net_admin` →
 * `CAP_NET_ADMIN`, ALL alone in its list); the seccomp mode is one we can run.
 * An agent could not honour anything else, so it is refused here.
 */
function checkSecurity(c: ContainerSpec): void {
  for (const k of ['capabilityAdd', 'capabilityDrop'] as const) c[k] = normalizeCapabilities(`spec.task.container.${k}`, c[k]);
  if (!(c.seccomp in SeccompMode))
    throw bad(
      'spec.task.container.seccomp',
      `must be SECCOMP_DEFAULT or SECCOMP_UNCONFINED (got ${c.seccomp}): use --security-opt seccomp=builtin or seccomp=unconfined`,
    );
}

/**
 * --with-registry-auth: the image registry's credentials as X-Registry-Auth
 * carries them (base64url JSON), bounded as that header is; never echoed in
 * the error. An empty value is no credentials (the field is dropped).
 */
function checkPullOptions(c: ContainerSpec): void {
  const auth = c.pullOptions?.registryAuth ?? '';
  if (!auth) {
    c.pullOptions = null;
    return;
  }
  if (auth.length > SPEC_LIMITS.registryAuthLength)
    throw bad(
      'spec.task.container.pullOptions.registryAuth',
      `is ${auth.length} characters long: at most ${SPEC_LIMITS.registryAuthLength} (log in again to get a shorter token)`,
    );
  const field = 'spec.task.container.pullOptions.registryAuth';
  if (!/^[A-Za-z0-9_+/=-]+$/.test(auth)) throw bad(field, 'must be base64url JSON of an AuthConfig, as X-Registry-Auth');
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(auth, 'base64url').toString('utf8'));
  } catch {
    throw bad(field, 'is base64 of no JSON: it must be base64url JSON of an AuthConfig, as X-Registry-Auth');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw bad(field, 'is base64 of JSON that is no object: it must be base64url JSON of an AuthConfig, as X-Registry-Auth');
  let creds: ReturnType<typeof decodeRegistryAuth>;
  try {
    creds = decodeRegistryAuth(auth);
  } catch (e) {
    throw bad(field, `is refused: ${(e as Error).message}`);
  }
  // An AuthConfig with no credentials (`{}`, --with-registry-auth without a login) is none: the field is dropped.
  if (!creds) {
    c.pullOptions = null;
    return;
  }
  if (creds.serverAddress !== undefined) {
    try {
      serverRegistry(creds.serverAddress);
    } catch {
      throw bad(field, 'has a serveraddress that is not a registry: give HOST[:PORT]');
    }
  }
}

/** Where a secret whose target is a relative name appears in the container. */
export const SECRETS_DIR = '/run/secrets';
/** A secret's or config's file mode when the reference gives none (0: unset, as proto3 cannot tell them apart). */
export const DEFAULT_FILE_MODE = 0o444;
const NUMERIC_ID_RE = /^\d{1,10}$/;

/** Where a secret reference's file appears in the container: a relative target lies under /run/secrets. */
export function secretPath(target: string): string {
  return target.startsWith('/') ? target : `${SECRETS_DIR}/${target}`;
}

/**
 * The secret and config references of a container spec, as Docker's Control
 * API checks them, with the defaults Docker's CLI would have filled (here the
 * server fills them, so every client gets them): a source (name or id) each;
 * target = the source for a secret (a name under /run/secrets, or an absolute
 * path), `/<source>` for a config (an absolute path: a relative one is
 * refused); uid and gid "0"; mode 0444. No `..` in a target, no two files at
 * one path. Mutates `c`.
 */
export function checkFileReferences(c: ContainerSpec): void {
  const paths = new Map<string, string>();
  const one = (
    kind: 'secret' | 'config',
    i: number,
    source: string,
    t: { name: string; uid: string; gid: string; mode: number } | null | undefined,
  ): { name: string; uid: string; gid: string; mode: number } => {
    const f = `spec.task.container.${kind}s[${i}]`;
    const flag = `--${kind}`;
    if (!source)
      throw bad(`${f}.${kind}Name`, `is required: give the ${kind}'s name or id (${flag} SOURCE or ${flag} source=SOURCE,target=...)`);
    const target = { name: '', uid: '', gid: '', mode: 0, ...(t ?? {}) };
    if (!target.name) target.name = kind === 'secret' ? source : `/${source}`;
    const tf = `${f}.target.name (${flag} source=${source},target=${target.name})`;
    if (target.name.includes('\0')) throw bad(tf, 'holds a NUL character: give a file name or path');
    if (target.name.split('/').some((p) => p === '..'))
      throw bad(
        tf,
        `"${target.name}" has a ".." component: give a path that stays where it points, e.g. target=${kind === 'secret' ? 'db_password' : '/etc/app.conf'}`,
      );
    if (kind === 'config' && !target.name.startsWith('/'))
      throw bad(
        tf,
        `"${target.name}" is not an absolute path: a config's target is where the file appears in the container, e.g. target=/${target.name} (default: /<config name>)`,
      );
    if (kind === 'secret' && (target.name.endsWith('/') || target.name === '.' || target.name.startsWith('./')))
      throw bad(tf, `"${target.name}" is not a file name: give a name (placed under ${SECRETS_DIR}/) or an absolute path`);
    for (const k of ['uid', 'gid'] as const) {
      if (!target[k]) target[k] = '0';
      if (!NUMERIC_ID_RE.test(target[k]))
        throw bad(
          `${f}.target.${k} (${flag} ${k}=${target[k]})`,
          `"${target[k]}" is not a numeric ${k}: give a number such as ${k}=1000 (default 0)`,
        );
    }
    if (!target.mode) target.mode = DEFAULT_FILE_MODE;
    if (!(Number.isInteger(target.mode) && target.mode > 0 && target.mode <= 0o777))
      throw bad(
        `${f}.target.mode (${flag} mode=)`,
        `must be a file mode from 0001 to 0777 (got ${target.mode.toString(8)} octal): e.g. mode=0400`,
      );
    const path = kind === 'secret' ? secretPath(target.name) : target.name;
    const prev = paths.get(path);
    if (prev !== undefined) throw bad(tf, `conflicting target: ${path} is also the target of ${prev}: give each ${kind} its own target`);
    paths.set(path, `${kind}s[${i}]`);
    return target;
  };
  c.secrets = c.secrets.map((r, i) => ({ ...r, target: one('secret', i, r.secretName || r.secretId, r.target) }));
  c.configs = c.configs.map((r, i) => ({ ...r, target: one('config', i, r.configName || r.configId, r.target) }));
}

/**
 * Docker's templates where Docker expands them (--hostname, --env, a mount's
 * source), expanded per task by the agent; any other `{{` in them is refused.
 */
function checkTemplates(c: ContainerSpec): void {
  if (isTemplate(c.hostname)) parseTemplate('spec.task.container.hostname (--hostname)', c.hostname);
  c.env.forEach((e, i) => isTemplate(e) && parseTemplate(`spec.task.container.env[${i}] (--env)`, e));
  c.mounts.forEach((m, i) => isTemplate(m.source) && parseTemplate(`spec.task.container.mounts[${i}].source (--mount source=)`, m.source));
}

/** `none` (loopback only) stands alone: no other network, no alias, no published port (there is no interface to publish on). */
function checkNoNetwork(spec: ServiceSpec): void {
  const nets = spec.task?.networks ?? [];
  const i = nets.findIndex((n) => isNoNetwork(n.target));
  if (i < 0) return;
  const other = nets.findIndex((n) => !isNoNetwork(n.target));
  if (other >= 0)
    throw bad(
      `spec.task.networks[${i}].target`,
      `(--network none) cannot be combined with other networks (networks[${other}] is "${nets[other]!.target}"): a task on none has loopback only; keep one or the other`,
    );
  if ((spec.endpoint?.ports.length ?? 0) > 0)
    throw bad(
      'spec.endpoint.ports',
      '(--publish) cannot be used with --network none: a task on none has loopback only, so nothing can reach a published port; remove --publish or --network none',
    );
  if (nets[i]!.aliases.length > 0)
    throw bad(
      `spec.task.networks[${i}].aliases`,
      '(--network name=none,alias=...) cannot be set on none: aliases are names on a network, and none has no address to name; drop the aliases',
    );
  // Stored as Docker's CLI writes it: the name, lowercase.
  nets[i]!.target = NO_NETWORK;
}

/** Endpoint mode and published ports: ranges, enums, one service port per published port, no routing mesh under dnsrr. */
function checkEndpoint(spec: ServiceSpec): void {
  const ep = spec.endpoint;
  if (!isSet(ep)) return;
  if (!(ep.mode in EndpointMode)) throw bad('spec.endpoint.mode', `must be vip or dnsrr (got ${ep.mode})`);
  const published = new Map<string, number>();
  ep.ports.forEach((port, i) => {
    const f = `spec.endpoint.ports[${i}]`;
    if (!(port.protocol in PortProtocol)) throw bad(`${f}.protocol`, `must be tcp, udp or sctp (got ${port.protocol})`);
    if (port.protocol === PortProtocol.SCTP)
      throw bad(
        `${f}.protocol`,
        'sctp cannot be published: the routing mesh and host-mode ports forward tcp and udp only; publish the port as tcp or udp',
      );
    if (!(port.publishMode in PublishMode)) throw bad(`${f}.publishMode`, `must be ingress or host (got ${port.publishMode})`);
    if (!(Number.isInteger(port.targetPort) && port.targetPort >= 1 && port.targetPort <= 65535))
      throw bad(`${f}.targetPort`, `must be from 1 to 65535 (got ${port.targetPort}): the port the container listens on, e.g. target=80`);
    if (!(Number.isInteger(port.publishedPort) && port.publishedPort >= 0 && port.publishedPort <= 65535))
      throw bad(
        `${f}.publishedPort`,
        `must be from 1 to 65535, or 0 to have one picked (ingress mode: from 30000-32767 by the managers; host mode: a free port by each node) (got ${port.publishedPort})`,
      );
    if (port.publishMode === PublishMode.INGRESS && ep.mode === EndpointMode.DNSRR) {
      throw bad(
        'spec.endpoint.mode',
        `dnsrr cannot be used with ports published in ingress mode (ports[${i}]): the routing mesh needs a VIP; use --endpoint-mode vip, or publish with mode=host`,
      );
    }
    if (port.publishedPort) {
      const key = `${port.publishedPort}/${protocolName(port.protocol)}`;
      const prev = published.get(key);
      if (prev !== undefined)
        throw bad(
          `${f}.publishedPort`,
          `${key} is also published by ports[${prev}]: a published port leads to one target; choose another published port`,
        );
      published.set(key, i);
    }
  });
}

function validHostname(h: string): boolean {
  // A template (checked by checkTemplates): its result with typical values must be a hostname.
  if (isTemplate(h)) return validHostname(expandTemplate('hostname', h, sampleTemplateContext()));
  return h.length <= 253 && h.split('.').every((l) => l.length <= 63 && HOST_LABEL_RE.test(l));
}

/**
 * Checks every field of a service spec and fills Swarm's defaults for what is
 * left out: restart and update/rollback configs (when absent), a 10 s stop
 * grace period (when 0), and replicated mode with 1 replica (when neither mode
 * is set). Throws TsswarmError('INVALID_ARGUMENT') naming the field and the fix.
 * The input is not modified.
 */
export function validateServiceSpec(input: ServiceSpec): { spec: ServiceSpec; warnings: string[] } {
  if (!isSet(input)) throw bad('spec', 'is required: send the service spec');
  const spec = plainSpec(input);
  checkServiceSpecBounds(spec);
  const warnings: string[] = [];

  // name
  if (!spec.name) throw bad('spec.name', 'is required: give the service a name (--name)');
  if (spec.name.length > 63) throw bad('spec.name', `"${spec.name}" is longer than 63 characters: choose a shorter name`);
  if (!NAME_RE.test(spec.name))
    throw bad(
      'spec.name',
      `"${spec.name}" is not valid: a name starts with a letter or digit and holds only letters, digits, "_", "." and "-"`,
    );
  for (const k of Object.keys(spec.labels)) if (!k) throw bad('spec.labels', 'has an empty key: write KEY=VALUE');

  // mode
  const modes = (['replicated', 'global', 'replicatedJob', 'globalJob'] as const).filter((k) => isSet(spec[k]));
  if (modes.length > 1)
    throw bad(
      'spec.mode',
      `sets ${modes.join(' and ')}: a service has one mode (replicated, global, replicated-job or global-job; replicas are for replicated services and jobs only)`,
    );
  if (modes.length === 0) spec.replicated = { replicas: 1 };
  const job = isJob(spec);
  if (isSet(spec.replicatedJob)) {
    const j = spec.replicatedJob;
    for (const k of ['maxConcurrent', 'totalCompletions'] as const)
      if (!(Number.isInteger(j[k]) && j[k] >= 0)) throw bad(`spec.mode.replicatedJob.${k}`, `must be a whole number ≥ 0 (got ${j[k]})`);
    if (j.maxConcurrent === 0 && j.totalCompletions > 0)
      throw bad('spec.mode.replicatedJob.maxConcurrent', 'must be at least 1 for a job with completions to make (--max-concurrent)');
  }
  if (isSet(spec.replicated) && !(Number.isInteger(spec.replicated.replicas) && spec.replicated.replicas >= 0)) {
    throw bad('spec.mode.replicated.replicas', `must be a whole number ≥ 0 (got ${spec.replicated.replicas})`);
  }

  // task
  const task = spec.task;
  const c = task?.container;
  if (!isSet(task) || !isSet(c))
    throw bad('spec.task.container.image', 'is required: give the image to run (tsswarm service create IMAGE)');
  if (!c.image.trim()) throw bad('spec.task.container.image', 'is required: give the image to run (tsswarm service create IMAGE)');
  if (/\s/.test(c.image))
    throw bad('spec.task.container.image', `"${c.image}" contains white space: give a reference such as busybox:1.36`);

  const envField = 'spec.task.container.env';
  const seenEnv = new Set<string>();
  c.env.forEach((e, i) => {
    const eq = e.indexOf('=');
    if (eq <= 0 || !ENV_KEY_RE.test(e.slice(0, eq))) throw bad(`${envField}[${i}]`, `"${e}" is not KEY=VALUE: write e.g. -e MODE=prod`);
    const key = e.slice(0, eq);
    if (seenEnv.has(key)) warnings.push(`environment variable ${key} is set more than once: the last value wins`);
    seenEnv.add(key);
  });

  if (c.dir && !c.dir.startsWith('/'))
    throw bad('spec.task.container.dir', `"${c.dir}" is not an absolute path: the working directory must start with /`);
  if (c.user && !USER_RE.test(c.user))
    throw bad('spec.task.container.user', `"${c.user}" is not valid: write USER, UID, USER:GROUP or UID:GID`);
  checkTemplates(c);
  if (c.hostname && !validHostname(c.hostname))
    throw bad(
      'spec.task.container.hostname',
      `"${c.hostname}" is not a valid hostname: use letters, digits and "-" in dot-separated labels of at most 63 characters`,
    );
  if (c.stopSignal && !SIGNAL_RE.test(c.stopSignal))
    throw bad('spec.task.container.stopSignal', `"${c.stopSignal}" is not a signal: write e.g. SIGTERM, SIGQUIT or 15`);
  nonNegative('spec.task.container.stopGracePeriodMs', c.stopGracePeriodMs, 'give a duration such as 10s');
  if (c.stopGracePeriodMs === 0) c.stopGracePeriodMs = DEFAULT_STOP_GRACE_MS;

  const targets = new Map<string, number>();
  c.mounts.forEach((m, i) => {
    const f = `spec.task.container.mounts[${i}]`;
    if (!(m.type in MountType)) throw bad(`${f}.type`, `must be bind, volume or tmpfs (got ${m.type})`);
    if (!m.target) throw bad(`${f}.target`, 'is required: give where the mount appears in the container (target=/data)');
    if (!m.target.startsWith('/')) throw bad(`${f}.target`, `"${m.target}" is not an absolute path: write e.g. target=/data`);
    if (targets.has(m.target))
      throw bad(`${f}.target`, `"${m.target}" is also the target of mounts[${targets.get(m.target)}]: each mount needs its own target`);
    targets.set(m.target, i);
    if (m.type === MountType.BIND) {
      if (!m.source) throw bad(`${f}.source`, 'is required for a bind mount: give the host path (source=/srv/data)');
      if (!m.source.startsWith('/'))
        throw bad(`${f}.source`, `"${m.source}" is not an absolute path: a bind mount's source is a host path such as /srv/data`);
    } else if (m.type === MountType.VOLUME) {
      if (m.source && !isVolumeName(expandTemplate(`${f}.source`, m.source, sampleTemplateContext())))
        throw bad(`${f}.source`, `"${m.source}" is not a volume name: ${VOLUME_NAME_HINT}`);
    } else if (m.source) {
      throw bad(`${f}.source`, `must be empty for a tmpfs mount (got "${m.source}"): a tmpfs has no source`);
    }
    if (m.type !== MountType.VOLUME && Object.keys(m.volumeLabels ?? {}).length)
      throw bad(`${f}.volumeLabels`, 'are for volume mounts only: leave them out of a bind or tmpfs mount');
    if (m.type !== MountType.VOLUME && m.volumeNocopy)
      throw bad(`${f}.volumeNocopy`, 'is for volume mounts only: leave volume-nocopy out of a bind or tmpfs mount');
  });

  if (isSet(c.healthcheck)) checkHealth('spec.task.container.healthcheck', c.healthcheck);
  checkSecurity(c);
  checkPullOptions(c);
  checkFileReferences(c);

  // resources
  const res = task.resources;
  if (isSet(res)) {
    checkResources('spec.task.resources.limits', res.limits, true);
    checkResources('spec.task.resources.reservations', res.reservations, false);
    const l = res.limits;
    const r = res.reservations;
    if (isSet(l) && l.memoryBytes > 0 && l.memoryBytes < MIN_MEMORY_LIMIT)
      throw bad('spec.task.resources.limits.memoryBytes', `is ${l.memoryBytes} bytes: the smallest memory limit is 6M`);
    if (isSet(l) && isSet(r)) {
      if (l.nanoCpus > 0 && r.nanoCpus > l.nanoCpus)
        throw bad(
          'spec.task.resources.reservations.nanoCpus',
          `(${r.nanoCpus / 1e9} CPUs) is more than the limit (${l.nanoCpus / 1e9} CPUs): lower the reservation or raise the limit`,
        );
      if (l.memoryBytes > 0 && r.memoryBytes > l.memoryBytes)
        throw bad(
          'spec.task.resources.reservations.memoryBytes',
          `(${r.memoryBytes} bytes) is more than the limit (${l.memoryBytes} bytes): lower the reservation or raise the limit`,
        );
    }
  }

  // restart
  // A job's task that succeeded never runs again: its default condition is on-failure, and any reads as on-failure (as Swarm's jobs).
  if (!isSet(task.restart)) task.restart = { ...DEFAULT_RESTART, ...(job ? { condition: RestartCondition.ON_FAILURE } : {}) };
  else {
    if (job && task.restart.condition === RestartCondition.ANY) {
      task.restart.condition = RestartCondition.ON_FAILURE;
      warnings.push('restart condition "any" is "on-failure" for a job: a task that completed is not run again');
    }
    const r = task.restart;
    if (!(r.condition in RestartCondition))
      throw bad('spec.task.restart.condition', `must be none, on-failure or any (got ${r.condition})`);
    nonNegative('spec.task.restart.delayMs', r.delayMs, 'give a duration such as 5s');
    nonNegative('spec.task.restart.windowMs', r.windowMs, 'give a duration such as 1m (0: forever)');
    nonNegative('spec.task.restart.maxAttempts', r.maxAttempts, 'give a whole number (0: no limit)');
  }

  // placement
  const p = task.placement;
  if (isSet(p)) {
    parseConstraints(p.constraints);
    p.preferences.forEach((pref, i) => parseSpreadPreference(pref.spread, `spec.task.placement.preferences[${i}].spread`));
    nonNegative('spec.task.placement.maxReplicas', p.maxReplicas, 'give a whole number (0: no limit)');
  }
  const netTargets = new Map<string, number>();
  task.networks.forEach((n, i) => {
    if (!n.target) throw bad(`spec.task.networks[${i}].target`, 'is required: give a network name or id');
    const prev = netTargets.get(n.target.toLowerCase());
    if (prev !== undefined) throw bad(`spec.task.networks[${i}].target`, `"${n.target}" is also networks[${prev}]: give each network once`);
    netTargets.set(n.target.toLowerCase(), i);
    const refused = refusedPredefined(n.target);
    if (refused) throw bad(`spec.task.networks[${i}].target`, `(--network ${n.target}): ${refused}`);
    n.aliases.forEach((a, j) => {
      if (!validHostname(a) || a.includes('{{'))
        throw bad(
          `spec.task.networks[${i}].aliases[${j}]`,
          `"${a}" is not a valid DNS name: use letters, digits and "-" in dot-separated labels`,
        );
    });
  });
  // The log driver: its name and options as spec/log-driver.ts honours them (an empty name: the node's bounded default).
  try {
    logPolicy(task.logDriver);
  } catch (e) {
    if (e instanceof LogDriverError) throw bad('spec.task.logDriver', `is not valid: ${e.message}`);
    throw e;
  }

  checkNoNetwork(spec);

  // update and rollback
  for (const k of ['update', 'rollback'] as const) {
    const u = spec[k];
    if (job) {
      // Every update of a job starts a new iteration: there is no rolling update to configure (as Swarm).
      if (isSet(u))
        throw bad(`spec.${k}`, `cannot be set for a job: an update of a job starts a new iteration of it; leave out the --${k}-* flags`);
      continue;
    }
    if (!isSet(u)) spec[k] = { ...DEFAULT_UPDATE };
    else checkUpdateConfig(`spec.${k}`, u);
  }

  // endpoint
  checkEndpoint(spec);

  return { spec, warnings };
}

// ------------------------------------------------------------------ bounds

/**
 * The most a spec may hold, field by field. The store also caps a whole
 * transaction (1.5 MiB), but these are checked first so that the error names
 * the field. Counts are far above what a real service uses; numbers stop
 * where the runtime would misbehave: durations at Node's longest timer
 * (2^31 - 1 ms, about 24.8 days: a longer setTimeout fires at once), pids at
 * Linux's PID_MAX_LIMIT, memory at 2^50 bytes (1 PiB).
 */
export const SPEC_LIMITS = {
  nameLength: 63,
  labels: 256,
  labelKeyLength: 1024,
  labelValueLength: 4096,
  imageLength: 1024,
  /** Entries of --env, of the command and of its args, each. */
  env: 1000,
  command: 1000,
  args: 1000,
  /** One env entry, command word or argument (Linux's own cap on one is 128 KiB). */
  argLength: 32 * 1024,
  pathLength: 4096,
  userLength: 256,
  hostnameLength: 253,
  stopSignalLength: 32,
  mounts: 100,
  healthTest: 100,
  constraints: 100,
  constraintLength: 1024,
  preferences: 32,
  platforms: 32,
  networks: 32,
  aliases: 32,
  networkRefLength: 256,
  ports: 1000,
  portNameLength: 64,
  secrets: 100,
  configs: 100,
  /** A secret or config reference (id or name) in a service spec. */
  objectRefLength: 256,
  /** Tasks of one replicated service; also caps parallelism and tasks per node. */
  replicas: 100_000,
  nanoCpus: 10_000 * 1e9,
  memoryBytes: 2 ** 50,
  pids: 4_194_304,
  durationMs: 2_147_483_647,
  restartAttempts: 1_000_000,
  healthRetries: 10_000,
  driverOpts: 32,
  /** --sysctl, --ulimit, --dns*, --host, --group, --oom-score-adj, --generic-resource (spec/container-options.ts). */
  ...OPTION_LIMITS,
  cidrLength: 64,
  /** pullOptions.registryAuth: as the Engine API's X-Registry-Auth header (an AuthConfig with a token is a few KiB). */
  registryAuthLength: 16 * 1024,
} as const;

/**
 * The most a service's task spec may take encoded. Every task carries a copy,
 * and a task must fit one store transaction (1.5 MiB) with its status,
 * addresses and ports at their bounds; the field limits alone would allow
 * megabytes (1,000 env entries of 32 KiB).
 */
export const MAX_TASK_SPEC_BYTES = 256 * 1024;
/** The most a whole service spec may take encoded: a service is stored with its spec and the previous one, in one transaction. */
export const MAX_SERVICE_SPEC_BYTES = 512 * 1024;

function atMostEntries(field: string, flag: string, n: number, max: number): void {
  if (n > max) throw bad(field, `has ${n} entries: at most ${max} are allowed (${flag})`);
}

/** The value is not echoed: it may be megabytes long. */
function atMostChars(field: string, flag: string, s: unknown, max: number): void {
  if (typeof s === 'string' && s.length > max) throw bad(field, `is ${s.length} characters long: at most ${max} are allowed (${flag})`);
}

function listAtMost(field: string, flag: string, xs: readonly string[], maxCount: number, maxLength: number): void {
  atMostEntries(field, flag, xs.length, maxCount);
  xs.forEach((x, i) => atMostChars(`${field}[${i}]`, flag, x, maxLength));
}

export function labelsAtMost(
  field: string,
  flag: string,
  labels: Readonly<Record<string, string>> | null | undefined,
  max: number = SPEC_LIMITS.labels,
): void {
  const keys = Object.keys(labels ?? {});
  atMostEntries(field, flag, keys.length, max);
  for (const k of keys) {
    if (k.length > SPEC_LIMITS.labelKeyLength)
      throw bad(field, `has a key of ${k.length} characters: at most ${SPEC_LIMITS.labelKeyLength} are allowed (${flag})`);
    atMostChars(`${field}.${k}`, flag, labels![k], SPEC_LIMITS.labelValueLength);
  }
}

/** A whole number from 0 to `max`; `what` says what the limit is about. */
function numberAtMost(field: string, flag: string, v: number, max: number, what: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(field, `must be a whole number ≥ 0 (got ${v}) (${flag})`);
  if (v > max) throw bad(field, `must be at most ${max} (got ${v}): ${what} (${flag})`);
}

function durationAtMost(field: string, flag: string, v: number): void {
  if (typeof v === 'number' && Number.isFinite(v) && v > SPEC_LIMITS.durationMs) {
    throw bad(field, `must be at most ${SPEC_LIMITS.durationMs} ms, about 24 days (got ${v} ms): give a shorter duration (${flag})`);
  }
}

/**
 * Sizes and numeric ranges of every field a client's service spec carries,
 * checked before anything else reads the spec, so an oversized field is
 * refused by name and nothing larger than the limits reaches the store.
 */
export function checkServiceSpecBounds(spec: ServiceSpec): void {
  const L = SPEC_LIMITS;
  atMostChars('spec.name', '--name', spec.name, L.nameLength);
  labelsAtMost('spec.labels', '--label', spec.labels);
  if (spec.replicatedJob) {
    numberAtMost(
      'spec.mode.replicatedJob.totalCompletions',
      '--replicas',
      spec.replicatedJob.totalCompletions,
      L.replicas,
      `a job makes at most ${L.replicas} completions; split it into several jobs`,
    );
    numberAtMost(
      'spec.mode.replicatedJob.maxConcurrent',
      '--max-concurrent',
      spec.replicatedJob.maxConcurrent,
      L.replicas,
      `a service runs at most ${L.replicas} tasks`,
    );
  }
  if (spec.replicated)
    numberAtMost(
      'spec.mode.replicated.replicas',
      '--replicas',
      spec.replicated.replicas,
      L.replicas,
      `a service runs at most ${L.replicas} tasks; split it into several services`,
    );

  const task = spec.task;
  const c = task?.container;
  if (c) {
    const f = 'spec.task.container';
    atMostChars(`${f}.image`, 'IMAGE', c.image, L.imageLength);
    listAtMost(`${f}.command`, '--entrypoint', c.command, L.command, L.argLength);
    listAtMost(`${f}.args`, 'COMMAND ARG...', c.args, L.args, L.argLength);
    listAtMost(`${f}.env`, '--env', c.env, L.env, L.argLength);
    atMostChars(`${f}.dir`, '--workdir', c.dir, L.pathLength);
    atMostChars(`${f}.user`, '--user', c.user, L.userLength);
    atMostChars(`${f}.hostname`, '--hostname', c.hostname, L.hostnameLength);
    atMostChars(`${f}.stopSignal`, '--stop-signal', c.stopSignal, L.stopSignalLength);
    labelsAtMost(`${f}.labels`, '--container-label', c.labels);
    atMostEntries(`${f}.mounts`, '--mount', c.mounts.length, L.mounts);
    c.mounts.forEach((m, i) => {
      labelsAtMost(`${f}.mounts[${i}].volumeLabels`, '--mount volume-label=', m.volumeLabels);
      atMostChars(`${f}.mounts[${i}].source`, '--mount source=', m.source, L.pathLength);
      atMostChars(`${f}.mounts[${i}].target`, '--mount target=', m.target, L.pathLength);
    });
    durationAtMost(`${f}.stopGracePeriodMs`, '--stop-grace-period', c.stopGracePeriodMs);
    atMostEntries(`${f}.secrets`, '--secret', c.secrets.length, L.secrets);
    atMostEntries(`${f}.configs`, '--config', c.configs.length, L.configs);
    for (const [kind, refs] of [
      ['secret', c.secrets.map((r) => ({ id: r.secretId, name: r.secretName, target: r.target }))],
      ['config', c.configs.map((r) => ({ id: r.configId, name: r.configName, target: r.target }))],
    ] as const) {
      refs.forEach((r, i) => {
        const g = `${f}.${kind}s[${i}]`;
        atMostChars(`${g}.${kind}Id`, `--${kind}`, r.id, L.objectRefLength);
        atMostChars(`${g}.${kind}Name`, `--${kind}`, r.name, L.objectRefLength);
        atMostChars(`${g}.target.name`, `--${kind} target=`, r.target?.name, L.pathLength);
        atMostChars(`${g}.target.uid`, `--${kind} uid=`, r.target?.uid, L.userLength);
        atMostChars(`${g}.target.gid`, `--${kind} gid=`, r.target?.gid, L.userLength);
      });
    }
    // Counts and lengths, then each value: these options are small enough to check whole here.
    checkContainerOptions(c);
    const h = c.healthcheck;
    if (h) {
      listAtMost(`${f}.healthcheck.test`, '--health-cmd', h.test, L.healthTest, L.argLength);
      durationAtMost(`${f}.healthcheck.intervalMs`, '--health-interval', h.intervalMs);
      durationAtMost(`${f}.healthcheck.timeoutMs`, '--health-timeout', h.timeoutMs);
      durationAtMost(`${f}.healthcheck.startPeriodMs`, '--health-start-period', h.startPeriodMs);
      durationAtMost(`${f}.healthcheck.startIntervalMs`, '--health-start-interval', h.startIntervalMs ?? 0);
      numberAtMost(
        `${f}.healthcheck.retries`,
        '--health-retries',
        h.retries,
        L.healthRetries,
        'more failures in a row than that never make a task unhealthy in practice',
      );
    }
  }
  if (task) {
    for (const [k, flag] of [
      ['limits', '--limit'],
      ['reservations', '--reserve'],
    ] as const) {
      const r = task.resources?.[k];
      if (!r) continue;
      numberAtMost(
        `spec.task.resources.${k}.nanoCpus`,
        `${flag}-cpu`,
        r.nanoCpus,
        L.nanoCpus,
        `${L.nanoCpus / 1e9} CPUs is the most a task can ask for`,
      );
      numberAtMost(
        `spec.task.resources.${k}.memoryBytes`,
        `${flag}-memory`,
        r.memoryBytes,
        L.memoryBytes,
        'memory is at most 1 PiB (2^50 bytes)',
      );
      numberAtMost(`spec.task.resources.${k}.pids`, '--limit-pids', r.pids, L.pids, `Linux has at most ${L.pids} processes`);
      checkGenericResources(`spec.task.resources.${k}.generic (--generic-resource)`, r.generic ?? []);
    }
    const r = task.restart;
    if (r) {
      durationAtMost('spec.task.restart.delayMs', '--restart-delay', r.delayMs);
      durationAtMost('spec.task.restart.windowMs', '--restart-window', r.windowMs);
      numberAtMost('spec.task.restart.maxAttempts', '--restart-max-attempts', r.maxAttempts, L.restartAttempts, 'use 0 for no limit');
    }
    const p = task.placement;
    if (p) {
      listAtMost('spec.task.placement.constraints', '--constraint', p.constraints, L.constraints, L.constraintLength);
      atMostEntries('spec.task.placement.preferences', '--placement-pref', p.preferences.length, L.preferences);
      p.preferences.forEach((x, i) =>
        atMostChars(`spec.task.placement.preferences[${i}].spread`, '--placement-pref', x.spread, L.constraintLength),
      );
      atMostEntries('spec.task.placement.platforms', 'platforms', p.platforms.length, L.platforms);
      numberAtMost('spec.task.placement.maxReplicas', '--max-replicas', p.maxReplicas, L.replicas, 'use 0 for no limit');
    }
    atMostEntries('spec.task.networks', '--network', task.networks.length, L.networks);
    task.networks.forEach((n, i) => {
      atMostChars(`spec.task.networks[${i}].target`, '--network', n.target, L.networkRefLength);
      listAtMost(`spec.task.networks[${i}].aliases`, '--network alias=', n.aliases, L.aliases, L.hostnameLength);
    });
    numberAtMost('spec.task.forceUpdate', '--force', task.forceUpdate, Number.MAX_SAFE_INTEGER, 'the counter cannot grow further');
    if (task.logDriver) {
      atMostChars('spec.task.logDriver.name', '--log-driver', task.logDriver.name, L.portNameLength);
      labelsAtMost('spec.task.logDriver.options', '--log-opt', task.logDriver.options, L.driverOpts);
    }
  }
  for (const k of ['update', 'rollback'] as const) {
    const u = spec[k];
    if (!u) continue;
    numberAtMost(`spec.${k}.parallelism`, `--${k}-parallelism`, u.parallelism, L.replicas, 'use 0 to update all tasks at once');
    durationAtMost(`spec.${k}.delayMs`, `--${k}-delay`, u.delayMs);
    durationAtMost(`spec.${k}.monitorMs`, `--${k}-monitor`, u.monitorMs);
  }
  const ports = spec.endpoint?.ports ?? [];
  atMostEntries('spec.endpoint.ports', '--publish', ports.length, L.ports);
  ports.forEach((p, i) => atMostChars(`spec.endpoint.ports[${i}].name`, '--publish', p.name, L.portNameLength));
  // Last: each field is within its own bound, but together they may not be.
  const taskBytes = task ? TaskSpec.size(task) : 0;
  if (taskBytes > MAX_TASK_SPEC_BYTES) {
    throw bad(
      'spec.task',
      `is ${taskBytes} bytes encoded: at most ${MAX_TASK_SPEC_BYTES} bytes (256 KiB) are allowed, as every task carries a copy of it: make --env, the command and its args, --container-label, --mount or other task fields smaller`,
    );
  }
  const specBytes = ServiceSpec.size(spec);
  if (specBytes > MAX_SERVICE_SPEC_BYTES) {
    throw bad(
      'spec',
      `is ${specBytes} bytes encoded: at most ${MAX_SERVICE_SPEC_BYTES} bytes (512 KiB) are allowed, as the service is stored with this spec and the previous one: make --label or the task's fields smaller`,
    );
  }
}

/** A node's labels (`node update --label-add`), bounded as a service's are. */
export function checkNodeLabels(labels: Readonly<Record<string, string>>): void {
  for (const k of Object.keys(labels)) if (!k) throw bad('spec.labels', 'has an empty key: write --label-add KEY=VALUE');
  labelsAtMost('spec.labels', '--label-add', labels);
}

/** Sizes of what a network spec carries (the network checks themselves are in network.ts). */
export function checkNetworkSpecBounds(spec: NetworkSpecBounded): void {
  atMostChars('spec.name', 'NAME', spec.name, SPEC_LIMITS.nameLength);
  labelsAtMost('spec.labels', '--label', spec.labels);
  labelsAtMost('spec.driverOpts', '--opt', spec.driverOpts, SPEC_LIMITS.driverOpts);
  atMostChars('spec.driver', '--driver', spec.driver, SPEC_LIMITS.nameLength);
  atMostChars('spec.subnet', '--subnet', spec.subnet, SPEC_LIMITS.cidrLength);
  atMostChars('spec.gateway', '--gateway', spec.gateway, SPEC_LIMITS.cidrLength);
}
type NetworkSpecBounded = Pick<NetworkSpec, 'name' | 'labels' | 'driverOpts' | 'driver' | 'subnet' | 'gateway'>;
