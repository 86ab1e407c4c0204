// `npm run build` for real: the bundle runs on its own (no tsx), prints the
// version without loading gRPC (commands load their modules lazily), serves
// help for a lazily loaded command, and reaches the daemon without grpc-js
// (cli/rpc.ts): only `tsswarm daemon` loads it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Inside the checkout, so the bundle's packages (kept external) resolve from node_modules.
const out = mkdtempSync(join(process.cwd(), '.tmp-tss-build-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

// Run from an empty directory: a command must not leave files where it runs (a bundled module
// that ran its own script main once wrote an image tarball named after the first argument).
const cwd = mkdtempSync(join(tmpdir(), 'tss-build-cwd-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));
const run = (args: string[], nodeArgs: string[] = []) =>
  spawnSync(process.execPath, [...nodeArgs, join(out, 'tsswarm.mjs'), ...args], { cwd, encoding: 'utf8', timeout: 20_000 });

// A module hook that names every file URL the command imports (one line each on stderr).
const hooks = join(cwd, '..', `tss-build-hooks-${process.pid}.mjs`);
writeFileSync(
  hooks,
  `import { writeSync } from 'node:fs';
export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); if (r.url.startsWith('file:')) writeSync(2, 'IMPORT ' + r.url + '\\n'); return r; }`,
);
const register = join(cwd, '..', `tss-build-register-${process.pid}.mjs`);
writeFileSync(register, `import { register } from 'node:module'; register(${JSON.stringify(`file://${hooks}`)});`);
afterAll(() => {
  rmSync(hooks, { force: true });
  rmSync(register, { force: true });
});

/** The chunks a command imported, by file name. */
function imported(stderr: string): string[] {
  return [...stderr.matchAll(/^IMPORT file:\/\/(.*)$/gm)]
    .map((m) => m[1]!)
    .filter((f) => f.startsWith(out))
    .map((f) => f.slice(out.length + 1));
}

/** The output files whose inputs include grpc-js, from the build's metafile. */
function grpcChunks(): string[] {
  const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  return Object.entries(meta.outputs)
    .filter(([, o]) => Object.keys(o.inputs).some((i) => i.includes('@grpc/grpc-js')))
    .map(([f]) => f.slice(f.indexOf('chunks/') >= 0 ? f.indexOf('chunks/') : f.lastIndexOf('/') + 1));
}

interface Meta {
  outputs: Record<string, { imports: { path: string; kind: string; external?: boolean }[]; inputs: Record<string, unknown> }>;
}

/**
 * What loading the chunk that holds `source` brings in: that chunk and every
 * chunk it imports statically, their sources, and the chunks they leave to a
 * dynamic import (loaded on first use).
 */
function loadedWith(source: string): { sources: string[]; lazy: Map<string, string[]> } {
  const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as Meta;
  const start = Object.keys(meta.outputs).find((f) => f.endsWith('.mjs') && source in meta.outputs[f]!.inputs);
  expect(start, `no chunk holds ${source}`).toBeDefined();
  const seen = new Set<string>();
  const lazy = new Map<string, string[]>();
  const walk = (f: string): void => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const i of meta.outputs[f]!.imports) {
      if (i.external || !meta.outputs[i.path]) continue;
      if (i.kind === 'import-statement') walk(i.path);
      else if (i.kind === 'dynamic-import') lazy.set(i.path, Object.keys(meta.outputs[i.path]!.inputs));
    }
  };
  walk(start!);
  for (const f of seen) lazy.delete(f);
  return { sources: [...seen].flatMap((f) => Object.keys(meta.outputs[f]!.inputs)), lazy };
}

describe('the build', () => {
  beforeAll(() => {
    const r = spawnSync(process.execPath, ['scripts/build.mjs', '--outdir', out], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
  }, 60_000);

  it('is one entry and a chunk per lazily loaded module', () => {
    expect(existsSync(join(out, 'tsswarm.mjs'))).toBe(true);
    expect(readdirSync(join(out, 'chunks')).filter((f) => f.endsWith('.mjs')).length).toBeGreaterThan(5);
  });

  it('prints the version without loading gRPC', () => {
    const grpc = grpcChunks();
    expect(grpc.length).toBeGreaterThan(0);
    const r = run(['version'], ['--import', register]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^tsswarm version \d+\.\d+\.\d+\n/);
    const loaded = imported(r.stderr);
    expect(loaded).toContain('tsswarm.mjs');
    expect(loaded.filter((f) => grpc.includes(f))).toEqual([]);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('loads a command module when the command runs: help for `service` loads it, and no gRPC library', () => {
    const r = run(['service', '--help'], ['--import', register]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage:  tsswarm service [OPTIONS] COMMAND');
    const loaded = imported(r.stderr);
    expect(loaded.some((f) => /^chunks\/service-/.test(f))).toBe(true);
    expect(loaded.filter((f) => grpcChunks().includes(f))).toEqual([]);
  });

  it('loads the yaml package only for `stack`: not at start, not for `service`', () => {
    const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as Meta;
    const yamlChunks = Object.entries(meta.outputs)
      .filter(([, o]) => Object.keys(o.inputs).some((i) => i.includes('node_modules/yaml/')))
      .map(([f]) => f.slice(f.indexOf('chunks/') >= 0 ? f.indexOf('chunks/') : f.lastIndexOf('/') + 1));
    expect(yamlChunks.length).toBeGreaterThan(0);
    expect(loadedWith('cli/main.ts').sources.filter((s) => s.includes('node_modules/yaml/'))).toEqual([]);
    expect(loadedWith('cli/stack.ts').sources.some((s) => s.includes('node_modules/yaml/'))).toBe(true);
    const r = run(['service', '--help'], ['--import', register]);
    expect(r.status, r.stderr).toBe(0);
    expect(imported(r.stderr).filter((f) => yamlChunks.includes(f))).toEqual([]);
  });

  it('talks to the daemon with its own client: `node ls` loads no grpc-js, and a missing daemon is named', () => {
    const sock = join(cwd, 'no-daemon.sock');
    const r = run(['-H', `unix://${sock}`, 'node', 'ls'], ['--import', register]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`Cannot connect to the tsswarm daemon at unix://${sock}`);
    expect(imported(r.stderr).filter((f) => grpcChunks().includes(f))).toEqual([]);
  });

  it("keeps what a worker does not use at start out of the daemon's start path, each loaded on first use", () => {
    // The manager (managers only), the metrics (--metrics-addr only) and the data-plane report
    // (`network inspect --dataplane`) are chunks of their own behind a dynamic import.
    const { sources, lazy } = loadedWith('node/run.ts');
    const lazySources = [...lazy.values()].flat();
    for (const s of ['manager/manager.ts', 'lib/metrics.ts', 'agent/dataplane-report.ts']) {
      expect(sources, `${s} is loaded when the daemon starts`).not.toContain(s);
      expect(lazySources, `${s} is not left to a dynamic import of the daemon`).toContain(s);
    }
    expect(sources.filter((s) => s.includes('node_modules/prom-client/'))).toEqual([]);
    // grpc-js requires @grpc/proto-loader only to serve channelz or ORCA: it stays in node_modules.
    const meta = JSON.parse(readFileSync(join(out, 'meta.json'), 'utf8')) as Meta;
    const withProtoLoader = Object.entries(meta.outputs).filter(([, o]) =>
      Object.keys(o.inputs).some((i) => i.includes('@grpc/proto-loader')),
    );
    expect(withProtoLoader.map(([f]) => f)).toEqual([]);
  });

  it('refuses an unknown command with the list of known ones', () => {
    const r = run(['servce']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown command "servce".*Did you mean "service"\?/);
  });
});
