// Bounds on what a node sends in its session: the description in its hello
// and each task status report. A node is not trusted to keep them small, and
// what it sends ends up in the store and in every `node ls` / `service ps`.
// Informative text is cut to its limit; a malformed id refuses the message.
import type pino from 'pino';
import { TsswarmError } from '../../lib/errors.js';
import type { AgentHello, TaskStatusUpdate } from '../../proto/gen/control.js';
import type { PortConfig, TaskStatus } from '../../proto/gen/objects.js';
import { OPTION_LIMITS } from '../../spec/container-options.js';

export const NODE_LIMITS = {
  /** RFC 1123's whole-name limit; Linux's own hostnames are shorter (64). */
  hostnameLength: 253,
  platformLength: 64,
  engineVersionLength: 128,
  /** 10,000 CPUs and 1 PiB of memory: above any machine, below any overflow in the scheduler's sums. */
  nanoCpus: 10_000 * 1e9,
  memoryBytes: 2 ** 50,
  pids: 4_194_304,
  /** Kinds of generic resources a node advertises (node-generic-resources), and each count. */
  genericResources: OPTION_LIMITS.genericResources,
  genericKindLength: OPTION_LIMITS.genericKindLength,
  genericValue: OPTION_LIMITS.genericValue,
  /** Status text shown by `service ps`; the runtime's errors fit easily. */
  statusMessageLength: 1024,
  statusErrLength: 4096,
  /** Task ids are 25 characters. */
  idLength: 64,
  /** `tss-<service name>.<slot>.<task id>`: at most 114 characters (agent/worker/task.ts). */
  containerIdLength: 128,
  portStatus: 1000,
  portNameLength: 64,
  /** Engine labels (`tsswarm daemon --label`): as many as a daemon may set, each key and value bounded. */
  engineLabels: 64,
  engineLabelKeyLength: 128,
  engineLabelValueLength: 1024,
  /** Reports in one batch; an agent sends one per task that changed since its last batch. */
  updatesPerBatch: 20_000,
} as const;

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/**
 * An engine label's key: letters, digits, ".", "_", "/" and "-", starting with
 * a letter or digit (what the daemon accepts for `--label`, node/daemon-config.ts).
 * No "=" (a constraint `engine.labels.KEY==VALUE` could not name it) and no control characters.
 */
export const ENGINE_LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;
/** C0 and C1 control characters and DEL: an engine label's value may hold none (`node inspect` prints it, logs carry it). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
/** Whether an engine label's value holds a control character (the daemon refuses it, a manager drops it). */
export const engineLabelValueHasControl = (v: string): boolean => CONTROL_RE.test(v);
/**
 * Letters, digits, ".", "_" and "-", starting with a letter or digit: what a
 * hostname can safely be shown and templated as. Templates put it into
 * container hostnames and volume names (`--mount source={{.Node.Hostname}}`),
 * so a "/" or a leading "." would turn it into a path.
 */
const HOSTNAME_RE = /^([A-Za-z0-9][A-Za-z0-9._-]*)?$/;
const HEALTH = new Set(['', 'starting', 'healthy', 'unhealthy']);

function cut(s: string, max: number, field: string, cuts: string[]): string {
  if (typeof s !== 'string') return '';
  if (s.length <= max) return s;
  cuts.push(`${field} (${s.length} characters, kept ${max})`);
  return s.slice(0, max);
}

function clamp(n: number, max: number, field: string, cuts: string[]): number {
  if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= max) return n;
  cuts.push(`${field} (${String(n).slice(0, 32)}, kept ${n > max ? max : 0})`);
  return typeof n === 'number' && n > max ? max : 0;
}

/**
 * Why a hostname a node reports (in its hello, or when it joins) cannot be
 * kept, or undefined: too long, or holding anything but letters, digits,
 * ".", "_" and "-" (templates put it into container hostnames and volume
 * names, `node ls` prints it).
 */
