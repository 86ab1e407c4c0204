// Cleaning up after failures on the real kernel: `down` from a fresh Sandbox
// after the process that ran `up` was killed (with its state file whole, with
// its pids lost, with no state file at all), `up` failing half-way, and `up`
// refusing a prefix whose namespaces are still there.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Sandbox } from '../../../deploy/sandbox/index.js';
import { fakeDaemonCommand, forceCleanup, kernelBlocker, leftovers, testNames, type TestNames } from './helpers.js';
import { until as waitUntil } from '../../lib/wait.js';

const blocker = kernelBlocker();
const repo = fileURLToPath(new URL('../../..', import.meta.url));
const crashUp = fileURLToPath(new URL('./fixtures/crash-up.ts', import.meta.url));

/** Runs `up` in a child process, waits for its daemons, then SIGKILLs it. Returns the daemons' pids. */
async function upThenCrash(names: TestNames): Promise<number[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', crashUp, names.root, names.prefix], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const ready = (): boolean => {
    if (child.exitCode !== null) throw new Error(`crash-up.ts exited before it was ready: ${err}`);
    return out.includes('READY');
  };
  await waitUntil('crash-up.ts to print READY', ready, { timeoutMs: 30_000, everyMs: 50 }).catch((e: Error) => {
    child.kill('SIGKILL');
    throw new Error(`crash-up.ts did not get ready: ${e.message}; stderr: ${err}`);
  });
  child.kill('SIGKILL');
  await exited;
  const state = JSON.parse(readFileSync(`${names.root}/state.json`, 'utf8')) as { hosts: { daemon: { pid: number } }[] };
  return state.hosts.map((h) => h.daemon.pid);
}

describe.skipIf(blocker !== '')(`sandbox cleanup after failures${blocker ? ` (skipped: ${blocker})` : ''}`, () => {
  const made: TestNames[] = [];
  const names = (tag: string): TestNames => {
    const n = testNames(tag);
    made.push(n);
    return n;
  };

  afterEach(() => {
    for (const n of made.splice(0)) forceCleanup(n);
  });

  it('down from a fresh Sandbox after the up process was killed stops its daemons and removes everything', async () => {
    const n = names('crash');
    const pids = await upThenCrash(n);
    // The daemons outlived the killed CLI: they run detached in their own sessions.
    expect(leftovers(n).processes.sort()).toEqual([...pids].sort());
    expect(leftovers(n).namespaces.sort()).toEqual([`${n.prefix}h1`, `${n.prefix}h2`, `${n.prefix}ul`]);

    const r = await new Sandbox({ root: n.root }).down();
    expect(r).toMatchObject({ existed: true, processes: 2 });
    expect(leftovers(n)).toEqual({ namespaces: [], processes: [], rootExists: false });
  });

  it('down finds daemons by their network namespace when state.json lost their pids', async () => {
    const n = names('nopid');
    const pids = await upThenCrash(n);
    const file = `${n.root}/state.json`;
    const state = JSON.parse(readFileSync(file, 'utf8')) as { hosts: { daemon: { pid: number | null; startTime: string | null } }[] };
    for (const h of state.hosts) Object.assign(h.daemon, { pid: null, startTime: null });
    writeFileSync(file, JSON.stringify(state));
    expect(leftovers(n).processes.sort()).toEqual([...pids].sort());

    const r = await new Sandbox({ root: n.root, stopTimeoutMs: 1000 }).down();
    expect(r).toMatchObject({ existed: true, processes: 2 });
    expect(leftovers(n)).toEqual({ namespaces: [], processes: [], rootExists: false });
  });

  it('down without a state file removes the namespaces of its prefix and the processes in them', async () => {
    const n = names('nostate');
    await upThenCrash(n);
    execFileSync('rm', ['-f', `${n.root}/state.json`]);
    const r = await new Sandbox({ root: n.root, prefix: n.prefix }).down();
    expect(r.namespaces.sort()).toEqual([`${n.prefix}h1`, `${n.prefix}h2`, `${n.prefix}ul`]);
    expect(leftovers(n)).toEqual({ namespaces: [], processes: [], rootExists: false });
  });

  it('up whose daemon exits at once fails naming the host and quoting its log, and removes what it made', async () => {
    const n = names('fail');
    const sb = new Sandbox({
      root: n.root,
      prefix: n.prefix,
      daemonCommand: (h) => ({ argv: [process.execPath, '-e', `console.error('fake: bad flag --x for ${h.name}'); process.exit(3)`] }),
    });
    const err = await sb.up({ managers: 1, workers: 1 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(new RegExp(`^the daemon of ${n.prefix}h\\d exited before creating its socket`));
    expect(err?.message).toMatch(new RegExp(`\\| fake: bad flag --x for ${n.prefix}h\\d`));
    expect(leftovers(n)).toEqual({ namespaces: [], processes: [], rootExists: false });
  });

  it('up whose daemon never creates its socket times out quoting the log, and removes what it made', async () => {
    const n = names('slow');
    const sb = new Sandbox({
      root: n.root,
      prefix: n.prefix,
      readyTimeoutMs: 500,
      // The directory as an argument only so that leftovers() can find the process.
      daemonCommand: () => ({
        argv: [process.execPath, '-e', 'console.log("still loading", process.env.TSSWARM_HOST); setTimeout(() => {}, 60_000)', n.root],
      }),
    });
    const err = await sb.up({ managers: 1, workers: 0 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(
      new RegExp(`^the daemon of ${n.prefix}h1 \\(pid \\d+\\) did not create its socket ${n.root}/${n.prefix}h1/tsswarm.sock within 0.5 s`),
    );
    expect(err?.message).toContain(`| still loading unix://${n.root}/${n.prefix}h1/tsswarm.sock`);
    expect(leftovers(n)).toEqual({ namespaces: [], processes: [], rootExists: false });
  });

  it('up refuses while namespaces of its prefix are left over, and down then removes a half-made sandbox', async () => {
    const n = names('half');
    execFileSync('ip', ['netns', 'add', `${n.prefix}ul`]);
    execFileSync('ip', ['netns', 'add', `${n.prefix}h2`]);
    const sb = new Sandbox({ root: n.root, prefix: n.prefix, daemonCommand: fakeDaemonCommand() });
    await expect(sb.up({ managers: 1, workers: 0 })).rejects.toThrow(
      `a sandbox already exists (namespaces ${n.prefix}h2, ${n.prefix}ul): run \`TSSWARM_SANDBOX_DIR=${n.root} tsswarm sandbox down\` first`,
    );
    expect(await sb.down()).toEqual({ existed: true, namespaces: [`${n.prefix}h2`, `${n.prefix}ul`], processes: 0 });
    expect(leftovers(n)).toEqual({ namespaces: [], processes: [], rootExists: false });
  });

  it('down with nothing there succeeds and says nothing existed', async () => {
    const n = names('none');
    expect(await new Sandbox({ root: n.root, prefix: n.prefix }).down()).toEqual({ existed: false, namespaces: [], processes: 0 });
  });
});
