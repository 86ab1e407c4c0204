// Our own description of the compose format docker stack deploy accepts
// (docker CLI's v3.0–3.13 files), written as one base for 3.13 plus a table
// of the keys each version added, and a small validator that reports the
// error docker's gojsonschema wrapper would print: `<path> <description>`,
// the deepest path winning and a type error winning a tie.
import { ComposeError } from './errors.js';
import { parseShortPort } from './normalize.js';
import type { YamlValue } from './yaml.js';

type Prim = 'string' | 'integer' | 'number' | 'boolean' | 'null' | 'object' | 'array';
export type Schema =
  | { kind: 'any' }
  | { kind: 'type'; types: Prim[]; format?: 'duration' | 'ports' | 'expose' | 'subnet' }
  | { kind: 'enum'; type: 'string'; values: string[] }
  | { kind: 'object'; props: Record<string, Schema>; x?: boolean; required?: string[]; values?: Schema; keys?: RegExp; nullable?: boolean }
  | { kind: 'array'; items: Schema; unique?: boolean }
  | { kind: 'oneOf'; of: Schema[] };

const t = (...types: Prim[]): Schema => ({ kind: 'type', types });
const str = t('string');
const int = t('integer');
const num = t('number');
const bool = t('boolean');
const duration: Schema = { kind: 'type', types: ['string'], format: 'duration' };
const obj = (props: Record<string, Schema>, more: Partial<{ x: boolean; required: string[]; nullable: boolean }> = {}): Schema => ({
  kind: 'object',
  props,
  ...more,
});
const mapOf = (values: Schema, keys?: RegExp): Schema => ({ kind: 'object', props: {}, values, ...(keys ? { keys } : {}) });
const list = (items: Schema, unique = false): Schema => ({ kind: 'array', items, unique });
const oneOf = (...of: Schema[]): Schema => ({ kind: 'oneOf', of });
const stringList = list(str, true);
const stringOrList = oneOf(str, list(str));
const listOrDict = oneOf(mapOf(t('string', 'number', 'null'), /^.+$/), list(str, true));
const labels = listOrDict;
const external = oneOf(bool, obj({ name: str }));

const resources = obj({ cpus: str, memory: str, pids: int });
const updateConfig = obj({
  parallelism: int,
  delay: duration,
  failure_action: str,
  monitor: duration,
  max_failure_ratio: num,
  order: { kind: 'enum', type: 'string', values: ['start-first', 'stop-first'] },
});

const deploy = obj(
  {
    mode: str,
    endpoint_mode: str,
    replicas: int,
    labels,
    rollback_config: updateConfig,
    update_config: updateConfig,
    resources: obj({
      limits: resources,
      reservations: obj({
        cpus: str,
        memory: str,
        generic_resources: list(obj({ discrete_resource_spec: obj({ kind: str, value: num }) })),
      }),
    }),
    restart_policy: obj({ condition: str, delay: duration, max_attempts: int, window: duration }),
    placement: obj({ constraints: list(str), preferences: list(obj({ spread: str })), max_replicas_per_node: int }),
  },
  { nullable: true },
);

const fileRef = oneOf(str, obj({ source: str, target: str, uid: str, gid: str, mode: num }));

