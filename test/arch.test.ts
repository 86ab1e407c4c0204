// The layering rules of docs/architecture.md, checked on every import of the
// product's sources: which top-level folder may import which, the CLI's one
// lazy path into node/, and no import cycle between folders or modules.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Edge, findCycles, importGraph, parseImports, sourceFiles } from './lib/imports.js';

const root = join(import.meta.dirname, '..');

/** The folders the rules speak of; proto/gen is generated and imports only proto/runtime.ts. */
const FOLDERS = ['agent', 'manager', 'cli', 'lib', 'ca', 'spec', 'node', 'native', 'deploy', 'proto', 'examples'] as const;
type Folder = (typeof FOLDERS)[number];

/** The bottom layer: shared by every side, so it may depend on none of them. */
const SHARED: readonly Folder[] = ['lib', 'ca', 'spec', 'native', 'proto'];

/**
 * What each folder may import besides itself. A folder added to the product
 * must be given a line here (and a paragraph in docs/architecture.md).
 */
const MAY_IMPORT: Record<Folder, readonly Folder[]> = {
  lib: ['proto'],
  native: ['lib'],
  proto: [],
  ca: ['lib', 'proto'],
  spec: ['lib', 'proto'],
  agent: ['lib', 'proto', 'native', 'spec', 'ca'],
  manager: ['lib', 'proto', 'native', 'spec', 'ca'],
  node: ['agent', 'manager', 'lib', 'proto', 'native', 'spec', 'ca'],
  // ca/: `tsswarm ca client-cert` makes its key and CSR where the key stays.
  cli: ['lib', 'proto', 'spec', 'deploy', 'node', 'ca'],
  deploy: ['lib', 'proto', 'agent'],
  examples: ['manager', 'lib', 'proto'],
};

/** The one way from cli/ into node/: the daemon command loads the node's barrel lazily. */
const CLI_TO_NODE = { from: 'cli/cluster.ts', to: 'node/index.ts' };

/**
 * deploy/ (the sandbox and the image builder, development tools) borrows two
 * agent modules: the names of the kernel objects it must clean up after a
 * sandbox, and the tar writer it builds the busybox image with.
 */
const DEPLOY_FROM_AGENT = ['agent/overlay/names.ts', 'agent/runtime/tar.ts'];

const show = (e: Edge): string =>
  `${e.from}:${e.line} imports '${e.spec}' (${e.to}${e.typeOnly ? ', type only' : ''}${e.dynamic ? ', dynamic' : ''})`;

interface Rule {
  title: string;
  breaks(e: Edge): boolean;
}

const RULES: Rule[] = [
  { title: 'agent/ never imports manager/ (they meet only in node/)', breaks: (e) => e.fromTop === 'agent' && e.toTop === 'manager' },
  { title: 'manager/ never imports agent/ (they meet only in node/)', breaks: (e) => e.fromTop === 'manager' && e.toTop === 'agent' },
  {
    title: 'cli/ never imports manager/ (it shares spec/ and the generated client with it)',
    breaks: (e) => e.fromTop === 'cli' && e.toTop === 'manager',
  },
  {
    title: 'cli/ never imports agent/, not even a type (report shapes live in spec/)',
    breaks: (e) => e.fromTop === 'cli' && e.toTop === 'agent',
  },
  {
    title: `cli/ reaches node/ only by the daemon command's dynamic import of ${CLI_TO_NODE.to} in ${CLI_TO_NODE.from}`,
    breaks: (e) => e.fromTop === 'cli' && e.toTop === 'node' && !(e.dynamic && e.from === CLI_TO_NODE.from && e.to === CLI_TO_NODE.to),
  },
  {
    title: 'cli/ never loads lib/grpc.ts (grpc-js): it talks to the daemon with cli/rpc.ts',
    breaks: (e) => e.fromTop === 'cli' && e.to === 'lib/grpc.ts' && !e.typeOnly,
  },
  {
    title: `${SHARED.join('/, ')}/ import nothing of agent/, manager/, cli/, node/`,
    breaks: (e) => SHARED.includes(e.fromTop as Folder) && ['agent', 'manager', 'cli', 'node'].includes(e.toTop),
  },
  {
    title: 'nothing in the product imports examples/ (bench/ and test/ may)',
    breaks: (e) => e.toTop === 'examples' && e.fromTop !== 'examples',
  },
  {
    title: `deploy/ takes from agent/ only ${DEPLOY_FROM_AGENT.join(' and ')}`,
    breaks: (e) => e.fromTop === 'deploy' && e.toTop === 'agent' && !DEPLOY_FROM_AGENT.includes(e.to),
  },
  {
    title: 'every folder imports only the folders its layer allows (MAY_IMPORT)',
    breaks: (e) => e.fromTop !== e.toTop && !((MAY_IMPORT[e.fromTop as Folder] ?? []) as readonly string[]).includes(e.toTop),
  },
];

