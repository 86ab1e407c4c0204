// The daemon's configuration: `tsswarm daemon --config FILE` reads a JSON file
// (what deploy/install.sh writes to /etc/tsswarm/daemon.json), and flags on the
// command line override it. Pure parsing and merging, unit-tested; the daemon
// command only reads the file and hands the result to the Daemon.
import { readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { UsageError } from '../lib/errors.js';
import { logLevels, type LogLevel } from '../lib/log.js';
import { checkInsecureRegistry } from '../agent/runtime/registry.js';
import { ENGINE_LABEL_KEY_RE, engineLabelValueHasControl } from '../manager/dispatcher/limits.js';
import { checkGenericResources, parseGenericResource } from '../spec/container-options.js';
import type { GenericResource } from '../proto/gen/objects.js';

/** Load-balancer backends for service VIPs; `auto` lets the daemon pick what the kernel supports. */
export const LB_BACKENDS = ['auto', 'nftables', 'iptables', 'ipvs'] as const;
export type LbBackend = (typeof LB_BACKENDS)[number];

export const DEFAULT_STATE_DIR = '/var/lib/tsswarm';
export const DEFAULT_LISTEN_ADDR = '0.0.0.0:4242';

/** What a daemon runs with, once the file and the flags are merged. */
export interface DaemonConfig {
  nodeName?: string;
  stateDir: string;
  listenAddr: string;
  advertiseAddr?: string;
  metricsAddr?: string;
  /** Path of the local API's unix socket; undefined: the CLI's default. */
  socket?: string;
  /** A group (name or gid) whose members may use the socket (mode 0660), as docker's group; undefined: root only. */
  socketGroup?: string;
  /**
   * Unix socket of the Docker Engine API (docs/engine-api.md), with the CLI socket's group; '' turns it off;
   * undefined: `docker.sock` beside the CLI socket (/run/tsswarm/docker.sock by default).
   */
  dockerSocket?: string;
  /**
   * `IP:PORT` where the Docker Engine API is also served over TCP, with TLS and operators' client
   * certificates only (docs/engine-api.md); undefined or '': not served (the default).
   */
  dockerTcp?: string;
  /**
   * The heartbeat period of a cluster this daemon creates (`tsswarm init`), in ms. It seeds the
   * cluster's setting only: every manager then uses the cluster's, which `tsswarm swarm update
   * --dispatcher-heartbeat` changes; the flag is ignored by a node that joins or restarts.
   */
  heartbeatPeriodMs?: number;
  /** Undefined: TSSWARM_LOG_LEVEL, else info. */
  logLevel?: LogLevel;
  /** Undefined: the load balancer's own choice. Passed through; the LB reads it. */
  lbBackend?: LbBackend;
  /** Registries reached over plain http besides loopback (dockerd's insecure-registries): HOST, HOST:PORT or IPv4 CIDR. */
  insecureRegistries?: string[];
  /** Per-registry TLS material, `<certsDir>/<host[:port]>/{ca.crt,client.cert,client.key}` (dockerd's /etc/docker/certs.d); default /etc/tsswarm/certs.d. */
  certsDir?: string;
  /**
   * The engine's labels (dockerd's `--label` and daemon.json `labels`): `KEY=VALUE` strings, sent in
   * the node description and matched by `engine.labels.KEY` constraints.
   */
  labels?: string[];
  /**
   * Generic resources this node offers to tasks that reserve them (`--generic-resource gpu=2`):
   * `KIND=COUNT` entries, as dockerd's node-generic-resources (counts only: named ones are refused).
   */
  nodeGenericResources?: GenericResource[];
}

/** The keys a config file may hold, each with its check. */
export type DaemonConfigFile = Partial<DaemonConfig>;

/** The daemon command's flags, as strings from the command line. */
export interface DaemonFlags {
  'node-name'?: string;
  'state-dir'?: string;
  'listen-addr'?: string;
  'advertise-addr'?: string;
  'metrics-addr'?: string;
  'heartbeat-period'?: string;
  'log-level'?: string;
  'lb-backend'?: string;
  'docker-socket'?: string;
  'insecure-registry'?: string;
  'certs-dir'?: string;
  'docker-tcp'?: string;
  /** `--label KEY=VALUE`, repeatable. */
  label?: string[];
  'node-generic-resource'?: string;
}

type Check = (v: unknown, field: string) => unknown;

const portOk = (p: string): boolean => /^\d{1,5}$/.test(p) && Number(p) >= 1 && Number(p) <= 65535;

/** HOST:PORT, with [v6]:PORT for IPv6. */
function hostPort(v: unknown, field: string): string {
  const s = str(v, field);
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):([^:]*)$/.exec(s);
  if (!m || !portOk(m[2]!)) throw UsageError.invalid(field, 'HOST:PORT with a port from 1 to 65535, e.g. 0.0.0.0:4242', s);
  return s;
}