const service = obj(
  {
    deploy,
    build: oneOf(
      str,
      obj(
        {
          context: str,
          dockerfile: str,
          args: listOrDict,
          labels,
          cache_from: list(str),
          network: str,
          target: str,
          shm_size: t('integer', 'string'),
          extra_hosts: listOrDict,
          isolation: str,
        },
        { x: true },
      ),
    ),
    cap_add: stringList,
    cap_drop: stringList,
    cgroup_parent: str,
    cgroupns_mode: str,
    command: stringOrList,
    configs: list(fileRef),
    container_name: str,
    credential_spec: obj({ config: str, file: str, registry: str }, { x: true }),
    depends_on: stringList,
    devices: stringList,
    dns: oneOf(str, stringList),
    dns_search: oneOf(str, stringList),
    domainname: str,
    entrypoint: stringOrList,
    env_file: stringOrList,
    environment: listOrDict,
    expose: list({ kind: 'type', types: ['string', 'number'], format: 'expose' }, true),
    external_links: stringList,
    extra_hosts: listOrDict,
    healthcheck: obj({
      disable: bool,
      interval: duration,
      retries: num,
      test: stringOrList,
      timeout: duration,
      start_period: duration,
      start_interval: duration,
    }),
    hostname: str,
    image: str,
    init: bool,
    ipc: str,
    isolation: str,
    labels,
    links: stringList,
    logging: obj({ driver: str, options: mapOf(t('string', 'number', 'null')) }),
    mac_address: str,
    network_mode: str,
    networks: oneOf(
      stringList,
      mapOf(
        oneOf(obj({ aliases: stringList, ipv4_address: str, ipv6_address: str, driver_opts: mapOf(t('string', 'number')) }), t('null')),
        /^[a-zA-Z0-9._-]+$/,
      ),
    ),
    oom_score_adj: int,
    pid: t('string', 'null'),
    ports: list(
      oneOf(
        { kind: 'type', types: ['number'], format: 'ports' },
        { kind: 'type', types: ['string'], format: 'ports' },
        obj({ mode: str, target: int, published: int, protocol: str }),
      ),
      true,
    ),
    privileged: bool,
    read_only: bool,
    restart: str,
    secrets: list(fileRef),
    security_opt: stringList,
    shm_size: t('number', 'string'),
    sysctls: listOrDict,
    stdin_open: bool,
    stop_grace_period: duration,
    stop_signal: str,
    tmpfs: stringOrList,
    tty: bool,
    ulimits: mapOf(oneOf(int, obj({ hard: int, soft: int }, { required: ['soft', 'hard'] }))),
    user: str,
    userns_mode: str,
    volumes: list(
      oneOf(
        str,
        obj(
          {
            type: str,
            source: str,
            target: str,
            read_only: bool,
            consistency: str,
            bind: obj({ propagation: str }),
            volume: obj({ nocopy: bool }),
            tmpfs: obj({ size: int }),
          },
          { required: ['type'] },
        ),
      ),
      true,
    ),
    working_dir: str,
  },
  { x: true },
);

const network = obj(
  {
    name: str,
    driver: str,
    driver_opts: mapOf(t('string', 'number')),
    ipam: obj({ driver: str, config: list(obj({ subnet: { kind: 'type', types: ['string'], format: 'subnet' } })) }),
    external,
    internal: bool,
    attachable: bool,
    labels,
  },
  { x: true, nullable: true },
);
const volume = obj({ name: str, driver: str, driver_opts: mapOf(t('string', 'number')), external, labels }, { x: true, nullable: true });
const secret = obj(
  { name: str, file: str, external, labels, driver: str, driver_opts: mapOf(t('string', 'number')), template_driver: str },
  { x: true },
);
const config = obj({ name: str, file: str, external, labels, template_driver: str }, { x: true });
const NAME_KEY = /^[a-zA-Z0-9._-]+$/;

const BASE: Schema = obj(
  {
    version: str,
    services: mapOf(service, NAME_KEY),
    networks: mapOf(network, NAME_KEY),
    volumes: mapOf(volume, NAME_KEY),
    secrets: mapOf(secret, NAME_KEY),
    configs: mapOf(config, NAME_KEY),
  },
  { x: true },
);

/**
 * The keys each minor version of 3 added, as paths into BASE: `service.` is
 * an entry of `services`, `[long]` names the mapping branch of a list item's
 * oneOf (3.0 and 3.1 had short ports and volumes only), and `[x]` the
 * `x-` extension keys of a mapping.
 */
export const ADDED: Record<number, string[]> = {
  1: ['secrets', 'service.secrets'],
  2: ['service.ports[long]', 'service.volumes[long]', 'service.deploy.endpoint_mode', 'network.attachable'],
  3: ['configs', 'service.configs', 'service.deploy.placement.preferences', 'service.credential_spec'],
  4: [
    '[x]',
    'service.deploy.update_config.order',
    'service.deploy.rollback_config.order',
    'service.healthcheck.start_period',
    'volume.name',
  ],
  5: ['network.name', 'secret.name', 'config.name', 'service.deploy.resources.reservations.generic_resources', 'service.isolation'],
  6: ['service.volumes[long].tmpfs'],
  7: ['service.deploy.rollback_config', 'service.init', 'service.[x]', 'network.[x]', 'volume.[x]', 'secret.[x]', 'config.[x]'],
  8: [
    'service.deploy.placement.max_replicas_per_node',
    'secret.driver',
    'secret.driver_opts',
    'secret.template_driver',
    'config.template_driver',
  ],
  9: ['service.deploy.resources.limits.pids'],
  12: ['service.healthcheck.start_interval'],
  13: ['service.networks.driver_opts', 'service.oom_score_adj'],
};
export const LATEST_MINOR = 13;

