// A subset of Go's text/template, for `--format` as the docker CLI reads it:
// fields (`{{.ID}}`, `{{.Spec.Name}}`), `{{.}}`, pipelines (`{{.Name | upper}}`),
// docker's template functions (json, join, split, lower, upper, title, pad,
// truncate, println) and Go's index, len, print, eq, ne, not, and, or;
// `{{if}}`/`{{else}}`/`{{with}}`/`{{range}}` with `{{end}}`, variables
// (`$`, `{{range $k, $v := .Labels}}`), trim markers and comments. Errors read
// as Go's (`template: :1:2: executing "" at <.Foo>: can't evaluate field Foo in
// type …`). Pure: text in, text out; the template comes from the command line,
// so its length and nesting are bounded.
import { UsageError } from '../lib/errors.js';

/** Longest template read (characters). */
export const MAX_TEMPLATE_CHARS = 16 * 1024;
/** Deepest nesting of blocks and parentheses. */
export const MAX_TEMPLATE_DEPTH = 32;
/** Most output one execution produces (characters): a range over a huge value stops there. */
export const MAX_TEMPLATE_OUTPUT = 16 * 1024 * 1024;
/** Most nodes one execution runs: nested ranges over the same list grow as its length to the power of the depth. */
export const MAX_TEMPLATE_STEPS = 1_000_000;

/**
 * Marks a plain object as a Go struct of the named type: a missing field is an
 * error naming the type, as Go's. Objects whose keys all start with a capital
 * letter count as structs too (`swarm.Service` decoded from JSON); any other
 * object is a Go map, where a missing key gives `<no value>`.
 */
export const GO_TYPE: unique symbol = Symbol('goType');

export class TemplateError extends UsageError {}

// ------------------------------------------------------------------ lexing

type Tok =
  | { k: 'field'; path: string[]; pos: number; text: string }
  | { k: 'var'; name: string; path: string[]; pos: number; text: string }
  | { k: 'ident'; name: string; pos: number }
  | { k: 'str'; v: string; pos: number }
  | { k: 'num'; v: number; pos: number }
  | { k: 'bool'; v: boolean; pos: number }
  | { k: 'nil'; pos: number }
  | { k: 'dot'; pos: number }
  | { k: 'pipe' | 'lparen' | 'rparen' | 'comma' | 'declare'; pos: number };

type Arg =
  | { k: 'field'; path: string[]; pos: number; text: string }
  | { k: 'var'; name: string; path: string[]; pos: number; text: string }
  | { k: 'lit'; v: unknown; pos: number }
  | { k: 'dot'; pos: number }
  | { k: 'fn'; name: string; pos: number }
  | { k: 'sub'; pipe: Pipeline; pos: number };

interface Command {
  args: Arg[];
  pos: number;
}
interface Pipeline {
  decl: string[];
  cmds: Command[];
  pos: number;
}

type Node =
  | { k: 'text'; v: string }
  | { k: 'action'; pipe: Pipeline }
  | { k: 'if' | 'with'; pipe: Pipeline; body: Node[]; else: Node[] }
  | { k: 'range'; pipe: Pipeline; body: Node[]; else: Node[] };

export interface Template {
  readonly source: string;
  readonly nodes: readonly Node[];
}

const FUNCS = new Set([
  'json',
  'join',
  'split',
  'lower',
  'upper',
  'title',
  'pad',
  'truncate',
  'println',
  'index',
  'len',
  'print',
  'printf',
  'eq',
  'ne',
  'not',
  'and',
  'or',
]);

const HEADER_PASS = new Set(['json', 'join', 'split', 'lower', 'upper', 'title', 'pad', 'truncate']);

function lineOf(src: string, pos: number): number {
  let n = 1;
  for (let i = 0; i < pos && i < src.length; i++) if (src.charCodeAt(i) === 10) n++;
  return n;
}