/** Rule by rule, the imports that break it, as lines a reader can act on. */
function violations(edges: readonly Edge[], rules: readonly Rule[] = RULES): string[] {
  return rules.flatMap((r) => edges.filter((e) => r.breaks(e)).map((e) => `${show(e)}: breaks "${r.title}"`));
}

const files = sourceFiles(root, FOLDERS, ['proto/gen']);
const graph = importGraph(root, files);

/** A made-up import, for checking that the rules catch what they must. */
function edge(from: string, to: string, o: Partial<Edge> = {}): Edge {
  return {
    spec: `../${to.replace(/\.ts$/, '.js')}`,
    typeOnly: false,
    dynamic: false,
    line: 1,
    from,
    to,
    fromTop: from.split('/')[0]!,
    toTop: to.split('/')[0]!,
    ...o,
  };
}

describe('import rules between top-level folders', () => {
  it('reads the sources of every folder the rules speak of', () => {
    expect(files.length).toBeGreaterThan(100);
    for (const f of FOLDERS) {
      expect(
        files.some((p) => p.startsWith(`${f}/`)),
        `no .ts file found under ${f}/`,
      ).toBe(true);
    }
    expect(files.some((p) => p.startsWith('proto/gen/'))).toBe(false);
  });

  it('resolves every relative import to a file', () => {
    expect(graph.unresolved, 'these imports name no file: fix the path or teach test/lib/imports.ts the form').toEqual([]);
  });

  for (const rule of RULES) {
    it(rule.title, () => {
      const broken = graph.edges.filter((e) => rule.breaks(e)).map((e) => `${show(e)}: breaks "${rule.title}"`);
      expect(broken, broken.join('\n')).toEqual([]);
    });
  }

  it('cli/ imports no gRPC library itself (only types), so no command but `daemon` loads one', () => {
    const bad = files
      .filter((f) => f.startsWith('cli/'))
      .flatMap((f) =>
        [...readFileSync(join(root, f), 'utf8').matchAll(/^import\s+(type\s+)?[^;]*?from\s*'(@grpc\/[^']+)'/gm)]
          .filter((m) => !m[1])
          .map((m) => `${f} imports ${m[2]}`),
      );
    expect(bad, bad.join('\n')).toEqual([]);
  });

  it('has no import cycle between top-level folders', () => {
    const cycles = findCycles(graph.edges.filter((e) => e.fromTop !== e.toTop).map((e) => ({ from: e.fromTop, to: e.toTop })));
    const why = cycles.map((c) => {
      const steps = c.slice(1).map((to, i) => graph.edges.find((e) => e.fromTop === c[i] && e.toTop === to)!);
      return `${c.join('/ → ')}/, through:\n${steps.map((s) => `  ${show(s)}`).join('\n')}`;
    });
    expect(why, why.join('\n')).toEqual([]);
  });

  it('has no import cycle between modules, type-only imports included', () => {
    // Allowlist of known cycles: empty since the sandbox's images.ts stopped importing sandbox.ts.
    const allowed: string[][] = [];
    const cycles = findCycles(graph.edges).filter((c) => !allowed.some((a) => a.join() === c.join()));
    expect(
      cycles.map((c) => c.join(' → ')),
      cycles.map((c) => `import cycle: ${c.join(' → ')}`).join('\n'),
    ).toEqual([]);
  });
});

