// What every Docker Engine API shape shares: times as RFC 3339, object
// versions as {Index}, and the checks a request body goes through (an object
// where one is expected, a field we cannot honour refused naming its path).
// Pure: the engine server (node/engine/) and the service/task conversions use it.
import { UsageError } from '../../lib/errors.js';
import { durationToDocker, GO_ZERO_TIME, type JsonObject, timeToDocker } from './values.js';

/** Go's zero time, which dockerd shows for a time it does not have. */
export const ZERO_TIME = GO_ZERO_TIME;

/** A unix time in milliseconds as Go's RFC3339Nano (values.ts); 0, negative or not a number is Go's zero time. */
export function rfc3339(ms: number | undefined): string {
  const n = Number(ms ?? 0);
  return Number.isFinite(n) && n > 0 ? timeToDocker(n) : GO_ZERO_TIME;
}

/** `Version: {Index}` of every swarm object. */
export const dockerVersion = (index: number | undefined): { Index: number } => ({ Index: Number(index ?? 0) });

/** Milliseconds as the nanoseconds of a Go time.Duration. */
export const msToNs = (ms: number): number => Math.round(durationToDocker(Number(ms)));

export type { JsonObject };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The request body as an object: absent means `{}` (dockerd reads an empty body as the zero value). */
export function bodyObject(v: unknown, what: string): JsonObject {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new UsageError(`invalid JSON: the body of ${what} must be a JSON object (got ${jsonKind(v)})`, { field: what });
  return v;
}

/** The object at `path` in `o`, `{}` when absent or null; anything else is refused naming the path. */
export function objectAt(o: JsonObject, key: string, path: string): JsonObject {
  const v = o[key];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new UsageError(`${path} must be a JSON object (got ${jsonKind(v)})`, { field: path });
  return v;
}

export function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v).slice(0, 40)}`;
}

/** A string field ('' when absent). */
export function stringAt(o: JsonObject, key: string, path: string): string {
  const v = o[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new UsageError(`${path} must be a string (got ${jsonKind(v)})`, { field: path });
  return v;
}

/** A whole-number field (undefined when absent or null). */
export function intAt(o: JsonObject, key: string, path: string): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    throw new UsageError(`${path} must be a whole number (got ${jsonKind(v)})`, { field: path });
  return v;
}

/** A boolean field (undefined when absent or null). */
export function boolAt(o: JsonObject, key: string, path: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new UsageError(`${path} must be true or false (got ${jsonKind(v)})`, { field: path });
  return v;
}

/** A map of strings (labels); `{}` when absent or null. */
export function labelsAt(o: JsonObject, key: string, path: string): Record<string, string> {
  const v = objectAt(o, key, path);
  for (const [k, x] of Object.entries(v))
    if (typeof x !== 'string') throw new UsageError(`${path}.${k} must be a string (got ${jsonKind(x)})`, { field: `${path}.${k}` });
  return v as Record<string, string>;
}

/** The refusal of a field tsswarm does not support: a 400 naming the field and why. */
export function unsupported(path: string, why: string): UsageError {
  return new UsageError(`${path} is not supported by tsswarm: ${why}`, { field: path });
}

/** A field that is empty (absent, null, 0, '', false, [] or {}) asks for nothing. */
export function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === 0 || v === '' || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (isObject(v)) return Object.values(v).every(isEmpty);
  return false;
}