/** HOST or HOST:PORT. */
function hostMaybePort(v: unknown, field: string): string {
  const s = str(v, field);
  if (/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+)$/.test(s)) return s;
  // A bare IPv6 address has no port to split off.
  if (/^[0-9a-fA-F:]+$/.test(s) && s.includes('::')) return s;
  return hostPort(s, field);
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.trim() === '')
    throw UsageError.invalid(field, 'a non-empty string', typeof v === 'string' ? v : JSON.stringify(v));
  return v.trim();
}

function absPath(v: unknown, field: string): string {
  const s = str(v, field);
  if (!isAbsolute(s)) throw UsageError.invalid(field, 'an absolute path', s);
  return s;
}

function socket(v: unknown, field: string): string {
  const s = str(v, field);
  return absPath(s.startsWith('unix://') ? s.slice('unix://'.length) : s, field);
}

/** A unix socket path, or '' / none to serve no Docker Engine API; TCP has its own setting (dockerTcp). */
function dockerSocket(v: unknown, field: string): string {
  if (v === '' || (typeof v === 'string' && v.trim().toLowerCase() === 'none')) return '';
  if (typeof v === 'string' && /^(tcp|https?|fd|npipe|ssh):/i.test(v.trim()))
    throw new UsageError(
      `${field} ${v}: this setting is the unix socket only; give an absolute path, unix:///path, or none (TCP is served with TLS and client certificates through --docker-tcp IP:PORT, "dockerTcp" in daemon.json)`,
      { field },
    );
  return socket(v, field);
}

/** Docker's port for its plain-TCP API, which tsswarm never serves. */
const PLAIN_DOCKER_PORT = 2375;

/**
 * `IP:PORT` (or dockerd's `tcp://IP:PORT`) for the Engine API over TLS; '' / none: off. There is
 * no plain mode: every connection must present an operator's client certificate.
 */
function dockerTcp(v: unknown, field: string): string {
  if (v === '' || (typeof v === 'string' && v.trim().toLowerCase() === 'none')) return '';
  const s = str(v, field);
  if (/^(unix|http|fd|npipe|ssh):/i.test(s) || s.startsWith('/'))
    throw new UsageError(`${field} ${s}: give the TCP address as IP:PORT, e.g. 0.0.0.0:2376 (the unix socket is --docker-socket)`, {
      field,
    });
  if (/^https:/i.test(s))
    throw new UsageError(`${field} ${s}: give IP:PORT or tcp://IP:PORT, e.g. 0.0.0.0:2376 (TLS is always on)`, { field });
  const addr = s.replace(/^tcp:\/\//i, '').replace(/\/$/, '');
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(addr);
  const ipOk = m?.[1]?.split('.').every((o) => Number(o) <= 255 && String(Number(o)) === o);
  if (!m || !ipOk || !portOk(m[2]!))
    throw UsageError.invalid(
      field,
      'IP:PORT with an IPv4 address (0.0.0.0 for every address) and a port from 1 to 65535, e.g. 0.0.0.0:2376 (the server certificate names addresses, not host names)',
      s,
    );
  if (Number(m[2]) === PLAIN_DOCKER_PORT)
    throw new UsageError(
      `${field} ${s}: port 2375 is Docker's port for the API without TLS, and tsswarm serves TCP only with TLS and client certificates: use 2376, Docker's TLS port`,
      { field },
    );
  return `${m[1]}:${Number(m[2])}`;
}

function groupName(v: unknown, field: string): string {
  const s = typeof v === 'number' && Number.isInteger(v) && v >= 0 ? String(v) : str(v, field);
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*\$?$|^\d+$/.test(s)) throw UsageError.invalid(field, 'a group name or a numeric gid', s);
  return s;
}