/** Splits one action's inside into tokens; `base` is its offset in the template. */
function lexAction(src: string, inner: string, base: number): Tok[] {
  const toks: Tok[] = [];
  const fail = (m: string): never => {
    throw new TemplateError(`template: :${lineOf(src, base)}: ${m}`);
  };
  let i = 0;
  const ident = /[A-Za-z0-9_]/;
  const readPath = (): string[] => {
    const path: string[] = [];
    while (inner[i] === '.' && i + 1 < inner.length && /[A-Za-z_]/.test(inner[i + 1]!)) {
      i++;
      const s = i;
      while (i < inner.length && ident.test(inner[i]!)) i++;
      path.push(inner.slice(s, i));
    }
    return path;
  };
  while (i < inner.length) {
    const c = inner[i]!;
    const pos = base + i;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '|') {
      toks.push({ k: 'pipe', pos });
      i++;
    } else if (c === '(') {
      toks.push({ k: 'lparen', pos });
      i++;
    } else if (c === ')') {
      toks.push({ k: 'rparen', pos });
      i++;
    } else if (c === ',') {
      toks.push({ k: 'comma', pos });
      i++;
    } else if (c === ':' && inner[i + 1] === '=') {
      toks.push({ k: 'declare', pos });
      i += 2;
    } else if (c === '=') {
      fail('assignment to an existing variable ($x = …) is not supported; declare one with $x := …');
    } else if (c === '.') {
      const s = i;
      const path = readPath();
      if (!path.length) {
        i++;
        if (i < inner.length && ident.test(inner[i]!)) fail(`bad character ${JSON.stringify(inner[i])} after "."`);
        toks.push({ k: 'dot', pos });
      } else toks.push({ k: 'field', path, pos, text: inner.slice(s, i) });
    } else if (c === '$') {
      const s = i;
      i++;
      while (i < inner.length && ident.test(inner[i]!)) i++;
      const name = inner.slice(s, i);
      const path = readPath();
      toks.push({ k: 'var', name, path, pos, text: inner.slice(s, i) });
    } else if (c === '"' || c === '`') {
      const s = i;
      i++;
      let v = '';
      if (c === '`') {
        const e = inner.indexOf('`', i);
        if (e < 0) fail('unterminated raw quoted string');
        v = inner.slice(i, e);
        i = e + 1;
      } else {
        for (;;) {
          if (i >= inner.length) fail('unterminated quoted string');
          const d = inner[i]!;
          if (d === '"') break;
          if (d === '\n') fail('unterminated quoted string');
          if (d === '\\') i++;
          i++;
        }
        i++;
        try {
          v = JSON.parse(inner.slice(s, i)) as string;
        } catch {
          fail(`bad quoted string ${inner.slice(s, i)}`);
        }
      }
      toks.push({ k: 'str', v, pos });
    } else if (/[0-9+-]/.test(c)) {
      const m = /^[+-]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)/.exec(inner.slice(i));
      if (!m) fail(`bad number syntax: ${JSON.stringify(inner.slice(i, i + 10))}`);
      toks.push({ k: 'num', v: Number(m![0]), pos });
      i += m![0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const s = i;
      while (i < inner.length && ident.test(inner[i]!)) i++;
      const name = inner.slice(s, i);
      if (name === 'true' || name === 'false') toks.push({ k: 'bool', v: name === 'true', pos });
      else if (name === 'nil') toks.push({ k: 'nil', pos });
      else toks.push({ k: 'ident', name, pos });
    } else {
      fail(`unexpected ${JSON.stringify(c)} in command`);
    }
  }
  return toks;
}

// ------------------------------------------------------------------ parsing

