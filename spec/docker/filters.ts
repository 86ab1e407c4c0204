// The `filters` query parameter of Docker's list routes, and the service and
// task filters of GET /services and GET /tasks as predicates over our objects
// (moby daemon/cluster/filters.go and SwarmKit's ListServices/ListTasks).
// Parsing is bounded, since the parameter comes from any client. Pure: what
// needs the store (resolving a service name, the task's service) comes from
// the caller's context.
import { UsageError } from '../../lib/errors.js';
import type { Service, Task, TaskState } from '../../proto/gen/objects.js';
import { isTaskUpToDate } from '../task-spec.js';
import { dockerTaskName, taskStateFromDocker } from './task.js';

/** filter key → its values (`{"label":{"a=b":true}}` → label → {a=b}). */
export type DockerFilters = ReadonlyMap<string, ReadonlySet<string>>;

/** The longest `filters` parameter read (characters): far above any CLI's, far below what could cost a manager anything. */
export const MAX_FILTERS_CHARS = 64 * 1024;
/** Values of all keys together. */
export const MAX_FILTER_VALUES = 1000;

/** moby's message for a filter parameter that is not JSON of the right shape. */
const invalid = (): UsageError => new UsageError('invalid filter', { field: 'filters' });

/**
 * Parses Docker's filters JSON: `{"key":{"value":true}}`, or the legacy
 * `{"key":["value"]}`. Empty or absent is no filter. Anything else (other
 * JSON, a value that is neither, more than MAX_FILTERS_CHARS characters or
 * MAX_FILTER_VALUES values) is UsageError `invalid filter`, as moby's.
 */
export function parseDockerFilters(raw: string | null | undefined): DockerFilters {
  const out = new Map<string, Set<string>>();
  if (raw === null || raw === undefined || raw === '') return out;
  if (raw.length > MAX_FILTERS_CHARS)
    throw new UsageError(`invalid filter: the filters parameter is ${raw.length} characters long, at most ${MAX_FILTERS_CHARS} are read`, {
      field: 'filters',
    });
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw invalid();
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid();
  let count = 0;
  for (const [key, vals] of Object.entries(v as Record<string, unknown>)) {
    const set = new Set<string>();
    if (Array.isArray(vals)) {
      for (const x of vals) {
        if (typeof x !== 'string') throw invalid();
        set.add(x);
      }
    } else if (vals !== null && typeof vals === 'object') {
      for (const [x, on] of Object.entries(vals as Record<string, unknown>)) {
        if (typeof on !== 'boolean') throw invalid();
        set.add(x);
      }
    } else throw invalid();
    count += set.size;
    if (count > MAX_FILTER_VALUES)
      throw new UsageError(`invalid filter: more than ${MAX_FILTER_VALUES} filter values`, { field: 'filters' });
    out.set(key, set);
  }
  return out;
}

/** moby's check of the keys a route accepts: `invalid filter 'x'`. */
export function checkFilterKeys(f: DockerFilters, accepted: readonly string[]): void {
  for (const k of f.keys()) if (!accepted.includes(k)) throw new UsageError(`invalid filter '${k}'`, { field: 'filters' });
}

/** The values given for `k` (none: the key was not given). */
export const filterValues = (f: DockerFilters, k: string): string[] => [...(f.get(k) ?? [])];
const values = filterValues;

/** `label` values against labels: each `k` must be present, each `k=v` present with that value (SwarmKit's filterMatchLabels). */
export function matchLabels(labels: Readonly<Record<string, string>>, filter: readonly string[]): boolean {
  for (const l of filter) {
    const eq = l.indexOf('=');
    const k = eq < 0 ? l : l.slice(0, eq);
    if (!Object.hasOwn(labels, k)) return false;
    const v = eq < 0 ? '' : l.slice(eq + 1);
    if (v !== '' && labels[k] !== v) return false;
  }
  return true;
}

/** No prefixes given, or `s` starts with one of them. */
export const anyPrefix = (s: string, prefixes: readonly string[]): boolean => !prefixes.length || prefixes.some((p) => s.startsWith(p));
/** No values given, or `s` is one of them. */
export const anyOf = (s: string, xs: readonly string[]): boolean => !xs.length || xs.includes(s);

