// Parses one compose file as docker's yaml.v3 reads it: YAML 1.2 core
// scalars, but integers in Go's forms (`0400` is octal, `0b101`, `1_000`)
// and kept exact as bigint, `<<` merge keys, duplicate keys refused with
// yaml.v3's text. Floats stay JS numbers, so bigint vs number tells an int
// from a float later (Go prints 1000000.0 as `1e+06`). Bounds stop hostile
// input: the size of the text, alias expansion and nesting depth.
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type ScalarTag } from 'yaml';
import { ComposeError } from './errors.js';

/**
 * The largest compose file read. docker has no bound; the yaml package needs
 * about 1.4 s and 190 MB per MB of compose text (measured: 7.5 MB, 76,828
 * services, 17 s and 1.4 GB), so 1 MiB, some twenty times the largest real
 * stack files, keeps a mistake to a second or two.
 */
export const MAX_COMPOSE_BYTES = 1024 * 1024;
/** How many alias expansions a file may make (the "billion laughs" bound). */
export const MAX_ALIAS_COUNT = 1000;
/** The deepest nesting of mappings and lists accepted. */
export const MAX_DEPTH = 64;

export type YamlValue = null | boolean | bigint | number | string | YamlValue[] | { [key: string]: YamlValue };
export type YamlMap = { [key: string]: YamlValue };

function goInt(src: string): bigint {
  const neg = src.startsWith('-');
  let s = src.replace(/^[-+]/, '').replaceAll('_', '');
  let v: bigint;
  if (/^0[bB]/.test(s)) v = BigInt(`0b${s.slice(2)}`);
  else if (/^0[oO]/.test(s)) v = BigInt(`0o${s.slice(2)}`);
  else if (/^0[xX]/.test(s)) v = BigInt(`0x${s.slice(2)}`);
  else if (/^0[0-7]+$/.test(s)) v = BigInt(`0o${s.slice(1)}`);
  else {
    s = s.replace(/^0+(?=\d)/, '');
    v = BigInt(s);
  }
  return neg ? -v : v;
}

const goIntTag: ScalarTag = {
  tag: 'tag:yaml.org,2002:int',
  default: true,
  test: /^[-+]?(?:0[bB][01_]+|0[oO][0-7_]+|0[xX][0-9a-fA-F_]+|[0-9][0-9_]*)$/,
  resolve: (src: string) => goInt(src),
  stringify: (item) => String(item.value),
};