/** Parses a template; TemplateError with Go's text (`template: :1: unclosed action`) when it is not one. */
export function parseTemplate(source: string): Template {
  if (source.length > MAX_TEMPLATE_CHARS)
    throw new TemplateError(`template: the format is ${source.length} characters long, at most ${MAX_TEMPLATE_CHARS} are read`, {
      field: '--format',
    });
  const fail = (pos: number, m: string): never => {
    throw new TemplateError(`template: :${lineOf(source, pos)}: ${m}`, { field: '--format' });
  };

  // Split into text and actions, applying trim markers.
  type Piece = { k: 'text'; v: string } | { k: 'act'; toks: Tok[]; pos: number; word?: string };
  const pieces: Piece[] = [];
  let i = 0;
  let trimNext = false;
  while (i <= source.length) {
    const open = source.indexOf('{{', i);
    let text = source.slice(i, open < 0 ? source.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) pieces.push({ k: 'text', v: text });
      break;
    }
    let start = open + 2;
    if (/^-\s/.test(source.slice(start, start + 2))) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text) pieces.push({ k: 'text', v: text });
    // A comment may hold `}}`-free text of any kind.
    const lead = /^\s*\/\*/.exec(source.slice(start));
    let close: number;
    if (lead) {
      const end = source.indexOf('*/', start + lead[0].length);
      if (end < 0) fail(open, 'unclosed comment');
      close = source.indexOf('}}', end + 2);
      if (close < 0 || source.slice(end + 2, close).replace(/^\s*-?\s*$/, '') !== '') fail(open, 'comment ends before closing delimiter');
    } else {
      close = source.indexOf('}}', start);
      // `}}` inside a quoted string does not close the action.
      while (close >= 0 && unbalancedQuote(source.slice(start, close))) close = source.indexOf('}}', close + 1);
      if (close < 0) fail(open, 'unclosed action');
    }
    let end = close;
    if (/\s-$/.test(source.slice(start, close))) {
      end = close - 1;
      trimNext = true;
    }
    i = close + 2;
    if (lead) continue;
    const toks = lexAction(source, source.slice(start, end), start);
    const first = toks[0];
    const word = first?.k === 'ident' && ['if', 'else', 'end', 'range', 'with'].includes(first.name) ? first.name : undefined;
    pieces.push({ k: 'act', toks, pos: start, word });
  }

  let at = 0;
  // Variables in scope, as Go's parser tracks them: `$`, then each declaration until the end of its block.
  let vars: string[] = ['$'];
  const parseList = (depth: number, closers: readonly string[]): { nodes: Node[]; closer?: Piece & { k: 'act' } } => {
    if (depth > MAX_TEMPLATE_DEPTH) fail(0, `blocks nested deeper than ${MAX_TEMPLATE_DEPTH}`);
    const nodes: Node[] = [];
    while (at < pieces.length) {
      const p = pieces[at++]!;
      if (p.k === 'text') {
        nodes.push({ k: 'text', v: p.v });
        continue;
      }
      if (p.word === 'end' || p.word === 'else') {
        if (!closers.includes(p.word)) fail(p.pos, `unexpected {{${p.word}}}`);
        return { nodes, closer: p };
      }
      if (p.word === 'if' || p.word === 'with' || p.word === 'range') {
        nodes.push(parseBlock(p.word, p.toks.slice(1), p.pos, depth));
        continue;
      }
      nodes.push({ k: 'action', pipe: parsePipeline(p.toks, p.pos, depth, true) });
    }
    if (closers.length) fail(source.length, 'unexpected EOF');
    return { nodes };
  };

  const parseBlock = (word: 'if' | 'with' | 'range', toks: Tok[], pos: number, depth: number): Node => {
    if (!toks.length) fail(pos, `missing value for ${word}`);
    const outer = vars;
    vars = [...vars];
    const pipe = parsePipeline(toks, pos, depth, word === 'range' || word === 'with');
    const inner = vars;
    const body = parseList(depth + 1, ['end', 'else']);
    vars = inner;
    let elseNodes: Node[] = [];
    if (body.closer?.word === 'else') {
      const rest = body.closer.toks.slice(1);
      if (rest.length && rest[0]!.k === 'ident' && (rest[0] as { name: string }).name === word && word !== 'range') {
        // `{{else if …}}` / `{{else with …}}`: a nested block that shares our {{end}}.
        elseNodes = [parseBlock(word, rest.slice(1), body.closer.pos, depth + 1)];
      } else {
        if (rest.length) fail(body.closer.pos, `unexpected ${describe(rest[0]!)} in else`);
        const tail = parseList(depth + 1, ['end']);
        elseNodes = tail.nodes;
        if (tail.closer!.toks.length > 1) fail(tail.closer!.pos, `unexpected ${describe(tail.closer!.toks[1]!)} in end`);
      }
    } else if (body.closer!.toks.length > 1) fail(body.closer!.pos, `unexpected ${describe(body.closer!.toks[1]!)} in end`);
    vars = outer;
    return { k: word, pipe, body: body.nodes, else: elseNodes };
  };

  const parsePipeline = (toks: Tok[], pos: number, depth: number, mayDeclare: boolean): Pipeline => {
    let j = 0;
    const decl: string[] = [];
    // `$x :=` or `$k, $v :=`
    const declAt = toks.findIndex((t) => t.k === 'declare');
    if (declAt >= 0) {
      const names = toks.slice(0, declAt);
      const ok =
        (names.length === 1 && names[0]!.k === 'var') ||
        (mayDeclare && names.length === 3 && names[0]!.k === 'var' && names[1]!.k === 'comma' && names[2]!.k === 'var');
      if (!ok) fail(pos, 'bad variable declaration');
      for (const n of names) if (n.k === 'var') decl.push(n.name);
      j = declAt + 1;
    }
    for (const t of toks.slice(j)) if (t.k === 'var' && !vars.includes(t.name)) fail(t.pos, `undefined variable "${t.name}"`);
    vars.push(...decl);
    const parseCmds = (d: number, inParens: boolean): Command[] => {
      if (d > MAX_TEMPLATE_DEPTH) fail(pos, `parentheses nested deeper than ${MAX_TEMPLATE_DEPTH}`);
      const cmds: Command[] = [];
      let cur: Arg[] = [];
      let cpos = toks[j]?.pos ?? pos;
      const endCmd = (): void => {
        if (!cur.length) fail(cpos, 'missing value for command');
        cmds.push({ args: cur, pos: cpos });
        cur = [];
      };
      while (j < toks.length) {
        const t = toks[j++]!;
        switch (t.k) {
          case 'pipe':
            endCmd();
            cpos = toks[j]?.pos ?? t.pos;
            break;
          case 'rparen':
            if (!inParens) fail(t.pos, 'unexpected right paren');
            endCmd();
            return cmds;
          case 'lparen': {
            const sub = parseCmds(d + 1, true);
            cur.push({ k: 'sub', pipe: { decl: [], cmds: sub, pos: t.pos }, pos: t.pos });
            break;
          }
          case 'field':
            cur.push({ k: 'field', path: t.path, pos: t.pos, text: t.text });
            break;
          case 'var':
            cur.push({ k: 'var', name: t.name, path: t.path, pos: t.pos, text: t.text });
            break;
          case 'dot':
            cur.push({ k: 'dot', pos: t.pos });
            break;
          case 'str':
          case 'num':
          case 'bool':
            cur.push({ k: 'lit', v: t.v, pos: t.pos });
            break;
          case 'nil':
            cur.push({ k: 'lit', v: null, pos: t.pos });
            break;
          case 'ident':
            if (!FUNCS.has(t.name)) fail(t.pos, `function "${t.name}" not defined`);
            cur.push({ k: 'fn', name: t.name, pos: t.pos });
            break;
          default:
            fail(t.pos, `unexpected ${describe(t)} in command`);
        }
      }
      if (inParens) fail(pos, 'unclosed left paren');
      if (cur.length) endCmd();
      else if (cmds.length) fail(pos, 'missing value for command');
      return cmds;
    };
    const cmds = parseCmds(depth, false);
    if (!cmds.length) fail(pos, 'missing value for command');
    for (const c of cmds.slice(1))
      if (c.args[0]!.k === 'lit' || c.args[0]!.k === 'dot') fail(c.pos, 'non executable command in pipeline stage 2');
    return { decl, cmds, pos };
  };

  const { nodes } = parseList(0, []);
  return { source, nodes };
}