export function nodeHostnameError(field: string, hostname: unknown): TsswarmError | undefined {
  const host = typeof hostname === 'string' ? hostname : '';
  if (host.length <= NODE_LIMITS.hostnameLength && HOSTNAME_RE.test(host)) return undefined;
  const why =
    host.length > NODE_LIMITS.hostnameLength
      ? `is ${host.length} characters long: at most ${NODE_LIMITS.hostnameLength} are allowed`
      : `holds ${JSON.stringify(host.slice(0, 64))}${host.length > 64 ? '…' : ''}, which has characters other than letters, digits, ".", "_" and "-" or does not start with a letter or digit`;
  return new TsswarmError(
    'INVALID_ARGUMENT',
    `${field} ${why}: give the node a DNS-style hostname (hostnamectl set-hostname NAME) and restart the daemon`,
  );
}

/**
 * Bounds a session hello in place: platform, engine version and resources
 * are cut or clamped to NODE_LIMITS (with one warning naming the node);
 * a hostname that is too long or holds other characters (a "/" above all) refuses the hello,
 * since templates put it into container hostnames. Returns the error that
 * refuses the session, or undefined.
 */
export function boundHello(nodeId: string, hello: AgentHello, log: pino.Logger): TsswarmError | undefined {
  const L = NODE_LIMITS;
  const d = hello.description;
  if (!d) return undefined;
  const bad = nodeHostnameError('hello.description.hostname', d.hostname);
  if (bad) {
    log.warn({ node: nodeId, hostnameLength: String(d.hostname).length }, 'session hello refused: the node hostname is out of bounds');
    return bad;
  }
  const cuts: string[] = [];
  if (d.platform) {
    d.platform.os = cut(d.platform.os, L.platformLength, 'platform.os', cuts);
    d.platform.architecture = cut(d.platform.architecture, L.platformLength, 'platform.architecture', cuts);
  }
  d.engineVersion = cut(d.engineVersion, L.engineVersionLength, 'engineVersion', cuts);
  if (d.resources) {
    d.resources.nanoCpus = clamp(d.resources.nanoCpus, L.nanoCpus, 'resources.nanoCpus', cuts);
    d.resources.memoryBytes = clamp(d.resources.memoryBytes, L.memoryBytes, 'resources.memoryBytes', cuts);
    d.resources.pids = clamp(d.resources.pids, L.pids, 'resources.pids', cuts);
    // Generic resources: a kind that is not a plain name is dropped, a count clamped, the list cut; one kind once.
    const generic = Array.isArray(d.resources.generic) ? d.resources.generic : [];
    if (generic.length > L.genericResources) cuts.push(`resources.generic (${generic.length} kinds, kept ${L.genericResources})`);
    const kinds = new Set<string>();
    d.resources.generic = generic.slice(0, L.genericResources).flatMap((g, i) => {
      const kind = typeof g?.kind === 'string' ? g.kind : '';
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(kind) || kind.length > L.genericKindLength || kinds.has(kind)) {
        cuts.push(`resources.generic[${i}].kind (dropped)`);
        return [];
      }
      kinds.add(kind);
      return [{ kind, value: clamp(g.value, L.genericValue, `resources.generic[${i}].value`, cuts) }];
    });
  }
  d.engineLabels = boundEngineLabels(d.engineLabels, cuts);
  if (cuts.length) log.warn({ node: nodeId, fields: cuts }, 'node description out of bounds: fields cut to their limits');
  return undefined;
}

/**
 * The engine labels kept: the first NODE_LIMITS.engineLabels with a key of the
 * daemon's character set and a value without control characters, each within
 * bounds; the rest dropped, counted by reason in the hello's warning.
 */
