// Merges normalised compose files as docker's loader does (mergo with its
// override and append options and a few special cases): services by name,
// non-zero scalars override, maps merge, plain lists append, command and
// entrypoint are replaced, ports/volumes/secrets/configs are keyed (by
// published port, target, source) and re-sorted, logging merges only under
// the same driver, a network attachment's aliases are replaced, and
// top-level networks, volumes, secrets and configs are replaced whole.
import type { YamlMap, YamlValue } from './yaml.js';

const isMap = (v: YamlValue | undefined): v is YamlMap => v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v);

/** Keys held by pointers in docker's types: an explicit zero still overrides. */
const POINTERS = new Set([
  'replicas',
  'init',
  'parallelism',
  'max_attempts',
  'delay',
  'window',
  'stop_grace_period',
  'timeout',
  'interval',
  'retries',
  'start_period',
  'start_interval',
]);

const REPLACED = new Set(['command', 'entrypoint']);

const KEYED: Record<string, (v: YamlMap) => string | number> = {
  ports: (p) => Number(p.published ?? 0),
  volumes: (v) => String(v.target ?? ''),
  secrets: (r) => String(r.source ?? ''),
  configs: (r) => String(r.source ?? ''),
};

function isZero(v: YamlValue | undefined): boolean {
  return v === undefined || v === null || v === '' || v === false || v === 0 || v === 0n;
}

function keyedMerge(key: string, base: YamlValue[], over: YamlValue[]): YamlValue[] {
  const keyOf = KEYED[key] as (v: YamlMap) => string | number;
  const m = new Map<string | number, YamlValue>();
  for (const x of [...base, ...over]) m.set(keyOf(x as YamlMap), x);
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, x]) => x);
}

function mergeValue(key: string, base: YamlValue | undefined, over: YamlValue | undefined): YamlValue | undefined {
  if (over === undefined) return base;
  if (base === undefined || base === null) return over;
  if (REPLACED.has(key)) return isZero(over) || (Array.isArray(over) && over.length === 0) ? base : over;
  if (key in KEYED && Array.isArray(base) && Array.isArray(over)) return keyedMerge(key, base, over);
  if (Array.isArray(base) && Array.isArray(over)) return [...base, ...over];
  if (isMap(base) && isMap(over)) return mergeMap(base, over);
  if (POINTERS.has(key)) return over === null ? base : over;
  return isZero(over) ? base : over;
}

function mergeMap(base: YamlMap, over: YamlMap): YamlMap {
  const out: YamlMap = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const r = mergeValue(k, base[k], v);
    if (r !== undefined) out[k] = r;
  }
  return out;
}

function mergeLogging(base: YamlValue | undefined, over: YamlValue | undefined): YamlValue | undefined {
  if (!isMap(over)) return base;
  if (!isMap(base)) return over;
  if (!over.driver || over.driver === base.driver) {
    const options =
      isMap(base.options) || isMap(over.options)
        ? { ...((base.options as YamlMap) ?? {}), ...((over.options as YamlMap) ?? {}) }
        : undefined;
    return { ...base, driver: base.driver ?? over.driver ?? null, ...(options ? { options } : {}) };
  }
  return over;
}

function mergeNetworks(base: YamlValue | undefined, over: YamlValue | undefined): YamlValue | undefined {
  if (!isMap(over)) return base;
  if (!isMap(base)) return over;
  const out: YamlMap = { ...base };
  for (const [name, o] of Object.entries(over)) {
    const b = base[name];
    if (!(name in base) || !isMap(b)) out[name] = o;
    else if (isMap(o)) {
      const merged: YamlMap = { ...b, ...o };
      if ('aliases' in o) merged.aliases = o.aliases as YamlValue;
      else delete merged.aliases;
      out[name] = merged;
    }
  }
  return out;
}

export function mergeService(base: YamlMap, over: YamlMap): YamlMap {
  const out = mergeMap(base, over);
  if ('logging' in over) out.logging = mergeLogging(base.logging, over.logging) ?? null;
  if ('networks' in over) out.networks = mergeNetworks(base.networks, over.networks) ?? null;
  return out;
}

/** Merges normalised files in order (later files win). */
export function mergeFiles(files: YamlMap[]): YamlMap {
  const [first, ...rest] = files;
  const out: YamlMap = { ...(first ?? {}) };
  for (const f of rest) {
    for (const [k, v] of Object.entries(f)) {
      if (k === 'services' && isMap(v)) {
        const services: YamlMap = { ...((out.services as YamlMap) ?? {}) };
        for (const [name, svc] of Object.entries(v)) {
          const b = services[name];
          services[name] = isMap(b) && isMap(svc) ? mergeService(b, svc) : svc;
        }
        out.services = services;
      } else if (['networks', 'volumes', 'secrets', 'configs'].includes(k) && isMap(v)) {
        out[k] = { ...((out[k] as YamlMap) ?? {}), ...v };
      } else if (k !== 'version') out[k] = v;
    }
  }
  return out;
}