function unbalancedQuote(s: string): boolean {
  let q = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q === '"' && c === '\\') i++;
    else if (q && c === q) q = '';
    else if (!q && (c === '"' || c === '`')) q = c;
  }
  return q !== '';
}

function describe(t: Tok): string {
  switch (t.k) {
    case 'ident':
      return `<${t.name}>`;
    case 'field':
    case 'var':
      return `<${t.text}>`;
    case 'str':
      return JSON.stringify(t.v);
    case 'comma':
      return '","';
    case 'pipe':
      return '"|"';
    case 'declare':
      return '":="';
    default:
      return `<${t.k}>`;
  }
}

// ------------------------------------------------------------------ values

type Obj = Record<string | symbol, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map);

function isStruct(v: Obj): boolean {
  if (typeof v[GO_TYPE] === 'string') return true;
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => /^[A-Z]/.test(k));
}

/** The Go type name shown in errors. */
function goType(v: unknown): string {
  if (v === null || v === undefined) return 'interface {}';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (Array.isArray(v)) return '[]interface {}';
  if (v instanceof Map) return 'map[string]string';
  if (isObj(v)) return typeof v[GO_TYPE] === 'string' ? (v[GO_TYPE] as string) : isStruct(v) ? 'struct' : 'map[string]interface {}';
  return 'interface {}';
}

