// Turns one validated file's services into the one form the merge and the
// conversion read, as docker's loader decodes them: list-or-map keys become
// maps, short ports and volumes become long ones (a port range one entry per
// port), refs become {source,...}, env_file and environment become one map
// (env_file read here, relative to the working directory), bind sources
// absolute. What docker warns about on the way (a host IP) is collected.
import { ComposeError } from './errors.js';
import type { Environment } from './interpolate.js';
import { parseMemory, scalarString } from './values.js';
import type { YamlMap, YamlValue } from './yaml.js';

export interface NormalizeContext {
  env: Environment;
  workingDir: string;
  readFile: (path: string, maxBytes: number) => Uint8Array;
  warnings: string[];
}

/** The largest env_file read (docker reads any size; a bound keeps a mistake from eating memory). */
export const MAX_ENV_FILE_BYTES = 1024 * 1024;

const isMap = (v: YamlValue | undefined): v is YamlMap => v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v);

/** list ["k=v", "k"] or map {k: v} → map of string|null. */
export function kvMap(v: YamlValue | undefined, sep = '='): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = scalarString(item);
      const i = s.indexOf(sep);
      if (i < 0) out[s] = null;
      else out[s.slice(0, i)] = s.slice(i + 1);
    }
  } else if (isMap(v)) {
    for (const [k, x] of Object.entries(v)) out[k] = x === null ? null : scalarString(x);
  }
  return out;
}

/** Labels: a list entry without `=` is an empty label. */
export function labelMap(v: YamlValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(kvMap(v))) out[k] = x ?? '';
  return out;
}

const stringList = (v: YamlValue | undefined): string[] | undefined =>
  v === undefined || v === null ? undefined : Array.isArray(v) ? v.map(scalarString) : [scalarString(v)];

export function absPath(dir: string, p: string): string {
  if (p.startsWith('/')) return normalizePath(p);
  return normalizePath(`${dir}/${p}`);
}

function normalizePath(p: string): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

/** kvfile.Parse: `#` and blank lines skipped, `K=V` verbatim (quotes kept), a bare `K` from the env or dropped. */
export function parseEnvFile(text: string, file: string, env: Environment): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line : line.slice(0, eq);
    if (/\s/.test(key)) throw new ComposeError(`variable '${key}' contains whitespaces (${file} line ${i + 1})`);
    if (key === '') throw new ComposeError(`no variable name on line '${line}' (${file} line ${i + 1})`);
    if (eq >= 0) out[key] = line.slice(eq + 1);
    else if (env[key] !== undefined) out[key] = env[key] as string;
  });
  return out;
}

function resolveEnvironment(svc: YamlMap, ctx: NormalizeContext): Record<string, string | null> {
  const environment: Record<string, string | null> = {};
  const update = (vars: Record<string, string | null>) => {
    for (const [k, v] of Object.entries(vars)) {
      const fromEnv = ctx.env[k];
      environment[k] = (v === null || v === '') && fromEnv !== undefined ? fromEnv : v;
    }
  };
  for (const f of stringList(svc.env_file) ?? []) {
    const path = absPath(ctx.workingDir, f);
    const text = Buffer.from(ctx.readFile(path, MAX_ENV_FILE_BYTES)).toString('utf8');
    update(parseEnvFile(text, path, ctx.env));
  }
  update(kvMap(svc.environment));
  return environment;
}

export interface PortConfig {
  mode?: string;
  target?: number;
  published?: number;
  protocol?: string;
}

function portNumber(s: string, what: string, spec: string): [number, number] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) throw new ComposeError(`Invalid ${what}: ${spec}`);
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (a > 65535 || b > 65535 || b < a) throw new ComposeError(`Invalid ${what}: ${spec}`);
  return [a, b];
}

/** A short port (`8080:80`, `443:443/udp`, `9000`, `7000-7001:8000-8001`, `127.0.0.1:8082:82`) → long entries. */
export function parseShortPort(spec: string, warnings: string[]): PortConfig[] {
  let rest = spec;
  let proto = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    proto = rest.slice(slash + 1).toLowerCase();
    rest = rest.slice(0, slash);
    if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new ComposeError(`invalid proto: ${proto}`);
  }
  let ip = '';
  let host = '';
  let container = rest;
  const bracket = /^\[([^\]]*)\]:(.*)$/.exec(rest);
  if (bracket) {
    ip = bracket[1] as string;
    rest = bracket[2] as string;
  }
  const parts = rest.split(':');
  if (parts.length === 1) container = parts[0] as string;
  else if (parts.length === 2) [host, container] = parts as [string, string];
  else if (parts.length === 3 && !bracket) [ip, host, container] = parts as [string, string, string];
  else throw new ComposeError(`invalid port format: ${spec}`);
  if (ip) warnings.push(`ignoring IP-address (${ip}:${host}:${container}/${proto}) service will listen on '0.0.0.0'`);
  const [c0, c1] = portNumber(container, 'containerPort', container);
  let h0 = 0;
  let h1 = 0;
  if (host !== '') [h0, h1] = portNumber(host, 'hostPort', host);
  if (host !== '' && h1 - h0 !== c1 - c0 && c1 !== c0)
    throw new ComposeError(`invalid ranges specified for container and host Ports: ${container} and ${host}`);
  const out: PortConfig[] = [];
  for (let p = c0; p <= c1; p++) {
    const published = host === '' ? 0 : c1 === c0 ? h0 : h0 + (p - c0);
    out.push({ mode: 'ingress', target: p, ...(published ? { published } : {}), protocol: proto });
  }
  return out;
}