function boundEngineLabels(labels: Record<string, string> | undefined, cuts: string[]): Record<string, string> {
  const L = NODE_LIMITS;
  const out: Record<string, string> = {};
  let kept = 0;
  let surplus = 0;
  let tooLong = 0;
  let badKey = 0;
  let control = 0;
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (typeof v !== 'string' || k.length > L.engineLabelKeyLength || v.length > L.engineLabelValueLength) tooLong++;
    else if (!ENGINE_LABEL_KEY_RE.test(k)) badKey++;
    else if (CONTROL_RE.test(v)) control++;
    else if (kept >= L.engineLabels) surplus++;
    else {
      out[k] = v;
      kept++;
    }
  }
  if (surplus) cuts.push(`engineLabels (${surplus} dropped: at most ${L.engineLabels})`);
  if (tooLong)
    cuts.push(`engineLabels (${tooLong} dropped: keys ≤ ${L.engineLabelKeyLength}, values ≤ ${L.engineLabelValueLength} characters)`);
  if (badKey)
    cuts.push(`engineLabels (${badKey} dropped: a key of letters, digits, ".", "_", "/" and "-", starting with a letter or digit)`);
  if (control) cuts.push(`engineLabels (${control} dropped: a value with control characters)`);
  return out;
}

function validId(s: unknown, max: number, allowEmpty: boolean): boolean {
  if (typeof s !== 'string') return false;
  if (s === '') return allowEmpty;
  return s.length <= max && ID_RE.test(s);
}

function validPort(p: PortConfig): boolean {
  const port = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 65535;
  return port(p.targetPort) && port(p.publishedPort) && typeof p.name === 'string' && p.name.length <= NODE_LIMITS.portNameLength;
}

/**
 * The task status reports of one batch that may be written, bounded: a
 * report with a malformed task or container id is dropped, status text is
 * cut, an unknown health value is cleared, invalid or surplus port entries
 * are dropped. One warning per batch names the node and what was changed.
 */
export function boundStatusUpdates(nodeId: string, updates: readonly TaskStatusUpdate[], log: pino.Logger): TaskStatusUpdate[] {
  const L = NODE_LIMITS;
  const out: TaskStatusUpdate[] = [];
  const dropped: string[] = [];
  const cuts: string[] = [];
  const list = updates.length > L.updatesPerBatch ? updates.slice(0, L.updatesPerBatch) : updates;
  if (list !== updates) dropped.push(`${updates.length - L.updatesPerBatch} reports past the first ${L.updatesPerBatch}`);
  for (const u of list) {
    const s = u.status;
    if (!validId(u.taskId, L.idLength, false)) {
      dropped.push(`a report with a malformed task id (${String(u.taskId).length} characters)`);
      continue;
    }
    if (!s) {
      out.push(u);
      continue;
    }
    if (!validId(s.containerId, L.containerIdLength, true)) {
      dropped.push(`task ${u.taskId}: malformed container id (${String(s.containerId).length} characters)`);
      continue;
    }
    const status: TaskStatus = {
      ...s,
      message: cut(s.message, L.statusMessageLength, `task ${u.taskId} message`, cuts),
      err: cut(s.err, L.statusErrLength, `task ${u.taskId} err`, cuts),
      health: HEALTH.has(s.health) ? s.health : '',
      portStatus: s.portStatus,
    };
    if (status.health !== s.health) cuts.push(`task ${u.taskId} health (unknown value cleared)`);
    const ports = (s.portStatus ?? []).filter(validPort);
    if (ports.length !== (s.portStatus ?? []).length)
      cuts.push(`task ${u.taskId} portStatus (${(s.portStatus ?? []).length - ports.length} invalid entries dropped)`);
    if (ports.length > L.portStatus) cuts.push(`task ${u.taskId} portStatus (${ports.length} entries, kept ${L.portStatus})`);
    status.portStatus = ports.length > L.portStatus ? ports.slice(0, L.portStatus) : ports;
    out.push({ ...u, status });
  }
  if (dropped.length || cuts.length) {
    // At most a few examples: a hostile batch must not turn into a huge log line.
    log.warn(
      { node: nodeId, dropped: dropped.length, cut: cuts.length, examples: [...dropped, ...cuts].slice(0, 5) },
      'task status reports out of bounds: malformed ones dropped, the rest cut to their limits',
    );
  }
  return out;
}
