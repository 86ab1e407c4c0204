// A route of the Engine API: method, path template, which nodes serve it, and
// the handler. A resource is one module exporting its `Route[]` (built with
// get/post/del below) and one line in ./index.ts.
import type { IncomingHttpHeaders } from 'node:http';
import type pino from 'pino';
import type { EngineBackend } from './backend.js';
import { DockerError } from './errors.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

/**
 * Who may be asked: `any` node (ping, version, info, init, join); `swarm`: a
 * node in a cluster, unlocked (leave does its own checks); `manager`: an
 * unlocked manager (every cluster-state route), else dockerd's 503.
 */
export type Serves = 'any' | 'manager';

export interface EngineRequest {
  method: Method;
  /** The path without its version prefix, e.g. `/nodes/abc/update`. */
  path: string;
  /** The template's `{name}` parts, percent-decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  /** The API version the request is served at (its path's, else the newest). */
  apiVersion: string;
  headers: IncomingHttpHeaders;
  /** The JSON body, bounded and checked (Content-Type, syntax); undefined when empty. */
  json(): Promise<unknown>;
  /** Aborted when the client goes away (streams stop on it). */
  signal: AbortSignal;
  backend: EngineBackend;
  log: pino.Logger;
}

/** What a handler answers: JSON (the default when `json` is set), plain text, nothing, or a stream it writes itself. */
export interface EngineReply {
  status?: number;
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
  /** Writes the body itself (logs, events); headers and status are sent first. Ends the response when it resolves. */
  stream?: (write: (chunk: string | Uint8Array) => boolean, signal: AbortSignal) => Promise<void>;
}

export interface Route {
  method: Method;
  /** `/nodes/{id}/update`: literal segments and `{name}` parameters, one per segment. */
  path: string;
  serves: Serves;
  handle(req: EngineRequest): Promise<EngineReply>;
}

type Handler = Route['handle'];
export const get = (path: string, serves: Serves, handle: Handler): Route => ({ method: 'GET', path, serves, handle });
export const post = (path: string, serves: Serves, handle: Handler): Route => ({ method: 'POST', path, serves, handle });
export const del = (path: string, serves: Serves, handle: Handler): Route => ({ method: 'DELETE', path, serves, handle });

/** A JSON answer (200 unless said). */
export const json = (body: unknown, status = 200): EngineReply => ({ status, json: body });
/** dockerd's answer to a write that returns nothing: 200 and an empty body. */
export const empty = (status = 200): EngineReply => ({ status });

/** `?name=` as dockerd's BoolValue reads it: absent, '', 0, no, false, none are false. */
export function queryBool(q: URLSearchParams, name: string): boolean {
  const v = (q.get(name) ?? '').trim().toLowerCase();
  return !(v === '' || v === '0' || v === 'no' || v === 'false' || v === 'none');
}

/** `?version=`, the Version.Index an update is made against: a whole number, else dockerd's 400 (`invalid swarm version ''`). */
export function queryVersion(r: EngineRequest, what: string): number {
  const raw = r.query.get('version') ?? '';
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw new DockerError(400, `invalid ${what} version '${raw}': give the Version.Index read from the object`);
  return Number(raw);
}

/** A boolean query parameter as Go's strconv.ParseBool reads it; absent is false, anything else unknown a 400. */
export function queryStrictBool(r: EngineRequest, name: string): boolean {
  const v = r.query.get(name);
  if (v === null || v === '') return false;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw new DockerError(400, `invalid value for ${name}: ${v}`);
}

/** A compiled route table: the route and parameters a method and path select. */
export class RouteTable {
  private readonly routes: { route: Route; parts: string[] }[];

  constructor(routes: readonly Route[]) {
    this.routes = routes.map((route) => ({ route, parts: route.path.split('/').slice(1) }));
    const seen = new Set<string>();
    for (const r of routes) {
      const key = `${r.method} ${r.path.replace(/\{[^}]+\}/g, '{}')}`;
      if (seen.has(key)) throw new Error(`engine route ${key} is registered twice`);
      seen.add(key);
    }
  }

  /**
   * The route for `method` and `path` (without version), or undefined; literal segments win over parameters.
   * A `{name*}` part takes one or more segments, slashes kept (dockerd's `{name:.*}`, for image references).
   */
  match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    const all = path.split('/').slice(1);
    let best: { route: Route; params: Record<string, string>; literals: number } | undefined;
    for (const { route, parts: tpl } of this.routes) {
      const g = tpl.findIndex((p) => p.endsWith('*}'));
      if (route.method !== method || (g < 0 ? tpl.length !== all.length : all.length < tpl.length)) continue;
      const parts = g < 0 ? tpl : tpl.map((p, i) => (i === g ? `{${p.slice(1, -2)}}` : p));
      const segs =
        g < 0
          ? all
          : [...all.slice(0, g), all.slice(g, g + all.length - tpl.length + 1).join('/'), ...all.slice(g + all.length - tpl.length + 1)];
      const params: Record<string, string> = {};
      let literals = 0;
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const p = parts[i]!;
        const s = segs[i]!;
        if (i === g) {
          let v: string;
          try {
            v = decodeURIComponent(s);
          } catch {
            ok = false;
            break;
          }
          if (v === '' || v.split('/').some((x) => x === '' || x === '.' || x === '..')) ok = false;
          else params[p.slice(1, -1)] = v;
        } else if (p.startsWith('{')) {
          let v: string;
          try {
            v = decodeURIComponent(s);
          } catch {
            ok = false;
            break;
          }
          // An empty segment, or one that would walk the path (`..`), names nothing.
          if (v === '' || v === '.' || v === '..' || v.includes('/')) ok = false;
          else params[p.slice(1, -1)] = v;
        } else if (p === s) literals++;
        else ok = false;
      }
      if (ok && (!best || literals > best.literals)) best = { route, params, literals };
    }
    return best && { route: best.route, params: best.params };
  }
}