/** Go's %v of a value. */
export function goString(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goNumber(v);
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (v instanceof Map)
    return `map[${[...v.entries()]
      .sort(([a], [b]) => String(a).localeCompare(String(b)))
      .map(([k, x]) => `${k}:${goString(x)}`)
      .join(' ')}]`;
  if (isObj(v)) {
    if (isStruct(v)) return `{${Object.values(v).map(goString).join(' ')}}`;
    return `map[${Object.keys(v)
      .sort()
      .map((k) => `${k}:${goString(v[k])}`)
      .join(' ')}]`;
  }
  return String(v);
}

function goNumber(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return String(n);
  // Go's %v of a float64 is %g: exponent form from 1e21 (and below 1e-4), with a two-digit exponent.
  const s = String(n);
  return s.replace(/e([+-])(\d)$/, 'e$10$2');
}

function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  if (isObj(v) && !isStruct(v)) return Object.keys(v).length > 0;
  return true;
}

/** Marshals as docker's `json` template function: no HTML escaping, no trailing newline. */
function toJson(v: unknown): string {
  if (v === undefined) return 'null';
  return JSON.stringify(v, (_k, x: unknown) => (x instanceof Map ? Object.fromEntries(x) : x)) ?? 'null';
}

/** Go's fmt.Sprintf for the verbs formats use: %s %v %d %q %t %%, with `-` and a width; a missing operand is Go's `%!s(MISSING)`. */
function sprintf(format: string, args: readonly unknown[]): string {
  let i = 0;
  return format.replace(/%(-?)(\d*)([svdqt%])/g, (_m, left: string, width: string, verb: string) => {
    if (verb === '%') return '%';
    if (i >= args.length) return `%!${verb}(MISSING)`;
    const v = args[i++];
    let text: string;
    if (verb === 'q') text = JSON.stringify(typeof v === 'string' ? v : goString(v));
    else if (verb === 'd' && !(typeof v === 'number' && Number.isInteger(v))) text = `%!d(${goType(v)}=${goString(v)})`;
    else text = goString(v);
    const w = Math.min(Number(width || 0), 1024);
    return left ? text.padEnd(w) : text.padStart(w);
  });
}

// ------------------------------------------------------------------ execution

interface Scope {
  dot: unknown;
  vars: Map<string, unknown>;
}

class ExecError extends Error {}

