// Variable substitution as docker stack deploy does it: `$$`, `$NAME`,
// `${NAME}`, with `:-`/`-` defaults and `:?`/`?` errors, from the given
// environment only (docker never reads `.env`). A bare name takes a default
// too (`$FOO-bar`), and a braced one ends at the first `}` (no nesting).
// Only string values are substituted, never keys; a value that substitution
// changed is then cast where docker casts it (replicas, booleans, ...).
import { ComposeError } from './errors.js';
import type { YamlMap, YamlValue } from './yaml.js';

export type Environment = Readonly<Record<string, string | undefined>>;

const NAME = /^[_a-z][_a-z0-9]*/i;

class TemplateError extends Error {}

/** Substitutes one string; throws TemplateError with docker's inner text. */
export function substitute(s: string, env: Environment): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const d = s.indexOf('$', i);
    if (d < 0) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, d);
    const rest = s.slice(d + 1);
    if (rest.startsWith('$')) {
      out += '$';
      i = d + 2;
      continue;
    }
    let body: string;
    if (rest.startsWith('{')) {
      const close = rest.indexOf('}');
      if (close < 0) throw new TemplateError('invalid');
      body = rest.slice(1, close);
      if (!isSubstitution(body)) throw new TemplateError('invalid');
      i = d + 2 + close;
    } else {
      const m = NAME.exec(rest);
      if (!m) throw new TemplateError('invalid');
      // The bare form shares the braced form's tail: a default or an error up to a `}`.
      const tail = /^:?[-?][^}]*/.exec(rest.slice(m[0].length));
      body = m[0] + (tail ? tail[0] : '');
      i = d + 1 + body.length;
    }
    out += resolve(body, env);
  }
  return out;
}

function isSubstitution(body: string): boolean {
  const m = NAME.exec(body);
  if (!m) return false;
  const tail = body.slice(m[0].length);
  return tail === '' || /^:?[-?]/.test(tail);
}

function resolve(body: string, env: Environment): string {
  const name = (NAME.exec(body) as RegExpExecArray)[0];
  const op = body.slice(name.length);
  const value = env[name];
  if (op.startsWith(':-')) return value ? value : op.slice(2);
  if (op.startsWith('-')) return value !== undefined ? value : op.slice(1);
  if (op.startsWith(':?')) {
    if (!value) throw new TemplateError(`required variable ${name} is missing a value: ${op.slice(2)}`);
    return value;
  }
  if (op.startsWith('?')) {
    if (value === undefined) throw new TemplateError(`required variable ${name} is missing a value: ${op.slice(1)}`);
    return value;
  }
  return value ?? '';
}

type Cast = 'int' | 'float' | 'bool';

// Where docker casts a substituted value; `*` is one mapping key, `[]` a list item.
const CASTS: [string, Cast][] = [
  ['services.*.configs.[].mode', 'int'],
  ['services.*.secrets.[].mode', 'int'],
  ['services.*.healthcheck.retries', 'int'],
  ['services.*.healthcheck.disable', 'bool'],
  ['services.*.deploy.replicas', 'int'],
  ['services.*.deploy.update_config.parallelism', 'int'],
  ['services.*.deploy.update_config.max_failure_ratio', 'float'],
  ['services.*.deploy.rollback_config.parallelism', 'int'],
  ['services.*.deploy.rollback_config.max_failure_ratio', 'float'],
  ['services.*.deploy.restart_policy.max_attempts', 'int'],
  ['services.*.deploy.placement.max_replicas_per_node', 'int'],
  ['services.*.ports.[].target', 'int'],
  ['services.*.ports.[].published', 'int'],
  ['services.*.ulimits.*', 'int'],
  ['services.*.ulimits.*.hard', 'int'],
  ['services.*.ulimits.*.soft', 'int'],
  ['services.*.oom_score_adj', 'int'],
  ['services.*.privileged', 'bool'],
  ['services.*.read_only', 'bool'],
  ['services.*.stdin_open', 'bool'],
  ['services.*.tty', 'bool'],
  ['services.*.volumes.[].read_only', 'bool'],
  ['services.*.volumes.[].volume.nocopy', 'bool'],
  ['networks.*.external', 'bool'],
  ['networks.*.internal', 'bool'],
  ['networks.*.attachable', 'bool'],
  ['volumes.*.external', 'bool'],
  ['secrets.*.external', 'bool'],
  ['configs.*.external', 'bool'],
];

function castFor(path: string[]): Cast | undefined {
  for (const [pattern, cast] of CASTS) {
    const parts = pattern.split('.');
    if (parts.length !== path.length) continue;
    if (parts.every((p, i) => p === path[i] || (p === '*' && path[i] !== '[]'))) return cast;
  }
  return undefined;
}

function cast(value: string, how: Cast): YamlValue {
  if (how === 'int') {
    if (!/^[-+]?\d+$/.test(value)) throw new TemplateError(`strconv.Atoi: parsing ${JSON.stringify(value)}: invalid syntax`);
    return BigInt(value);
  }
  if (how === 'float') {
    const t = value.trim();
    if (t === '' || Number.isNaN(Number(t)) || t !== value)
      throw new TemplateError(`strconv.ParseFloat: parsing ${JSON.stringify(value)}: invalid syntax`);
    return Number(t);
  }
  const l = value.toLowerCase();
  if (['y', 'yes', 'true', 'on'].includes(l)) return true;
  if (['n', 'no', 'false', 'off'].includes(l)) return false;
  throw new TemplateError(`invalid boolean: ${value}`);
}

/** The sections docker interpolates; `version` and root `x-*` keys are left alone. */
const SECTIONS = ['services', 'networks', 'volumes', 'secrets', 'configs'];

/** Interpolates a parsed file in place of a copy, with docker's errors. */
export function interpolate(file: YamlMap, env: Environment): YamlMap {
  const out: YamlMap = { ...file };
  for (const section of SECTIONS) {
    const v = file[section];
    if (v !== undefined && v !== null && typeof v === 'object' && !Array.isArray(v)) out[section] = walk(v, [section], env);
  }
  return out;
}

function walk(v: YamlValue, path: string[], env: Environment): YamlValue {
  if (typeof v === 'string') {
    let s: string;
    try {
      s = substitute(v, env);
    } catch (err) {
      const inner = (err as Error).message;
      const why = inner === 'invalid' ? JSON.stringify(v) : JSON.stringify(inner);
      throw new ComposeError(`invalid interpolation format for ${path.join('.')}: ${why}; you may need to escape any $ with another $`);
    }
    if (s === v) return v;
    const how = castFor(path);
    if (!how) return s;
    try {
      return cast(s, how);
    } catch (err) {
      throw new ComposeError(`error while interpolating ${path.join('.')}: failed to cast to expected type: ${(err as Error).message}`);
    }
  }
  if (Array.isArray(v)) return v.map((x) => walk(x, [...path, '[]'], env));
  if (v !== null && typeof v === 'object') {
    const out: YamlMap = {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x, [...path, k], env);
    return out;
  }
  return v;
}
