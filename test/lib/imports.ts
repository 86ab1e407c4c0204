// The import graph of the sources, read with regular expressions (no
// dependency-cruiser or madge to install): each module's relative imports
// resolved to files, their top-level folders, and the cycles between modules.
// test/arch.test.ts checks docs/architecture.md's rules with it.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** One import specifier as written in a module. */
export interface ImportRef {
  spec: string;
  /** `import type …` / `export type … from`: erased when compiled. */
  typeOnly: boolean;
  /** `import('…')`: loaded when the code runs, not when the module loads. */
  dynamic: boolean;
  line: number;
}

/** A relative import resolved to a file of the repository. */
export interface Edge extends ImportRef {
  /** Repository-relative paths, `/`-separated. */
  from: string;
  to: string;
  fromTop: string;
  toTop: string;
}

// Whole-line comments and comment blocks that start a line: a `// see
// import('x')` in prose must not count, while strings such as 'unix://…' stay.
const LINE_COMMENT = /^[ \t]*\/\/.*$/gm;
const BLOCK_COMMENT = /^[ \t]*\/\*[\s\S]*?\*\//gm;
const STATIC_IMPORT = /^[ \t]*import\s+(type\s+)?[^;'"`]*?\s*from\s*['"]([^'"]+)['"]/gm;
const SIDE_EFFECT_IMPORT = /^[ \t]*import\s*['"]([^'"]+)['"]/gm;
const EXPORT_FROM = /^[ \t]*export\s+(type\s+)?(?:\*(?:\s+as\s+\w+)?|\{[^}]*\})\s*from\s*['"]([^'"]+)['"]/gm;
const DYNAMIC_IMPORT = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function blank(src: string, re: RegExp): string {
  // Keep the newlines so line numbers still point at the source.
  return src.replace(re, (m) => m.replace(/[^\n]/g, ' '));
}

/** Every import specifier of a TypeScript source. */
export function parseImports(source: string): ImportRef[] {
  const src = blank(blank(source, BLOCK_COMMENT), LINE_COMMENT);
  const lineOf = (i: number): number => src.slice(0, i).split('\n').length;
  const out: ImportRef[] = [];
  for (const m of src.matchAll(STATIC_IMPORT)) out.push({ spec: m[2]!, typeOnly: !!m[1], dynamic: false, line: lineOf(m.index!) });
  for (const m of src.matchAll(SIDE_EFFECT_IMPORT)) out.push({ spec: m[1]!, typeOnly: false, dynamic: false, line: lineOf(m.index!) });
  for (const m of src.matchAll(EXPORT_FROM)) out.push({ spec: m[2]!, typeOnly: !!m[1], dynamic: false, line: lineOf(m.index!) });
  for (const m of src.matchAll(DYNAMIC_IMPORT)) out.push({ spec: m[1]!, typeOnly: false, dynamic: true, line: lineOf(m.index!) });
  return out.sort((a, b) => a.line - b.line);
}

const topOf = (rel: string): string => rel.split('/')[0]!;
const posix = (p: string): string => p.split(sep).join('/');

/** The file a relative specifier names (`./x.js` is `./x.ts`, a folder its index.ts); undefined when none exists. */
export function resolveSpec(root: string, fromRel: string, spec: string): string | undefined {
  const abs = resolve(root, dirname(fromRel), spec);
  const candidates = [abs.replace(/\.js$/, '.ts'), abs.replace(/\.mjs$/, '.mts'), abs, `${abs}.ts`, join(abs, 'index.ts')];
  const hit = candidates.find((c) => existsSync(c) && statSync(c).isFile());
  return hit === undefined ? undefined : posix(relative(root, hit));
}

/** The .ts files under `folders` (repository-relative), skipping `skip` prefixes. */
export function sourceFiles(root: string, folders: readonly string[], skip: readonly string[] = []): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    if (skip.some((s) => rel === s || rel.startsWith(`${s}/`))) return;
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'node_modules') walk(child);
      } else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        if (!skip.some((s) => child.startsWith(`${s}/`))) out.push(child);
      }
    }
  };
  for (const f of folders) if (existsSync(join(root, f))) walk(f);
  return out.sort();
}

export interface ImportGraph {
  edges: Edge[];
  /** Relative specifiers that name no file: `file:line 'spec'`. */
  unresolved: string[];
}

/** The relative imports of `files`, resolved (package imports are left out). */
export function importGraph(root: string, files: readonly string[]): ImportGraph {
  const edges: Edge[] = [];
  const unresolved: string[] = [];
  for (const from of files) {
    for (const ref of parseImports(readFileSync(join(root, from), 'utf8'))) {
      if (!ref.spec.startsWith('.')) continue;
      const to = resolveSpec(root, from, ref.spec);
      if (to === undefined) unresolved.push(`${from}:${ref.line} '${ref.spec}'`);
      else edges.push({ ...ref, from, to, fromTop: topOf(from), toTop: topOf(to) });
    }
  }
  return { edges, unresolved };
}

/**
 * The cycles of a directed graph, one per strongly connected component with
 * more than one node (or a node importing itself), each as a closed path
 * `a → b → … → a` so a message can show which imports to cut.
 */
export function findCycles(edges: readonly { from: string; to: string }[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    const l = next.get(e.from) ?? [];
    if (!l.includes(e.to)) l.push(e.to);
    next.set(e.from, l);
    if (!next.has(e.to)) next.set(e.to, []);
  }
  for (const l of next.values()) l.sort();
  // Tarjan's algorithm, iterative: the module graph is deep enough to matter for recursion.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const sccs: string[][] = [];
  for (const start of [...next.keys()].sort()) {
    if (idx.has(start)) continue;
    const work: { v: string; i: number }[] = [{ v: start, i: 0 }];
    idx.set(start, index);
    low.set(start, index++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const top = work[work.length - 1]!;
      const succ = next.get(top.v)!;
      if (top.i < succ.length) {
        const w = succ[top.i++]!;
        if (!idx.has(w)) {
          idx.set(w, index);
          low.set(w, index++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.v, Math.min(low.get(top.v)!, idx.get(w)!));
        }
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1]!.v;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.v)!));
      }
      if (low.get(top.v) === idx.get(top.v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== top.v);
        if (scc.length > 1 || next.get(top.v)!.includes(top.v)) sccs.push(scc.sort());
      }
    }
  }
  return sccs.map((scc) => pathThrough(scc, next)).sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** A shortest closed path from the component's first node back to itself, inside the component. */
function pathThrough(scc: string[], next: Map<string, string[]>): string[] {
  const members = new Set(scc);
  const start = scc[0]!;
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of next.get(v)!) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let x: string | undefined = v; x !== undefined && x !== start; x = prev.get(x)) path.splice(1, 0, x);
        return [...path, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}