export interface VolumeConfig {
  type: string;
  source?: string;
  target?: string;
  read_only?: boolean;
  consistency?: string;
  bind?: { propagation?: string };
  volume?: { nocopy?: boolean };
  tmpfs?: { size?: number };
}

const PROPAGATION = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

/** A short volume (`src:dst[:opts]`, `/anon`) → the long form. */
export function parseShortVolume(spec: string): VolumeConfig {
  if (spec === '') throw new ComposeError('invalid empty volume spec');
  const parts = spec.split(':');
  if (parts.length > 3) throw new ComposeError(`invalid spec: ${spec}: too many colons`);
  const v: VolumeConfig = { type: 'volume' };
  if (parts.length === 1) {
    v.target = parts[0];
    return v;
  }
  v.source = parts[0];
  v.target = parts[1];
  if (parts.length === 3) {
    for (const opt of (parts[2] as string).split(',')) {
      if (opt === 'ro') v.read_only = true;
      else if (opt === 'rw') v.read_only = false;
      else if (opt === 'nocopy') v.volume = { nocopy: true };
      else if (PROPAGATION.includes(opt)) v.bind = { propagation: opt };
      // Others (z, Z, consistency modes) are ignored, as docker does.
    }
  }
  const src = v.source as string;
  if (src.startsWith('.') || src.startsWith('/') || src.startsWith('~')) v.type = 'bind';
  if (v.type !== 'bind') delete v.bind;
  return v;
}

function expandUser(p: string, env: Environment): string {
  if (!p.startsWith('~')) return p;
  const home = env.HOME;
  if (home === undefined) return p;
  return home + p.slice(1);
}

/** docker reports what its typed decode refuses in this form. */
function decoding<T>(field: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof ComposeError)) throw err;
    throw new ComposeError(`decoding failed due to the following error(s):\n\nerror decoding '${field}': ${err.message}`);
  }
}

export interface FileRef {
  source: string;
  target?: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

/** Normalises every service of one file (mutating a copy). */
export function normalizeServices(services: YamlMap, ctx: NormalizeContext): YamlMap {
  const out: YamlMap = {};
  for (const [name, raw] of Object.entries(services)) {
    const svc: YamlMap = { ...((raw ?? {}) as YamlMap) };
    if ('environment' in svc || 'env_file' in svc) {
      svc.environment = resolveEnvironment(svc, ctx);
      delete svc.env_file;
    }
    if ('labels' in svc) svc.labels = labelMap(svc.labels);
    if ('sysctls' in svc) svc.sysctls = kvMap(svc.sysctls) as YamlMap;
    if (isMap(svc.deploy)) {
      const d: YamlMap = { ...svc.deploy };
      if ('labels' in d) d.labels = labelMap(d.labels);
      if (isMap(d.resources))
        for (const [k, field] of [
          ['limits', 'Limits'],
          ['reservations', 'Reservations'],
        ] as const) {
          const r = d.resources[k];
          if (isMap(r) && typeof r.memory === 'string') {
            const memory = r.memory;
            decoding(`Deploy.Resources.${field}.memory`, () => parseMemory(memory));
          }
        }
      svc.deploy = d;
    }
    if ('extra_hosts' in svc) {
      const h = svc.extra_hosts;
      svc.extra_hosts = isMap(h)
        ? Object.entries(h)
            .map(([k, x]) => `${k}:${x === null ? '' : scalarString(x)}`)
            .sort()
        : (stringList(h) ?? []);
    }
    for (const k of ['dns', 'dns_search', 'tmpfs']) if (k in svc) svc[k] = stringList(svc[k]) ?? null;
    if (isMap(svc.healthcheck) && typeof svc.healthcheck.test === 'string')
      svc.healthcheck = { ...svc.healthcheck, test: ['CMD-SHELL', svc.healthcheck.test] };
    if (Array.isArray(svc.ports)) {
      const ports: YamlValue[] = [];
      for (const p of svc.ports) {
        if (isMap(p)) ports.push(p);
        else for (const e of parseShortPort(scalarString(p), ctx.warnings)) ports.push(e as YamlMap);
      }
      svc.ports = ports;
    }
    if (Array.isArray(svc.volumes)) {
      svc.volumes = svc.volumes.map((v, i) => {
        const vol = (typeof v === 'string' ? decoding(`Volumes[${i}]`, () => parseShortVolume(v)) : { ...(v as YamlMap) }) as VolumeConfig;
        if (vol.type === 'bind') {
          if (!vol.source) throw new ComposeError('invalid mount config for type "bind": field Source must not be empty');
          const p = expandUser(vol.source, ctx.env);
          vol.source = p.startsWith('/') ? p : absPath(ctx.workingDir, p);
        }
        return vol as unknown as YamlMap;
      });
    }
    for (const k of ['secrets', 'configs'])
      if (Array.isArray(svc[k])) svc[k] = (svc[k] as YamlValue[]).map((r) => (typeof r === 'string' ? { source: r } : r));
    if (Array.isArray(svc.networks)) {
      const nets: YamlMap = {};
      for (const n of svc.networks) nets[scalarString(n)] = null;
      svc.networks = nets;
    }
    out[name] = svc;
  }
  return out;
}