/** Runs `t` on `data`; TemplateError with Go's text when a field is missing or a function is misused. */
export function executeTemplate(t: Template, data: unknown, opts: { header?: boolean } = {}): string {
  const src = t.source;
  let out = '';
  const where = (pos: number): string => {
    const before = src.slice(0, pos);
    const nl = before.lastIndexOf('\n');
    return `${lineOf(src, pos)}:${nl < 0 ? pos : pos - nl - 1}`;
  };
  const fail = (pos: number, at: string, m: string): never => {
    throw new ExecError(`template: :${where(pos)}: executing "" at <${at}>: ${m}`);
  };

  const walk = (base: unknown, path: readonly string[], pos: number, text: string): unknown => {
    let v = base;
    for (const name of path) {
      if (v === null || v === undefined) fail(pos, text, `nil pointer evaluating interface {}.${name}`);
      if (v instanceof Map) v = v.get(name);
      else if (isObj(v)) {
        if (Object.hasOwn(v, name)) v = v[name];
        else if (isStruct(v)) fail(pos, text, `can't evaluate field ${name} in type ${goType(v)}`);
        else v = undefined;
      } else fail(pos, text, `can't evaluate field ${name} in type ${goType(v)}`);
    }
    return v;
  };

  const argValue = (a: Arg, s: Scope): unknown => {
    switch (a.k) {
      case 'dot':
        return s.dot;
      case 'lit':
        return a.v;
      case 'field':
        return walk(s.dot, a.path, a.pos, a.text);
      case 'var': {
        if (!s.vars.has(a.name)) fail(a.pos, a.text, `undefined variable: ${a.name}`);
        return walk(s.vars.get(a.name), a.path, a.pos, a.text);
      }
      case 'sub':
        return runPipe(a.pipe, s);
      case 'fn':
        return call(a.name, [], a.pos);
    }
  };

  const call = (name: string, args: unknown[], pos: number): unknown => {
    const want = (n: number | [number, number]): void => {
      const [lo, hi] = typeof n === 'number' ? [n, n] : n;
      if (args.length < lo || args.length > hi)
        fail(pos, name, `wrong number of args for ${name}: want ${lo === hi ? lo : `${lo} to ${hi}`} got ${args.length}`);
    };
    const str = (v: unknown, i: number): string => {
      if (typeof v !== 'string') fail(pos, name, `wrong type for value; expected string; got ${goType(v)} (argument ${i + 1} of ${name})`);
      return v as string;
    };
    const int = (v: unknown, i: number): number => {
      if (typeof v !== 'number' || !Number.isInteger(v))
        fail(pos, name, `wrong type for value; expected int; got ${goType(v)} (argument ${i + 1} of ${name})`);
      return v as number;
    };
    // A table's header row: docker's formatting functions hand their first argument back, so `{{upper .Name}}` heads its column with NAME.
    if (opts.header && HEADER_PASS.has(name) && args.length) return args[0];
    switch (name) {
      case 'json':
        want(1);
        return toJson(args[0]);
      case 'join': {
        want(2);
        const list = args[0];
        if (!Array.isArray(list)) fail(pos, name, `wrong type for value; expected []string; got ${goType(list)}`);
        return (list as unknown[]).map(goString).join(str(args[1], 1));
      }
      case 'split':
        want(2);
        return str(args[0], 0).split(str(args[1], 1));
      case 'lower':
        want(1);
        return str(args[0], 0).toLowerCase();
      case 'upper':
        want(1);
        return str(args[0], 0).toUpperCase();
      case 'title':
        want(1);
        return str(args[0], 0).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, a: string, b: string) => a + b.toUpperCase());
      case 'pad': {
        want(3);
        const s = str(args[0], 0);
        return ' '.repeat(Math.max(0, Math.min(1024, int(args[1], 1)))) + s + ' '.repeat(Math.max(0, Math.min(1024, int(args[2], 2))));
      }
      case 'truncate': {
        want(2);
        const s = str(args[0], 0);
        const n = int(args[1], 1);
        const cps = [...s];
        return n >= 0 && cps.length > n ? cps.slice(0, n).join('') : s;
      }
      case 'println':
        return args.map(goString).join(' ') + '\n';
      case 'print':
        // Go's fmt.Sprint: a space between two operands when neither is a string.
        return args.reduce<string>(
          (acc, v, i) => acc + (i > 0 && typeof v !== 'string' && typeof args[i - 1] !== 'string' ? ' ' : '') + goString(v),
          '',
        );
      case 'printf':
        if (args.length < 1) want([1, 99]);
        return sprintf(str(args[0], 0), args.slice(1));
      case 'len': {
        want(1);
        const v = args[0];
        if (typeof v === 'string') return Buffer.byteLength(v);
        if (Array.isArray(v)) return v.length;
        if (v instanceof Map) return v.size;
        if (isObj(v) && !isStruct(v)) return Object.keys(v).length;
        return fail(pos, name, `error calling len: len of type ${goType(v)}`);
      }
      case 'index': {
        if (args.length < 1) want([1, 99]);
        let v = args[0];
        for (const k of args.slice(1)) {
          if (Array.isArray(v)) {
            const i = int(k, 1);
            if (i < 0 || i >= v.length) fail(pos, name, `error calling index: index out of range: ${i}`);
            v = v[i];
          } else if (v instanceof Map) v = v.get(k);
          else if (isObj(v) && !isStruct(v)) v = Object.hasOwn(v, str(k, 1)) ? v[k as string] : undefined;
          else if (v === null || v === undefined) fail(pos, name, 'error calling index: index of untyped nil');
          else fail(pos, name, `error calling index: can't index item of type ${goType(v)}`);
        }
        return v;
      }
      case 'eq': {
        if (args.length < 2) want([2, 99]);
        return args.slice(1).some((x) => basicEqual(args[0], x, pos));
      }
      case 'ne':
        want(2);
        return !basicEqual(args[0], args[1], pos);
      case 'not':
        want(1);
        return !truthy(args[0]);
      case 'and': {
        if (args.length < 1) want([1, 99]);
        for (const a of args) if (!truthy(a)) return a;
        return args[args.length - 1];
      }
      case 'or': {
        if (args.length < 1) want([1, 99]);
        for (const a of args) if (truthy(a)) return a;
        return args[args.length - 1];
      }
    }
    return fail(pos, name, `function "${name}" not defined`);
  };

  const basicEqual = (a: unknown, b: unknown, pos: number): boolean => {
    const basic = (v: unknown): boolean => v === null || ['string', 'number', 'boolean'].includes(typeof v);
    if (!basic(a) || !basic(b)) fail(pos, 'eq', 'error calling eq: incompatible types for comparison');
    if (a !== null && b !== null && typeof a !== typeof b) fail(pos, 'eq', 'error calling eq: incompatible types for comparison');
    return a === b;
  };

  const runCmd = (c: Command, s: Scope, piped: { v: unknown } | undefined): unknown => {
    const head = c.args[0]!;
    if (head.k === 'fn') {
      const args = c.args.slice(1).map((a) => argValue(a, s));
      if (piped) args.push(piped.v);
      return call(head.name, args, head.pos);
    }
    if (c.args.length > 1 || piped) {
      const text = head.k === 'field' || head.k === 'var' ? head.text : head.k === 'dot' ? '.' : String((head as { v?: unknown }).v);
      fail(head.pos, text, `can't give argument to non-function ${text}`);
    }
    return argValue(head, s);
  };

  const runPipe = (p: Pipeline, s: Scope): unknown => {
    let piped: { v: unknown } | undefined;
    for (const c of p.cmds) piped = { v: runCmd(c, s, piped) };
    const v = piped?.v;
    if (p.decl.length === 1) s.vars.set(p.decl[0]!, v);
    return v;
  };

  const emit = (text: string): void => {
    out += text;
    if (out.length > MAX_TEMPLATE_OUTPUT)
      throw new ExecError(`template: the output passed ${MAX_TEMPLATE_OUTPUT} characters; narrow the format`);
  };

  let steps = 0;
  const run = (nodes: readonly Node[], s: Scope): void => {
    for (const n of nodes) {
      if (++steps > MAX_TEMPLATE_STEPS)
        throw new ExecError(`template: the execution ran more than ${MAX_TEMPLATE_STEPS} steps; narrow the ranges of the format`);
      switch (n.k) {
        case 'text':
          emit(n.v);
          break;
        case 'action': {
          const v = runPipe(n.pipe, s);
          if (!n.pipe.decl.length) emit(goString(v));
          break;
        }
        case 'if':
        case 'with': {
          const v = runPipe(n.pipe, s);
          const inner: Scope = { dot: n.k === 'with' ? v : s.dot, vars: new Map(s.vars) };
          if (truthy(v)) run(n.body, inner);
          else run(n.else, { dot: s.dot, vars: new Map(s.vars) });
          break;
        }
        case 'range': {
          const decl = n.pipe.decl;
          const v = runPipe({ ...n.pipe, decl: [] }, s);
          let items: Array<[unknown, unknown]>;
          if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
          else if (v instanceof Map) items = [...v.entries()].sort(([a], [b]) => String(a).localeCompare(String(b)));
          else if (isObj(v) && !isStruct(v))
            items = Object.keys(v)
              .sort()
              .map((k) => [k, v[k]]);
          else if (typeof v === 'number' && Number.isInteger(v) && v >= 0)
            items = Array.from({ length: Math.min(v, 1e6) }, (_, i) => [i, i]);
          else if (v === null || v === undefined) items = [];
          else return fail(n.pipe.pos, 'range', `range can't iterate over ${goString(v)}`);
          if (!items.length) {
            run(n.else, { dot: s.dot, vars: new Map(s.vars) });
            break;
          }
          for (const [k, x] of items) {
            const vars = new Map(s.vars);
            if (decl.length === 1) vars.set(decl[0]!, x);
            if (decl.length === 2) {
              vars.set(decl[0]!, k);
              vars.set(decl[1]!, x);
            }
            run(n.body, { dot: x, vars });
          }
          break;
        }
      }
    }
  };

  try {
    run(t.nodes, { dot: data, vars: new Map([['$', data]]) });
  } catch (e) {
    if (e instanceof ExecError) throw new TemplateError(e.message, { field: '--format' });
    throw e;
  }
  return out;
}

/** Parses and runs in one step. */
export const renderTemplate = (source: string, data: unknown): string => executeTemplate(parseTemplate(source), data);
