// The `filters` query parameter of dockerd's list routes: JSON of
// `{"key":{"value":true}}` (or the older `{"key":["value"]}`), the keys a
// route accepts (any other is `invalid filter 'x'`, a 400 as dockerd's), and
// the matchers SwarmKit applies: prefixes, exact values, labels.
import { UsageError } from '../../lib/errors.js';

/** Filter key → its values (the order of the request, duplicates dropped). */
export type Filters = ReadonlyMap<string, readonly string[]>;

/** The most values one filters parameter may carry in all, so a hostile query cannot make a list route quadratic. */
export const MAX_FILTER_VALUES = 256;

/** Parses `filters` (absent or '' is no filter) and refuses keys outside `accepted`. */
export function parseFilters(text: string | null | undefined, accepted: readonly string[]): Filters {
  const out = new Map<string, string[]>();
  if (!text) return out;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new UsageError('invalid filter', { field: 'filters' });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new UsageError('invalid filter', { field: 'filters' });
  let count = 0;
  for (const [key, raw] of Object.entries(doc)) {
    let values: string[];
    if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) values = raw as string[];
    else if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && Object.values(raw).every((x) => typeof x === 'boolean'))
      values = Object.keys(raw);
    else throw new UsageError('invalid filter', { field: 'filters' });
    if (!accepted.includes(key)) throw new UsageError(`invalid filter '${key}'`, { field: 'filters' });
    count += values.length;
    if (count > MAX_FILTER_VALUES)
      throw new UsageError(`invalid filter: more than ${MAX_FILTER_VALUES} values in all`, { field: 'filters' });
    out.set(key, [...new Set(values)]);
  }
  return out;
}

/** No value for `key`, or `s` starts with one of them. */
export function matchPrefix(f: Filters, key: string, s: string): boolean {
  const vs = f.get(key);
  return !vs?.length || vs.some((v) => s.startsWith(v));
}

/** No value for `key`, or `s` is one of them. */
export function matchExact(f: Filters, key: string, s: string): boolean {
  const vs = f.get(key);
  return !vs?.length || vs.includes(s);
}

/**
 * No value for `key`, or `labels` has every one: `k` (present with any value)
 * or `k=v` (present with that value), as SwarmKit's filterMatchLabels.
 */
export function matchLabels(f: Filters, key: string, labels: Readonly<Record<string, string>>): boolean {
  const vs = f.get(key);
  if (!vs?.length) return true;
  return vs.every((kv) => {
    const i = kv.indexOf('=');
    const k = i < 0 ? kv : kv.slice(0, i);
    if (!Object.hasOwn(labels, k)) return false;
    return i < 0 || labels[k] === kv.slice(i + 1);
  });
}