function oneOfList<T extends string>(list: readonly T[]): (v: unknown, field: string) => T {
  return (v, field) => {
    const s = typeof v === 'string' ? v.trim().toLowerCase() : '';
    if (!(list as readonly string[]).includes(s))
      throw UsageError.invalid(field, `one of ${list.join(', ')}`, typeof v === 'string' ? v : JSON.stringify(v));
    return s as T;
  };
}

/** A list of registries: a JSON array in the file (the flag's comma-separated text is split before it gets here). */
function insecureRegistries(v: unknown, field: string): string[] {
  const list = v;
  if (!Array.isArray(list) || list.length > 256 || !list.every((x) => typeof x === 'string'))
    throw UsageError.invalid(field, 'a list of registries (HOST, HOST:PORT or IPv4 CIDR), at most 256', JSON.stringify(v).slice(0, 200));
  return list.map((x) => {
    try {
      return checkInsecureRegistry(x, field);
    } catch (e) {
      throw new UsageError((e as Error).message, { field });
    }
  });
}

/** Bounds on the engine labels a daemon sends (the managers bound them again: manager/dispatcher/limits.ts). */
export const ENGINE_LABEL_LIMITS = { count: 64, keyLength: 128, valueLength: 1024 } as const;

/**
 * dockerd's labels: a list of `KEY=VALUE` (a JSON array in the file, the repeated flag on the
 * command line); a key given twice is refused, as dockerd refuses conflicting labels.
 */
function engineLabels(v: unknown, field: string): string[] {
  const L = ENGINE_LABEL_LIMITS;
  if (!Array.isArray(v) || v.length > L.count || !v.every((x) => typeof x === 'string'))
    throw UsageError.invalid(field, `a list of KEY=VALUE labels, at most ${L.count}`, JSON.stringify(v).slice(0, 200));
  const seen = new Set<string>();
  return v.map((x: string) => {
    const eq = x.indexOf('=');
    const k = eq < 0 ? x : x.slice(0, eq);
    if (
      eq <= 0 ||
      !ENGINE_LABEL_KEY_RE.test(k) ||
      k.length > L.keyLength ||
      x.length - eq - 1 > L.valueLength ||
      engineLabelValueHasControl(x.slice(eq + 1))
    )
      throw UsageError.invalid(
        field,
        `KEY=VALUE with a key of letters, digits, ".", "_", "/" and "-" (at most ${L.keyLength}) and a value of at most ${L.valueLength} characters, none a control character`,
        x.length > 200 ? `${x.slice(0, 200)}…` : x,
      );
    if (seen.has(k)) throw new UsageError(`${field}: the label "${k}" is given twice: keep one value`, { field });
    seen.add(k);
    return x;
  });
}

