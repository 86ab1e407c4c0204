// Secrets and configs end to end on a sandbox of real daemons (3 managers, 2
// workers): created through a follower (forwarded to the leader over mTLS),
// read on another manager without the value, referenced by a service pinned
// to one worker, whose container reads them (owner, mode, read-only tmpfs),
// removal refused while it is used, the rotation recipe (the new value at the
// same file), the other nodes never receiving them, nothing of the value in
// any file of any host's state directory (the managers' Raft WAL and snapshots
// hold them sealed), and no daemon's log holding it.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { filesHolding } from '../files-holding.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { canRunSandbox, joinByCli, until, tsswarmOn } from './helpers.js';

const sb = new Sandbox({
  root: `/tmp/tss-e2esec-${process.pid}`,
  prefix: `tss-k${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '2000'] };
  },
});

const { ts, ok } = tsswarmOn(sb, 60_000);
const files = mkdtempSync(join(tmpdir(), 'tss-e2esec-files-'));
const VALUE = `tss-secret-value-${process.pid}-${Date.now()}`;
const CONF = `x=tss-config-value-${process.pid}-${Date.now()}`;

/** The secrets-and-configs tmpfs mounts (agent/runtime/files.ts) under a host's state directory. */
const filesMounts = (stateDir: string): string[] =>
  readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[1]?.startsWith(`${stateDir}/`) && f[1].endsWith('/files'))
    .map((f) => `${f[1]} ${f[2]} ${f[3]}`);

describe.skipIf(!canRunSandbox)('secrets and configs on real daemons', () => {
  let h: string[] = [];
  beforeAll(async () => {
    await sb.up({ managers: 3, workers: 2, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    h = sb.hosts().map((x) => x.name);
  }, 180_000);
  afterAll(async () => {
    await sb.down();
    rmSync(files, { recursive: true, force: true });
  }, 60_000);

  it('create on a follower, read on another manager without the value; bad inputs refused; the container reads it; rm refused while used; rotation; only its node receives it; never on any disk, never logged', async () => {
    // Snapshots every few entries: the values must reach snapshot files as well as WAL records, and be sealed in both.
    await ok(h[0]!, 'swarm', 'update', '--snapshot-interval', '5');
    const pw = join(files, 'pw');
    writeFileSync(pw, VALUE);
    const id = (await ok(h[1]!, 'secret', 'create', '--label', 'env=e2e', 'db_pw', pw)).trim();
    expect(id).toMatch(/^\w{25}$/);
    expect(await ok(h[2]!, 'secret', 'ls')).toMatch(new RegExp(`${id}\\s+db_pw\\s+`));
    const [inspected] = JSON.parse(await ok(h[2]!, 'secret', 'inspect', 'db_pw'));
    expect(inspected).toMatchObject({ ID: id, Spec: { Name: 'db_pw', Labels: { env: 'e2e' } } });
    expect(inspected.Spec.Data).toBeUndefined();

    const dup = await ts(h[2]!, 'secret', 'create', 'db_pw', pw);
    expect(dup.code).toBe(1);
    expect(dup.err).toMatch(/spec.name: secret db_pw already exists/);
    const big = join(files, 'big');
    writeFileSync(big, Buffer.alloc(600 * 1024, 7));
    expect((await ts(h[0]!, 'secret', 'create', 'big', big)).err).toMatch(
      /spec.data is 614400 bytes: a secret must be smaller than 500 KiB/,
    );

    const conf = join(files, 'app.conf');
    writeFileSync(conf, `${CONF}\n`);
    await ok(h[1]!, 'config', 'create', 'app.conf', conf);
    expect((await ts(h[2]!, 'service', 'create', '-d', '--name', 'bad', '--secret', 'nope', SANDBOX_IMAGE)).err).toMatch(
      /spec.task.container.secrets\[0\] \(--secret nope\): secret nope not found/,
    );
    const c = await ts(
      h[2]!,
      'service',
      'create',
      '-d',
      '--name',
      'web',
      '--secret',
      'source=db_pw,uid=33,gid=34,mode=0400',
      '--config',
      'source=app.conf,target=/etc/app.conf',
      // One worker only: the other worker and the managers run no task that uses them.
      '--constraint',
      `node.hostname==${h[3]}`,
      SANDBOX_IMAGE,
      'sleep',
      '1d',
    );
    expect(c.code).toBe(0);
    expect(c.err).not.toMatch(/WARNING: secrets and configs/);
    expect(await ok(h[0]!, 'service', 'inspect', '--pretty', 'web')).toMatch(/Secrets:\n Target:\tdb_pw\n {2}Source:\tdb_pw/);

    // The container reads them: the secret at /run/secrets/db_pw with its owner and mode, on a read-only tmpfs.
    const inContainer = (script: string): Promise<string> => ok(h[0]!, 'service', 'exec', '--slot', '1', 'web', '--', 'sh', '-c', script);
    const read = `cat /run/secrets/db_pw; echo; stat -c '%a %u %g' /run/secrets/db_pw; grep ' /run/secrets/db_pw ' /proc/mounts; cat /etc/app.conf`;
    const seen = await until<string>('the task running with its secret', () => inContainer(read), 90_000, 500).catch(async (e: Error) => {
      const ps = await ts(h[0]!, 'service', 'ps', '--no-trunc', 'web');
      const tail = readFileSync(sb.hosts().find((x) => x.name === h[3])!.logFile, 'utf8')
        .split('\n')
        .slice(-40)
        .join('\n');
      throw new Error(`${e.message}\nservice ps:\n${ps.out}${ps.err}\n${h[3]}'s log:\n${tail}`);
    });
    const [got, perms, mount, confText] = seen.split('\n');
    expect(got).toBe(VALUE);
    expect(perms).toBe('400 33 34');
    expect(mount!.split(' ')[2]).toBe('tmpfs');
    expect(mount!.split(' ')[3]!.split(',')).toContain('ro');
    expect(confText).toBe(CONF);
    const host = (name: string) => sb.hosts().find((x) => x.name === name)!;
    expect(filesMounts(host(h[3]!).stateDir)).toHaveLength(1);

    const rm = await ts(h[1]!, 'secret', 'rm', 'db_pw');
    expect(rm.code).toBe(1);
    expect(rm.err).toMatch(/secret 'db_pw' is in use by the following service: web/);
    expect(await ok(h[0]!, 'secret', 'ls', '-q')).toContain(id);

    writeFileSync(pw, `${VALUE}.v2`);
    const v2 = (await ok(h[1]!, 'secret', 'create', 'db_pw.v2', pw)).trim();
    await ok(h[2]!, 'service', 'update', '-d', '--secret-rm', 'db_pw', '--secret-add', 'source=db_pw.v2,target=db_pw', 'web');
    await ok(h[1]!, 'secret', 'rm', 'db_pw');
    expect(await ok(h[0]!, 'secret', 'ls')).not.toMatch(/db_pw\s/);
    // The rolled task reads the new value at the same file; the old task's tmpfs went with it.
    await until(
      'the new value at /run/secrets/db_pw',
      async () => (await inContainer('cat /run/secrets/db_pw').catch(() => '')) === `${VALUE}.v2`,
      90_000,
      500,
    );
    await until('one tmpfs left on the worker', async () => filesMounts(host(h[3]!).stateDir).length === 1, 30_000, 300);
    for (const x of sb.hosts()) if (x.name !== h[3]) expect(filesMounts(x.stateDir), x.name).toEqual([]);

    // Only the worker that runs the task received them (the agents log the ids they get, never a value).
    const received = (name: string): string =>
      readFileSync(host(name).logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes("secrets and configs for this node's tasks received"))
        .join('\n');
    expect(received(h[3]!)).toContain(id);
    expect(received(h[3]!)).toContain(v2);
    for (const name of [h[0]!, h[1]!, h[2]!, h[4]!]) {
      expect(received(name), name).not.toContain(id);
      expect(received(name), name).not.toContain(v2);
    }
    // On no disk: not on the workers, and on the managers only sealed in the Raft WAL and snapshots
    // (encryption at rest), which every manager has written by now (snapshot interval 5).
    for (const x of sb.hosts()) {
      if (x.role === 'manager') {
        const raft = join(x.stateDir, 'raft');
        expect(readdirSync(join(raft, 'snap')).filter((f) => f.endsWith('.snap')).length, x.name).toBeGreaterThan(0);
        expect(readdirSync(join(raft, 'wal')).length, x.name).toBeGreaterThan(0);
      }
      for (const needle of [VALUE, CONF]) expect(filesHolding(x.stateDir, Buffer.from(needle)), `${x.name}: ${needle}`).toEqual([]);
    }
    // Services and tasks carry references only.
    expect(await ok(h[0]!, 'service', 'inspect', 'web')).not.toContain(VALUE);
    expect(await ok(h[0]!, 'service', 'ps', '--format', 'json', 'web')).not.toContain(VALUE);
    for (const x of sb.hosts()) expect(readFileSync(x.logFile, 'utf8')).not.toContain(VALUE);
    for (const x of sb.hosts()) expect(readFileSync(x.logFile, 'utf8')).not.toContain(CONF);
  }, 120_000);
});
