// `tsswarm sandbox ...` (cli/sandbox.ts) on the real kernel, with the stand-in
// daemon and a test directory and prefix given through the environment the
// command reads (TSSWARM_SANDBOX_DIR, TSSWARM_SANDBOX_PREFIX). Help and flag
// checks that need no root are in cli.test.ts.
import { afterAll, describe, expect, it } from 'vitest';
import type { Io } from '../../../cli/command.js';
import { makeSandboxCommand } from '../../../cli/sandbox.js';
import { Sandbox } from '../../../deploy/sandbox/index.js';
import { connect, fakeDaemonCommand, forceCleanup, kernelBlocker, leftovers, testNames } from './helpers.js';

const blocker = kernelBlocker();

function capture(): Io & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, out: () => out, err: () => err };
}

describe.skipIf(blocker !== '')(`tsswarm sandbox on the real kernel${blocker ? ` (skipped: ${blocker})` : ''}`, () => {
  const names = testNames('cli');
  const env = { ...process.env, TSSWARM_SANDBOX_DIR: names.root, TSSWARM_SANDBOX_PREFIX: names.prefix };
  const cmd = makeSandboxCommand({ env, daemonCommand: fakeDaemonCommand() });
  const sb = new Sandbox({ root: names.root });
  const h = (n: number): string => `${names.prefix}h${n}`;

  async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const io = capture();
    const code = await cmd.run(argv, io, 'tsswarm sandbox');
    return { code, out: io.out(), err: io.err() };
  }

  afterAll(async () => {
    try {
      await sb.down();
    } finally {
      forceCleanup(names);
    }
  });

  it('ls without a sandbox prints only the header', async () => {
    expect(await run('ls')).toEqual({ code: 0, out: 'HOST   ROLE   ADDRESS   DAEMON   PID   NETWORK\n', err: '' });
  });

  it('up --managers 2 --workers 1 makes three hosts, reports progress on stderr and prints the host table', async () => {
    const r = await run('up', '--managers', '2', '--workers', '1');
    expect(r.code).toBe(0);
    expect(r.err).toContain(`Starting the daemon of ${h(1)} (manager, 10.77.0.11)`);
    expect(r.err).toContain(`TSSWARM_SANDBOX_DIR=${names.root} tsswarm sandbox exec h1 -- tsswarm node ls`);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^HOST\s+ROLE\s+ADDRESS\s+DAEMON\s+PID\s+NETWORK$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).filter((_, i) => i !== 4))).toEqual([
      [h(1), 'manager', '10.77.0.11', 'running', 'connected'],
      [h(2), 'manager', '10.77.0.12', 'running', 'connected'],
      [h(3), 'worker', '10.77.0.13', 'running', 'connected'],
    ]);
    expect(await connect(sb, 'h1', 'h3')).toBe(h(3));
  });

  it('up again fails with the instruction to run sandbox down first', async () => {
    await expect(run('up')).rejects.toThrow(`run \`TSSWARM_SANDBOX_DIR=${names.root} tsswarm sandbox down\` first`);
  });

  it('ls --format json gives each host with its pid and state', async () => {
    const hosts = JSON.parse((await run('ls', '--format', 'json')).out) as { name: string; pid: number; running: boolean; cut: boolean }[];
    expect(hosts.map((x) => [x.name, x.running, x.cut, typeof x.pid])).toEqual([
      [h(1), true, false, 'number'],
      [h(2), true, false, 'number'],
      [h(3), true, false, 'number'],
    ]);
  });

  it('stop, start, cut and heal take a host as h2, the full name or 2 and print its name', async () => {
    expect(await run('stop', 'h2', '--kill')).toEqual({ code: 0, out: `${h(2)}\n`, err: '' });
    expect((await run('ls')).out).toMatch(new RegExp(`^${h(2)}\\s+manager\\s+10\\.77\\.0\\.12\\s+stopped\\s+-\\s+connected$`, 'm'));
    expect(await run('stop', '2')).toEqual({ code: 0, out: `${h(2)}\n`, err: `the daemon of ${h(2)} was not running\n` });
    expect(await run('start', h(2))).toEqual({ code: 0, out: `${h(2)}\n`, err: '' });
    expect(await connect(sb, 'h1', 'h2')).toBe(h(2));

    expect(await run('cut', 'h3')).toEqual({ code: 0, out: `${h(3)}\n`, err: '' });
    expect((await run('ls')).out).toMatch(new RegExp(`^${h(3)}\\s+worker\\s+10\\.77\\.0\\.13\\s+running\\s+\\d+\\s+cut$`, 'm'));
    expect(await connect(sb, 'h1', 'h3', 1000)).toBe('unreachable: timeout');
    expect(await run('heal', '3')).toEqual({ code: 0, out: `${h(3)}\n`, err: '' });
    expect(await connect(sb, 'h1', 'h3')).toBe(h(3));
  });

  it('a verb needs exactly one known host', async () => {
    await expect(run('stop')).rejects.toThrow('"tsswarm sandbox stop" needs exactly one host, as h2, tss-h2 or 2 (got none)');
    await expect(run('cut', 'h7')).rejects.toThrow(`no sandbox host "h7": the sandbox has ${h(1)}, ${h(2)}, ${h(3)}`);
  });

  it('exec runs the command in the host and returns its exit code, with or without --', async () => {
    expect((await run('exec', 'h1', '--', 'sh', '-c', 'test "$TSSWARM_HOST" = "unix://$0" && exit 5', sb.host('h1').socketPath)).code).toBe(
      5,
    );
    expect((await run('exec', 'h2', 'sh', '-c', 'ip -4 -o addr show eth0 | grep -q 10.77.0.12')).code).toBe(0);
    await expect(run('exec', 'h2')).rejects.toThrow('exec needs a command');
  });

  it('down removes everything and says so; a second down finds nothing', async () => {
    const r = await run('down');
    expect(r).toMatchObject({ code: 0, out: `Removed the sandbox at ${names.root}: 4 namespaces, 3 processes stopped\n` });
    expect(leftovers(names)).toEqual({ namespaces: [], processes: [], rootExists: false });
    expect((await run('down')).out).toBe(`No sandbox at ${names.root}; nothing to remove\n`);
  });
});