/** The engine labels as a map, for the node description. */
export function engineLabelMap(labels: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels ?? []) {
    const eq = l.indexOf('=');
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

/** `["gpu=4", "fpga=1"]` in the file; the flag's comma-separated text is split before it gets here. */
function genericResources(v: unknown, field: string): GenericResource[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw UsageError.invalid(field, 'a list of KIND=COUNT entries such as ["gpu=4", "fpga=1"]', JSON.stringify(v).slice(0, 200));
  const out = v.map((x) => parseGenericResource(field, x));
  checkGenericResources(field, out);
  return out;
}

function heartbeatMs(v: unknown, field: string): number {
  // A JSON number in the file; the flag's text is converted before it gets here.
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 100)
    throw UsageError.invalid(field, 'a whole number of milliseconds ≥ 100', typeof v === 'string' ? v : JSON.stringify(v));
  return v;
}

/** Every key a config file may hold, its check, and the flag that overrides it. */
const KEYS: Record<keyof DaemonConfig, { check: Check; flag?: keyof DaemonFlags; flagCheck?: Check }> = {
  nodeName: { check: str, flag: 'node-name' },
  // A relative path means nothing in a file read by a service; on the command line it is the shell's.
  stateDir: { check: absPath, flag: 'state-dir', flagCheck: (v, field) => resolve(str(v, field)) },
  listenAddr: { check: hostPort, flag: 'listen-addr' },
  advertiseAddr: { check: hostMaybePort, flag: 'advertise-addr' },
  metricsAddr: { check: hostPort, flag: 'metrics-addr' },
  socket: { check: socket },
  socketGroup: { check: groupName },
  dockerSocket: { check: dockerSocket, flag: 'docker-socket' },
  dockerTcp: { check: dockerTcp, flag: 'docker-tcp' },
  heartbeatPeriodMs: {
    check: heartbeatMs,
    flag: 'heartbeat-period',
    flagCheck: (v, field) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? heartbeatMs(Number(v), field) : heartbeatMs(v, field)),
  },
  logLevel: { check: oneOfList(logLevels), flag: 'log-level' },
  lbBackend: { check: oneOfList(LB_BACKENDS), flag: 'lb-backend' },
  insecureRegistries: {
    check: insecureRegistries,
    flag: 'insecure-registry',
    flagCheck: (v, field) => insecureRegistries(typeof v === 'string' ? v.split(',').filter((x) => x.trim()) : v, field),
  },
  certsDir: { check: absPath, flag: 'certs-dir', flagCheck: (v, field) => resolve(str(v, field)) },
  labels: { check: engineLabels, flag: 'label' },
  nodeGenericResources: {
    check: genericResources,
    flag: 'node-generic-resource',
    flagCheck: (v, field) => genericResources(typeof v === 'string' ? v.split(',').filter((x) => x.trim()) : v, field),
  },
};

/** dockerd's spellings of keys we also take, so a docker daemon.json entry can be copied as it is. */
const DOCKERD_KEYS: Readonly<Record<string, keyof DaemonConfig>> = { 'node-generic-resources': 'nodeGenericResources' };

export const CONFIG_KEYS = Object.keys(KEYS) as (keyof DaemonConfig)[];