/** Parses `text` (named `file` in messages) into plain values; the top level must be a mapping. */
export function parseComposeYaml(text: string): YamlMap {
  if (Buffer.byteLength(text) > MAX_COMPOSE_BYTES)
    throw new ComposeError(`compose file is larger than ${MAX_COMPOSE_BYTES} bytes: split it, or move data into files`);
  // The yaml package runs out of memory (killing the process) on flow
  // collections nested some 50,000 deep: refuse deep nesting before it parses.
  if (flowDepth(text) > MAX_DEPTH) throw new ComposeError(`yaml: nesting deeper than ${MAX_DEPTH} levels`);
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    version: '1.2',
    schema: 'core',
    merge: true,
    intAsBigInt: true,
    uniqueKeys: false,
    lineCounter: lines,
    customTags: (tags) => [goIntTag, ...tags],
    prettyErrors: false,
  });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const line = e ? lines.linePos(e.pos[0]).line : 0;
    throw new ComposeError(`yaml: line ${line}: ${e?.message.split('\n')[0] ?? 'invalid YAML'}`);
  }
  checkDuplicates(doc.contents as Node | null, lines, 0);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    throw new ComposeError(`yaml: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Map)
    throw new ComposeError('top-level object must be a mapping');
  return toPlain(value, '', 0) as YamlMap;
}

/**
 * The deepest nesting of `[` and `{` outside quoted scalars and comments.
 * A quote opens a scalar only where YAML lets one start (after a space, an
 * indicator or at a line's start), so `it's` in a plain scalar is no quote.
 */
export function flowDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let prev = '\n';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if ((c === '"' || c === "'") && /[\s[{,:-]/.test(prev)) {
      for (i++; i < text.length; i++) {
        const d = text[i];
        if (c === '"' && d === '\\') i++;
        else if (d === c) {
          if (c === "'" && text[i + 1] === "'") i++;
          else break;
        }
      }
      prev = c;
      continue;
    }
    if (c === '#' && /\s/.test(prev)) {
      while (i < text.length && text[i] !== '\n') i++;
      prev = '\n';
      continue;
    }
    if (c === '[' || c === '{') max = Math.max(max, ++depth);
    else if ((c === ']' || c === '}') && depth > 0) depth--;
    prev = c;
  }
  return max;
}

function checkDuplicates(node: Node | null, lines: LineCounter, depth: number): void {
  if (!node) return;
  if (depth > MAX_DEPTH) throw new ComposeError(`yaml: nesting deeper than ${MAX_DEPTH} levels`);
  if (isMap(node)) {
    const seen = new Map<string, number>();
    const dups: string[] = [];
    for (const pair of node.items) {
      const k = pair.key as Node | null;
      if (isScalar(k) && k.range) {
        const name = String(k.value);
        if (name === '<<') continue;
        const line = lines.linePos(k.range[0]).line;
        const first = seen.get(name);
        if (first !== undefined) dups.push(`  line ${line}: mapping key "${name}" already defined at line ${first}`);
        else seen.set(name, line);
      }
      checkDuplicates(pair.value as Node | null, lines, depth + 1);
    }
    if (dups.length > 0) throw new ComposeError(`yaml: unmarshal errors:\n${dups.join('\n')}`);
  } else if (isSeq(node)) {
    for (const item of node.items) checkDuplicates(item as Node | null, lines, depth + 1);
  }
}

function toPlain(v: unknown, path: string, depth: number): YamlValue {
  if (depth > MAX_DEPTH) throw new ComposeError(`yaml: nesting deeper than ${MAX_DEPTH} levels`);
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint' || typeof v === 'number') return v;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map((x) => toPlain(x, path, depth + 1));
  if (v instanceof Map) {
    const out: YamlMap = {};
    for (const [k, x] of v) {
      if (typeof k !== 'string') throw new ComposeError(`non-string key ${path ? `in ${path}` : 'at top level'}: ${String(k)}`);
      out[k] = toPlain(x, path ? `${path}.${k}` : k, depth + 1);
    }
    return out;
  }
  if (typeof v === 'object') {
    const out: YamlMap = Object.create(null);
    for (const [k, x] of Object.entries(v)) out[k] = toPlain(x, path ? `${path}.${k}` : k, depth + 1);
    return { ...out };
  }
  throw new ComposeError(`unsupported YAML value at ${path || '(root)'}`);
}

/**
 * The line of the deepest node of `path` (keys, or list indexes as digits)
 * that exists in `text`, for telling where a schema error is; undefined when
 * the text does not parse or not even the first key is there. Parses again,
 * which is only done for a file already refused.
 */
export function lineOf(text: string, path: readonly string[]): number | undefined {
  const lines = new LineCounter();
  const doc = parseDocument(text, { version: '1.2', schema: 'core', uniqueKeys: false, lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) return undefined;
  let node = doc.contents as Node | null;
  let line: number | undefined;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      if (!pair) break;
      const k = pair.key as Node;
      if (k.range) line = lines.linePos(k.range[0]).line;
      node = pair.value as Node | null;
    } else if (isSeq(node) && /^\d+$/.test(key)) {
      const item = node.items[Number(key)] as Node | undefined;
      if (!item) break;
      if (item.range) line = lines.linePos(item.range[0]).line;
      node = item;
    } else break;
  }
  return line;
}