const ROOTS: Record<string, (s: Schema) => Schema> = {
  service: (s) => objectOf(objectOf(s).props.services).values as Schema,
  network: (s) => objectOf(objectOf(s).props.networks).values as Schema,
  volume: (s) => objectOf(objectOf(s).props.volumes).values as Schema,
  secret: (s) => objectOf(objectOf(s).props.secrets).values as Schema,
  config: (s) => objectOf(objectOf(s).props.configs).values as Schema,
};

function objectOf(s: Schema | undefined): Extract<Schema, { kind: 'object' }> {
  if (!s) throw new Error('schema path not found');
  if (s.kind === 'object') return s;
  if (s.kind === 'oneOf') {
    const o = s.of.find((x) => x.kind === 'object');
    if (o) return objectOf(o);
  }
  if (s.kind === 'array') return objectOf(s.items);
  throw new Error('schema path not an object');
}

/** What a short-only list item was before 3.2: one type, no oneOf (its error says `must be a string or number`). */
const SHORT_ONLY: Record<string, Schema> = {
  ports: { kind: 'type', types: ['string', 'number'], format: 'ports' },
  volumes: str,
};

function removePath(root: Schema, path: string): void {
  const parts = path.split('.');
  const head = parts[0] as string;
  let s: Schema = head in ROOTS ? (ROOTS[head] as (s: Schema) => Schema)(root) : root;
  const rest = head in ROOTS ? parts.slice(1) : parts;
  if (rest.length === 1 && rest[0] === '[x]') {
    objectOf(s).x = false;
    return;
  }
  for (let i = 0; i < rest.length; i++) {
    const key = rest[i] as string;
    const long = key.endsWith('[long]');
    const name = long ? key.slice(0, -6) : key;
    const o = objectOf(s);
    const last = i === rest.length - 1;
    if (long) {
      // Drop the mapping branch of a list item's oneOf (the long syntax).
      const arr = o.props[name] as Extract<Schema, { kind: 'array' }>;
      const items = arr.items as Extract<Schema, { kind: 'oneOf' }>;
      if (last) {
        o.props[name] = { ...arr, items: SHORT_ONLY[name] ?? { kind: 'oneOf', of: items.of.filter((x) => x.kind !== 'object') } };
        return;
      }
      s = items.of.find((x) => x.kind === 'object') as Schema;
      continue;
    }
    if (last) {
      // Networks of a service: the attachment mapping.
      if (!(name in o.props) && o.values) {
        delete objectOf(o.values).props[name];
        return;
      }
      delete o.props[name];
      return;
    }
    s = (o.props[name] ?? (o.values as Schema)) as Schema;
  }
}

const cache = new Map<number, Schema>();

/** The schema of version 3.`minor`. */
export function schemaFor(minor: number): Schema {
  let s = cache.get(minor);
  if (!s) {
    s = structuredClone(BASE);
    // Newest first, so a key added inside one added later (rollback_config.order) is simply gone.
    const added = Object.entries(ADDED).sort(([a], [b]) => Number(b) - Number(a));
    for (const [v, paths] of added)
      if (Number(v) > minor)
        for (const p of paths) {
          try {
            removePath(s, p);
          } catch {
            // Already removed with its parent.
          }
        }
    cache.set(minor, s);
  }
  return s;
}

interface Failure {
  path: string[];
  /** The node itself when it is not the one the path names (an additional property: the key). */
  at?: string[];
  kind: 'type' | 'other';
  text: string;
}

const DURATION = /^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$/;
const PORTS = /^(?:(?:\[?[0-9a-fA-F:.]*\]?):)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/;

function checkFormat(format: string, v: YamlValue): boolean {
  if (format === 'duration') return typeof v === 'string' && (v === '0' || DURATION.test(v));
  if (format === 'ports') {
    if (!PORTS.test(String(v))) return false;
    try {
      parseShortPort(String(v), []);
      return true;
    } catch {
      return false;
    }
  }
  if (format === 'subnet') return typeof v === 'string' && /^[0-9a-fA-F:.]+\/\d+$/.test(v);
  return true;
}

function typeOf(v: YamlValue): Prim {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return 'integer';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'boolean';
  return Array.isArray(v) ? 'array' : 'object';
}

