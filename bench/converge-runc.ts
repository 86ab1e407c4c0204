// The runc-loop side of the converge benchmark: the floor for starting R
// containers on one host with no orchestrator at all. The busybox image
// (deploy/images/busybox.ts, OCI layout) is unpacked once into a rootfs that
// every container shares read-only (like a shared image layer: nothing is
// copied per container). Each container gets its own bundle (config.json from
// `runc spec`: process `sleep 3600`, terminal false, its own pid, network,
// ipc, uts and mount namespaces, cgroup tss-bench-runc/<id>) written before
// the clock starts. Timed: R sequential `runc run -d` (stdio /dev/null), then
// `runc list` until all R are running. Every container, cgroup and directory
// is removed after each case, pass or fail.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildBusyboxImage } from '../deploy/images/busybox.js';
import type { Report } from './report.js';

const CGROUP_PARENT = 'tss-bench-runc';
const log = (l: string): void => void process.stderr.write(`converge: runc-loop: ${l}\n`);

interface Spec {
  process: { args: string[]; terminal: boolean; cwd: string };
  root: { path: string; readonly: boolean };
  hostname?: string;
  linux: { cgroupsPath?: string; namespaces: { type: string }[] };
}

/** Unpacks the single-layer busybox OCI image into `rootfs`. */
async function unpackBusybox(dir: string, rootfs: string): Promise<void> {
  const tar = join(dir, 'busybox-oci.tar');
  const img = join(dir, 'oci');
  await buildBusyboxImage({ outPath: tar, format: 'oci', tag: 'tsswarm/busybox:latest' });
  mkdirSync(img);
  execFileSync('tar', ['-xf', tar, '-C', img]);
  const blob = (d: string): string => join(img, 'blobs', ...d.split(':'));
  const index = JSON.parse(readFileSync(join(img, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  mkdirSync(rootfs);
  for (const l of manifest.layers) execFileSync('tar', ['-xzf', blob(l.digest), '-C', rootfs]);
  rmSync(img, { recursive: true, force: true });
  rmSync(tar, { force: true });
  if (!existsSync(join(rootfs, 'bin/sleep'))) throw new Error('the unpacked busybox image has no /bin/sleep');
}

/**
 * One runc call. `run -d` hands its stdio to the container, so a pipe there
 * would stay open for the life of `sleep 3600`: it gets /dev/null, and its
 * error goes to runc's --log file, which the thrown error quotes.
 */
function runc(root: string, args: string[], opts: { out?: boolean } = {}): string {
  const logFile = join(root, '..', 'runc.log');
  try {
    return (
      execFileSync('runc', ['--root', root, '--log', logFile, ...args], {
        stdio: ['ignore', opts.out ? 'pipe' : 'ignore', 'ignore'],
        encoding: 'utf8',
        timeout: 60_000,
      }) ?? ''
    );
  } catch (e) {
    let last = '';
    try {
      last = readFileSync(logFile, 'utf8').trim().split('\n').pop() ?? '';
    } catch {
      /* no log */
    }
    throw new Error(`runc ${args.slice(0, 2).join(' ')} ${args[args.length - 1]}: ${last || (e as Error).message.split('\n')[0]}`);
  }
}

function list(root: string): { id: string; status: string }[] {
  if (!existsSync(root)) return [];
  return (JSON.parse(runc(root, ['list', '--format', 'json'], { out: true }) || 'null') as { id: string; status: string }[] | null) ?? [];
}

/** Deletes every container in our runc root (ids tss-bench-*), their bundles and our cgroup directories. */
function cleanup(root: string, dir: string): string[] {
  const problems: string[] = [];
  for (const c of list(root)) {
    if (!c.id.startsWith('tss-bench-')) continue;
    try {
      runc(root, ['delete', '-f', c.id]);
    } catch (e) {
      problems.push(`runc delete -f ${c.id}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (list(root).length > 0) problems.push(`containers left in ${root}`);
  for (const b of readdirSync(dir).filter((n) => n.startsWith('bundle-'))) rmSync(join(dir, b), { recursive: true, force: true });
  // runc removes each container's cgroup; the parent is ours to remove (every hierarchy).
  for (const h of readdirSync('/sys/fs/cgroup')) {
    const d = join('/sys/fs/cgroup', h, CGROUP_PARENT);
    if (!existsSync(d)) continue;
    try {
      execFileSync('find', [d, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';'], { stdio: 'ignore' });
    } catch {
      /* checked below */
    }
    if (existsSync(d)) problems.push(`cgroup ${d} left`);
  }
  return problems;
}

export async function runcLoop(report: Report, rs: number[]): Promise<void> {
  const missing = (why: string): void => {
    for (const r of rs)
      if (!report.figures.some((f) => f.system === 'runc-loop' && f.case === `r${r}`)) report.error('runc-loop', `r${r}`, why);
  };
  try {
    execFileSync('runc', ['--version'], { stdio: 'ignore' });
  } catch {
    return missing('runc is not installed (apt-get install runc)');
  }
  if (process.getuid?.() !== 0) return missing('runc needs root');
  const dir = `/tmp/tss-bench-runc-${process.pid}`;
  const root = join(dir, 'root');
  const rootfs = join(dir, 'rootfs');
  try {
    mkdirSync(dir);
    await unpackBusybox(dir, rootfs);
    execFileSync('runc', ['spec'], { cwd: dir });
    const base = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Spec;
    base.process.args = ['sleep', '3600'];
    base.process.terminal = false;
    base.root = { path: rootfs, readonly: true };
    if (!base.linux.namespaces.some((n) => n.type === 'network')) base.linux.namespaces.push({ type: 'network' });
    for (const r of rs) {
      const ids = Array.from({ length: r }, (_, i) => `tss-bench-r${r}-${i}`);
      try {
        for (const id of ids) {
          mkdirSync(join(dir, `bundle-${id}`));
          writeFileSync(
            join(dir, `bundle-${id}`, 'config.json'),
            JSON.stringify({ ...base, hostname: id, linux: { ...base.linux, cgroupsPath: `/${CGROUP_PARENT}/${id}` } }),
          );
        }
        const t0 = performance.now();
        for (const id of ids) runc(root, ['run', '-d', '--bundle', join(dir, `bundle-${id}`), id]);
        let running = 0;
        for (let i = 0; ; i++) {
          const want = new Set(ids);
          running = list(root).filter((c) => want.has(c.id) && c.status === 'running').length;
          if (running === r || i >= 100) break;
        }
        const s = (performance.now() - t0) / 1000;
        if (running !== r) throw new Error(`${running}/${r} running after the loop`);
        report.add('runc-loop', `r${r}`, 'seconds', s, 's');
        log(`r${r}: ${s.toFixed(2)} s (${((s * 1000) / r).toFixed(1)} ms per container)`);
      } catch (e) {
        report.error('runc-loop', `r${r}`, (e as Error).message.split('\n')[0]!.slice(0, 300));
      } finally {
        const problems = cleanup(root, dir);
        // A case that leaves runc state behind must stop the run, whatever the case itself did.
        // biome-ignore lint/correctness/noUnsafeFinally: intended
        if (problems.length > 0) throw new Error(`cleanup after r${r}: ${problems.join('; ')}`);
      }
    }
  } catch (e) {
    log(`failed: ${(e as Error).message}`);
    missing((e as Error).message.split('\n')[0]!.slice(0, 300));
  } finally {
    try {
      const problems = cleanup(root, dir);
      if (problems.length > 0) log(`WARNING: ${problems.join('; ')}`);
      else rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      log(`WARNING: cleanup failed: ${(e as Error).message}`);
    }
  }
}
