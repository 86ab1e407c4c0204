// cli/main.ts: the top-level verbs, help, errors for unknown commands, and the
// bin/tsswarm.mjs launcher running under plain node.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { group, leaf, type Io } from '../../cli/command.js';
import { main } from '../../cli/main.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${repo}/package.json`, 'utf8')) as { version: string };

function capture(): Io & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    out: () => out,
    err: () => err,
  };
}

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = capture();
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('tsswarm', () => {
  it('version prints the package.json version', async () => {
    const r = await run('version');
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toBe(`tsswarm version ${pkg.version}\nnode ${process.version} (${process.platform}/${process.arch})\n`);
  });

  it('version --format json prints one JSON object', async () => {
    const r = await run('version', '--format', 'json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ version: pkg.version, node: process.version, platform: process.platform, arch: process.arch });
  });

  it('version with a bad --format names the flag and the accepted values', async () => {
    expect(await run('version', '--format=yaml')).toEqual({
      code: 1,
      out: '',
      err: 'tsswarm: --format must be one of text, json (got "yaml")\n',
    });
  });

  it('-v and --version print the version line', async () => {
    expect((await run('-v')).out).toBe(`tsswarm version ${pkg.version}\n`);
    expect((await run('--version')).out).toBe(`tsswarm version ${pkg.version}\n`);
  });

  it('no arguments, --help and help all print the list of commands', async () => {
    const plain = await run();
    expect(plain.code).toBe(0);
    expect(plain.out).toMatch(/^Usage: {2}tsswarm \[OPTIONS\] COMMAND\n/);
    expect(plain.out).toMatch(/^ {2}version +Show the tsswarm version information$/m);
    // The Raft example runs with `npm run demo`, not from the product's command.
    expect(plain.out).not.toMatch(/raft-demo/);
    expect((await run('--help')).out).toBe(plain.out);
    expect((await run('help')).out).toBe(plain.out);
  });

  it("help COMMAND and COMMAND --help print that command's usage", async () => {
    const a = await run('help', 'version');
    expect(a.out).toMatch(/^Usage: {2}tsswarm version \[OPTIONS\]\n/);
    expect(a.out).toContain('-f, --format FORMAT');
    expect((await run('version', '--help')).out).toBe(a.out);
    expect((await run('version', '-h')).out).toBe(a.out);
  });

  it('an unknown command is exit code 1 with a message naming it and listing the known commands', async () => {
    const r = await run('verson');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(
      'tsswarm: unknown command "verson" for "tsswarm"; known commands: ca, config, daemon, help, image, info, init, join, join-token, leave, login, logout, network, node, sandbox, secret, service, stack, swarm, unlock, unlock-key, version. Did you mean "version"? Run \'tsswarm --help\' for usage.\n',
    );
    expect((await run('help', 'nope')).err).toMatch(
      /^tsswarm: unknown command "nope" for "tsswarm"; known commands: ca, config, daemon, help, image, info, init, join, join-token, leave, login, logout, network, node, sandbox, secret, service, stack, swarm, unlock, unlock-key, version\./,
    );
  });

  it('an unknown flag of a command is exit code 1 naming the flag', async () => {
    const r = await run('version', '--frmat', 'json');
    expect(r.code).toBe(1);
    expect(r.err).toBe('tsswarm: unknown flag --frmat for "tsswarm version"; known flags: --format, --help. Did you mean --format?\n');
  });

  it('a group passes errors from its commands up unchanged, for main to report', async () => {
    const root = group({
      name: 'x',
      summary: 'test',
      subcommands: () => [leaf({ name: 'boom', summary: 'throws', flags: {}, run: () => Promise.reject(new Error('kaput')) })],
    });
    await expect(root.run(['boom'], capture(), 'x')).rejects.toThrow('kaput');
  });
});

describe('command groups', () => {
  const calls: string[] = [];
  const node = group({
    name: 'node',
    summary: 'Manage nodes',
    subcommands: () => [
      leaf({
        name: 'ls',
        summary: 'List nodes',
        flags: { quiet: { type: 'boolean', short: 'q', description: 'Only IDs' } },
        async run({ flags, path }) {
          calls.push(`${path} quiet=${flags.quiet}`);
          return 0;
        },
      }),
    ],
  });
  const root = group({ name: 'tsswarm', summary: 'test', subcommands: () => [node] });

  it('dispatch through a group reaches the leaf with its own flags and full path', async () => {
    expect(await root.run(['node', 'ls', '-q'], capture(), 'tsswarm')).toBe(0);
    expect(calls).toEqual(['tsswarm node ls quiet=true']);
  });

  it('an unknown subcommand names the group it was looked up in', async () => {
    await expect(root.run(['node', 'rm'], capture(), 'tsswarm')).rejects.toThrow(
      'unknown command "rm" for "tsswarm node"; known commands: ls.',
    );
  });
});

describe('bin/tsswarm.mjs', () => {
  it('runs under plain node with no build step', () => {
    const r = spawnSync(process.execPath, [`${repo}/bin/tsswarm.mjs`, 'version', '--format', 'json'], {
      encoding: 'utf8',
      cwd: '/',
      timeout: 30_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ version: pkg.version });
  });

  it('exits 1 on an unknown command', () => {
    const r = spawnSync(process.execPath, [`${repo}/bin/tsswarm.mjs`, 'bogus'], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^tsswarm: unknown command "bogus"/);
  });
});