describe('the import checker', () => {
  it('finds static, re-exported, type-only, side-effect and dynamic imports, and skips comments', () => {
    const src = [
      "import { a } from '../agent/a.js';",
      'import type {',
      '  B,',
      "} from '../manager/b.js';",
      "export { c } from './c.js';",
      "export type { D } from '../spec/d.js';",
      "export * from './e.js';",
      "import './side.js';",
      '// import { gone } from "../manager/commented.js";',
      '/* import { gone2 } from "../manager/block.js"; */',
      "const x = `import { t } from '../manager/in-template.js'`;",
      "async function f() { return import('../node/index.js'); }",
    ].join('\n');
    expect(parseImports(src)).toEqual([
      { spec: '../agent/a.js', typeOnly: false, dynamic: false, line: 1 },
      { spec: '../manager/b.js', typeOnly: true, dynamic: false, line: 2 },
      { spec: './c.js', typeOnly: false, dynamic: false, line: 5 },
      { spec: '../spec/d.js', typeOnly: true, dynamic: false, line: 6 },
      { spec: './e.js', typeOnly: false, dynamic: false, line: 7 },
      { spec: './side.js', typeOnly: false, dynamic: false, line: 8 },
      { spec: '../node/index.js', typeOnly: false, dynamic: true, line: 12 },
    ]);
  });

  it('names the import and the rule it breaks', () => {
    expect(violations([edge('agent/x.ts', 'manager/y.ts')])).toEqual([
      `agent/x.ts:1 imports '../manager/y.js' (manager/y.ts): breaks "agent/ never imports manager/ (they meet only in node/)"`,
      `agent/x.ts:1 imports '../manager/y.js' (manager/y.ts): breaks "every folder imports only the folders its layer allows (MAY_IMPORT)"`,
    ]);
  });

  it('refuses a type-only import from cli/ into agent/', () => {
    expect(violations([edge('cli/network.ts', 'agent/dataplane-report.ts', { typeOnly: true })]).join('\n')).toMatch(
      /cli\/ never imports agent\//,
    );
  });

  it("lets cli/ reach node/ only through the daemon command's lazy import", () => {
    expect(violations([edge('cli/cluster.ts', 'node/index.ts', { dynamic: true })])).toEqual([]);
    expect(violations([edge('cli/cluster.ts', 'node/index.ts')]).join('\n')).toMatch(/cli\/ reaches node\/ only by/);
    expect(violations([edge('cli/service.ts', 'node/index.ts', { dynamic: true })]).join('\n')).toMatch(/cli\/ reaches node\/ only by/);
    expect(violations([edge('cli/cluster.ts', 'node/daemon.ts', { dynamic: true })]).join('\n')).toMatch(/cli\/ reaches node\/ only by/);
  });

  it('keeps examples/ out of the product and shared folders off the sides', () => {
    expect(violations([edge('manager/x.ts', 'examples/raftkv/cluster.ts')]).join('\n')).toMatch(
      /nothing in the product imports examples\//,
    );
    expect(violations([edge('spec/x.ts', 'manager/y.ts')]).join('\n')).toMatch(/import nothing of agent\/, manager\/, cli\/, node\//);
    expect(violations([edge('deploy/x.ts', 'agent/runtime/runtime.ts')]).join('\n')).toMatch(/deploy\/ takes from agent\/ only/);
    expect(violations([edge('deploy/x.ts', 'agent/runtime/tar.ts')])).toEqual([]);
    expect(violations([edge('deploy/x.ts', 'agent/overlay/names.ts')])).toEqual([]);
    expect(violations([edge('deploy/x.ts', 'agent/overlay/plane.ts')]).join('\n')).toMatch(/deploy\/ takes from agent\/ only/);
  });

  it('finds a cycle and shows it as a closed path', () => {
    const e = (from: string, to: string): { from: string; to: string } => ({ from, to });
    expect(findCycles([e('a', 'b'), e('b', 'c'), e('c', 'a'), e('c', 'd'), e('d', 'e')])).toEqual([['a', 'b', 'c', 'a']]);
    expect(findCycles([e('a', 'a')])).toEqual([['a', 'a']]);
    expect(findCycles([e('a', 'b'), e('b', 'c'), e('a', 'c')])).toEqual([]);
    expect(findCycles([e('x', 'y'), e('y', 'x'), e('p', 'q'), e('q', 'p')])).toEqual([
      ['p', 'q', 'p'],
      ['x', 'y', 'x'],
    ]);
  });
});