export const SERVICE_FILTER_KEYS = ['id', 'name', 'label', 'mode', 'runtime'] as const;

const modeOf = (s: Service): string =>
  s.spec.replicatedJob ? 'replicated-job' : s.spec.globalJob ? 'global-job' : s.spec.global ? 'global' : 'replicated';

/**
 * GET /services filters as a predicate: `id` and `name` by prefix (any
 * value), `label` (all values), `mode` replicated|global|replicated-job|
 * global-job (exact),
 * `runtime` (container: all of ours). Unknown keys: UsageError.
 */
export function serviceFilter(f: DockerFilters): (s: Service) => boolean {
  checkFilterKeys(f, SERVICE_FILTER_KEYS);
  const ids = values(f, 'id');
  const names = values(f, 'name');
  const labels = values(f, 'label');
  const modes = values(f, 'mode');
  const runtimes = values(f, 'runtime');
  return (s) =>
    anyPrefix(s.meta.id, ids) &&
    anyPrefix(s.spec.name, names) &&
    matchLabels(s.spec.labels ?? {}, labels) &&
    anyOf(modeOf(s), modes) &&
    anyOf('container', runtimes);
}

export const TASK_FILTER_KEYS = ['id', 'name', 'label', 'service', 'node', 'desired-state', '_up-to-date', 'runtime'] as const;

/** What a task predicate needs from the store. */
export interface TaskFilterContext {
  /** The task's service, undefined once removed. */
  serviceOf: (t: Task) => Service | undefined;
  /** A `service` filter value (id, name or id prefix, as moby resolves it) → the service id; undefined when none matches. */
  resolveService?: (ref: string) => string | undefined;
  /** A `node` filter value → the node id; default the value itself. */
  resolveNode?: (ref: string) => string | undefined;
  /** The labels the `label` filter reads (SwarmKit: the service's labels copied onto the task); default the service's current labels. */
  labelsOf?: (t: Task) => Readonly<Record<string, string>>;
  /** `_up-to-date`: default isTaskUpToDate (spec/task-spec.ts), what the rolling updater goes by. */
  upToDate?: (service: Service, t: Task) => boolean;
}

/**
 * GET /tasks filters as a predicate: `id` and `name` (`service.slot.id`) by
 * prefix, `label` (the service's labels), `service` and `node` (exact, after
 * resolving), `desired-state` (any of the state words; moby's error for an
 * unknown word), `_up-to-date` (any value: the task runs its service's
 * current spec), `runtime` (container). Unknown keys: UsageError.
 */
export function taskFilter(f: DockerFilters, ctx: TaskFilterContext): (t: Task) => boolean {
  checkFilterKeys(f, TASK_FILTER_KEYS);
  const desired: Array<TaskState | undefined> = values(f, 'desired-state').map((w) => {
    const s = taskStateFromDocker(w);
    if (s === undefined && w.toLowerCase() !== 'allocated' && w !== '')
      throw new UsageError(`Invalid desired-state filter: '${w}'`, { field: 'filters' });
    return s;
  });
  const ids = values(f, 'id');
  const names = values(f, 'name');
  const labels = values(f, 'label');
  const services = values(f, 'service').map((r) => (ctx.resolveService ? ctx.resolveService(r) : r));
  const nodes = values(f, 'node').map((r) => (ctx.resolveNode ? ctx.resolveNode(r) : r));
  const runtimes = values(f, 'runtime');
  const upToDate = f.has('_up-to-date') && (f.get('_up-to-date')?.size ?? 0) > 0;
  return (t) => {
    if (!anyPrefix(t.meta.id, ids) || !anyPrefix(dockerTaskName(t), names)) return false;
    if (services.length && !services.includes(t.serviceId)) return false;
    if (nodes.length && !nodes.includes(t.nodeId)) return false;
    if (desired.length && !desired.includes(t.desiredState)) return false;
    if (!anyOf('container', runtimes)) return false;
    if (labels.length || upToDate) {
      const svc = ctx.serviceOf(t);
      if (labels.length && !matchLabels(ctx.labelsOf ? ctx.labelsOf(t) : (svc?.spec.labels ?? {}), labels)) return false;
      if (upToDate && (!svc || !(ctx.upToDate ?? isTaskUpToDate)(svc, t))) return false;
    }
    return true;
  };
}