function matchesType(v: YamlValue, types: Prim[]): boolean {
  const k = typeOf(v);
  return types.includes(k) || (k === 'integer' && types.includes('number'));
}

const HUMAN: Record<string, string> = { object: 'mapping', array: 'list' };
function human(types: Prim[]): string {
  const h = types.map((x) => HUMAN[x] ?? x);
  return h.length === 1 ? (h[0] as string) : `${h.slice(0, -1).join(', ')} or ${h[h.length - 1]}`;
}

function typesOf(s: Schema): Prim[] {
  if (s.kind === 'type') return s.types;
  if (s.kind === 'enum') return [s.type];
  if (s.kind === 'object') return s.nullable ? ['object', 'null'] : ['object'];
  if (s.kind === 'array') return ['array'];
  if (s.kind === 'oneOf') return s.of.flatMap(typesOf);
  return [];
}

function validate(v: YamlValue, s: Schema, path: string[], out: Failure[]): void {
  switch (s.kind) {
    case 'any':
      return;
    case 'type':
      if (!matchesType(v, s.types)) out.push({ path, kind: 'type', text: `must be a ${human(s.types)}` });
      else if (s.format && !checkFormat(s.format, v)) out.push({ path, kind: 'other', text: `Does not match format '${s.format}'` });
      return;
    case 'enum':
      if (typeof v !== 'string') out.push({ path, kind: 'type', text: 'must be a string' });
      else if (!s.values.includes(v))
        out.push({
          path,
          kind: 'other',
          text: `${dotted(path)} must be one of the following: ${s.values.map((x) => JSON.stringify(x)).join(', ')}`,
        });
      return;
    case 'array':
      if (!Array.isArray(v)) {
        out.push({ path, kind: 'type', text: 'must be a list' });
        return;
      }
      v.forEach((x, i) => {
        validate(x, s.items, [...path, String(i)], out);
      });
      if (s.unique) {
        const seen = new Map<string, number>();
        for (const [i, x] of v.entries()) {
          const k = JSON.stringify(x, (_k, y) => (typeof y === 'bigint' ? Number(y) : y));
          const first = seen.get(k);
          if (first !== undefined) {
            out.push({ path, kind: 'other', text: `array items[${first},${i}] must be unique` });
            break;
          }
          seen.set(k, i);
        }
      }
      return;
    case 'object': {
      if (v === null && s.nullable) return;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) {
        out.push({ path, kind: 'type', text: s.nullable ? 'must be a mapping or null' : 'must be a mapping' });
        return;
      }
      for (const r of s.required ?? []) if (!(r in v)) out.push({ path, kind: 'other', text: `${r} is required` });
      for (const [k, x] of Object.entries(v)) {
        const p = s.props[k];
        if (p) validate(x, p, [...path, k], out);
        else if (s.values && (!s.keys || s.keys.test(k))) validate(x, s.values, [...path, k], out);
        else if (s.x && k.startsWith('x-')) continue;
        else out.push({ path, at: [...path, k], kind: 'other', text: `Additional property ${k} is not allowed` });
      }
      return;
    }
    case 'oneOf': {
      const fits = s.of.filter((b) => matchesType(v, typesOf(b)));
      if (fits.length === 0) {
        // gojsonschema keeps the first branch's error when no branch fits.
        validate(v, s.of[0] as Schema, path, out);
        return;
      }
      let best: Failure[] | undefined;
      for (const b of fits) {
        const f: Failure[] = [];
        validate(v, b, path, f);
        if (f.length === 0) return;
        if (!best) best = f;
      }
      out.push(...(best as Failure[]));
    }
  }
}

function dotted(path: string[]): string {
  return path.length === 0 ? '(root)' : path.join('.');
}

/** Validates a whole interpolated file against version 3.`minor`; throws docker's one-line error. */
export function validateCompose(file: YamlValue, minor: number): void {
  const out: Failure[] = [];
  validate(file, schemaFor(minor), [], out);
  if (out.length === 0) return;
  let pick = out[0] as Failure;
  for (const f of out) {
    if (f.path.length > pick.path.length || (f.path.length === pick.path.length && f.kind === 'type' && pick.kind !== 'type')) pick = f;
  }
  throw new ComposeError(`${dotted(pick.path)} ${pick.text}`, { path: pick.at ?? pick.path });
}