/** A key one or two edits away from `k`, for "did you mean". */
function nearKey(k: string): string | undefined {
  const lower = k.toLowerCase();
  return CONFIG_KEYS.find((c) => c.toLowerCase() === lower || editDistance(c.toLowerCase(), lower) <= 2);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** Parses and checks a config file's text; every error names the file and the key. */
export function parseDaemonConfig(text: string, file: string): DaemonConfigFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not valid JSON (${(err as Error).message}): fix it, or pass settings as flags instead of --config`, {
      field: '--config',
    });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new UsageError(
      `${file} must hold a JSON object such as {"advertiseAddr": "192.168.56.11"} (got ${Array.isArray(doc) ? 'an array' : JSON.stringify(doc)})`,
      { field: '--config' },
    );
  }
  const out: Record<string, unknown> = {};
  for (const [given, value] of Object.entries(doc)) {
    const key = DOCKERD_KEYS[given] ?? given;
    const spec = KEYS[key as keyof DaemonConfig];
    if (!spec) {
      const near = nearKey(key);
      throw new UsageError(
        `unknown key "${key}" in ${file}${near ? ` (did you mean "${near}"?)` : ''}; known keys: ${CONFIG_KEYS.join(', ')}`,
        { field: key },
      );
    }
    // null stands for "not set", so a generated file may carry every key.
    if (value === null) continue;
    out[key] = spec.check(value, `"${given}" in ${file}`);
  }
  return out as DaemonConfigFile;
}

/** Reads and parses a config file (the only I/O here). */
export function readDaemonConfig(file: string): DaemonConfigFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new UsageError(`--config ${file}: cannot read it (${why}): give the path of a daemon.json, or leave --config out`, {
      field: '--config',
      cause: err,
    });
  }
  return parseDaemonConfig(text, file);
}

export interface ResolveInput {
  flags: DaemonFlags;
  /** The parsed file, when --config was given. */
  file?: DaemonConfigFile;
  /**
   * A socket chosen outside the file (the global --host flag or TSSWARM_HOST):
   * it wins over the file's `socket`, so that the CLI and the daemon agree.
   */
  socketOverride?: string;
}

/** Flags over file over defaults; a flag's value gets the same check as the file's, named by the flag. */
export function resolveDaemonConfig({ flags, file = {}, socketOverride }: ResolveInput): DaemonConfig {
  const merged: Record<string, unknown> = { ...file };
  for (const [key, spec] of Object.entries(KEYS)) {
    const v = spec.flag ? flags[spec.flag] : undefined;
    if (v !== undefined) merged[key] = (spec.flagCheck ?? spec.check)(v, `--${spec.flag}`);
  }
  if (socketOverride) merged.socket = socket(socketOverride, '--host');
  const c = merged as Partial<DaemonConfig>;
  return {
    ...c,
    stateDir: c.stateDir ?? DEFAULT_STATE_DIR,
    listenAddr: c.listenAddr ?? DEFAULT_LISTEN_ADDR,
  };
}

/**
 * Why the Engine API cannot be served over TCP at `tcpAddr` on a node advertised at `advertise`
 * (undefined: it can, or the advertised address is not known yet). The server certificate names
 * the node's advertised address and loopback only (manager/controlapi/ca.ts engineNames), so a
 * docker CLI dialling any other address of the host could not verify it.
 */
export function dockerTcpHostError(tcpAddr: string, advertise: string): string | undefined {
  const host = tcpAddr.replace(/:\d+$/, '');
  const adv = advertise.replace(/:\d+$/, '');
  if (host === '0.0.0.0' || host === '127.0.0.1' || host === adv || !adv) return undefined;
  return `--docker-tcp ${tcpAddr}: the Engine API's server certificate names this node's advertised address (${adv}) and 127.0.0.1 only, so a docker CLI could not verify ${host}: listen on 0.0.0.0:PORT, ${adv}:PORT or 127.0.0.1:PORT`;
}

/** Where the Docker Engine API is served: the setting, else `docker.sock` beside the CLI socket; '' when off. */
export function dockerSocketPath(setting: string | undefined, cliSocket: string): string {
  if (setting !== undefined) return setting;
  const dir = dirname(cliSocket);
  const base = basename(cliSocket);
  // Two daemons may share a directory with differently named CLI sockets: each gets its own docker socket.
  return join(dir, base === 'tsswarm.sock' ? 'docker.sock' : `${base.replace(/\.sock$/, '')}-docker.sock`);
}

/**
 * The gid of a group given by name or number, from the text of /etc/group
 * (passed in, so this stays pure); the error says how to make the group.
 */
export function groupId(group: string, etcGroup: string, field = 'socketGroup'): number {
  if (/^\d+$/.test(group)) return Number(group);
  for (const line of etcGroup.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new UsageError(
    `${field} names the group "${group}", which /etc/group does not have: create it (groupadd --system ${group}), or drop the setting to keep the socket root's`,
    { field },
  );
}
