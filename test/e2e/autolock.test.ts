// Autolock on real daemons (3 managers, 1 worker): `swarm update --autolock`
// locks every manager's Raft keys and TLS key with the unlock key; a
// restarted manager serves nothing and says why on every command until
// `tsswarm unlock`; a wrong key is refused; the cluster keeps working through
// the other managers meanwhile; a manager that was down during
// `unlock-key --rotate` still takes the previous key, then follows the
// rotation, after which only the new key unlocks it; no log holds a key;
// `--autolock=false` lets a manager restart unattended again.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { kekFromUnlockKey, newUnlockKey } from '../../manager/raft/storage/index.js';
import { canRunSandbox, joinByCli, until, tsswarmOn } from './helpers.js';

const sb = new Sandbox({
  root: `/tmp/tss-e2elock-${process.pid}`,
  prefix: `tss-l${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '1000'] };
  },
});

const { ts, tsIn, ok } = tsswarmOn(sb, 60_000);

const KEY_RE = /(SWMKEY-1-[A-Za-z0-9+/]{43})/;
const LOCKED = 'Swarm is encrypted and needs to be unlocked before it can be used';

describe.skipIf(!canRunSandbox)('autolock on real daemons', () => {
  let h: string[] = [];
  const host = (name: string) => sb.hosts().find((x) => x.name === name)!;
  const dek = (name: string): { kek: { id: string; source: string } } =>
    JSON.parse(readFileSync(join(host(name).stateDir, 'raft', 'raft-dek.json'), 'utf8'));
  const tlsKey = (name: string): string => readFileSync(join(host(name).stateDir, 'certificates', 'node.key'), 'utf8');

  beforeAll(async () => {
    await sb.up({ managers: 3, workers: 1, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    h = sb.hosts().map((x) => x.name);
  }, 180_000);
  afterAll(async () => {
    await sb.down();
  }, 60_000);

  it('locks every manager; a restarted one is refused until unlocked, a wrong key refused, the cluster works on; rotation; autolock off', async () => {
    const [m1, m2, m3, w1] = h as [string, string, string, string];
    const on = await ok(m1, 'swarm', 'update', '--autolock=true');
    const key1 = KEY_RE.exec(on)?.[1] ?? '';
    expect(key1).not.toBe('');
    expect(on).toContain('tsswarm unlock');
    // Every manager rewraps as it applies the change; workers do not lock.
    for (const m of [m1, m2, m3])
      await until(`${m}'s keys locked with the unlock key`, async () => dek(m).kek.id === kekFromUnlockKey(key1).id, 30_000, 200);
    for (const m of [m1, m2, m3])
      await until(`${m}'s TLS key sealed`, async () => tlsKey(m).includes('ENCRYPTED PRIVATE KEY'), 30_000, 200);
    expect(tlsKey(w1)).not.toContain('ENCRYPTED');
    expect((await ok(m2, 'unlock-key', '-q')).trim()).toBe(key1);
    expect(await ok(m1, 'info')).toContain(' Autolock Managers: true');

    // m3 restarts: locked. Every command says why; nothing is served.
    await sb.stop(m3);
    await sb.start(m3);
    const info = await ok(m3, 'info');
    expect(info).toContain('Swarm: locked');
    expect(info).toContain(LOCKED);
    for (const cmd of [
      ['node', 'ls'],
      ['service', 'ls'],
      ['secret', 'ls'],
      ['join-token', 'worker'],
    ]) {
      const r = await ts(m3, ...cmd);
      expect(r.code, cmd.join(' ')).toBe(1);
      expect(r.err, cmd.join(' ')).toContain(LOCKED);
    }
    // The cluster keeps working through the other managers: a write, and m3 seen as down.
    await ok(m1, 'service', 'create', '-d', '--name', 'during', '--replicas', '1', SANDBOX_IMAGE, 'sleep', '1d');
    await until('m3 seen as down', async () => /\bDown\b/.test((await ok(m2, 'node', 'ls')).split('\n').find((l) => l.includes(m3)) ?? ''));

    // A wrong key is refused, and m3 stays locked; a malformed one is refused naming the form.
    const wrong = await tsIn(m3, `${newUnlockKey()}\n`, 'unlock');
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('the unlock key given is not the one this manager was locked with');
    const malformed = await tsIn(m3, 'hunter2\n', 'unlock');
    expect(malformed.err).toContain('unlock key must be SWMKEY-1- followed by 43 base64 characters');
    expect(malformed.err).not.toContain('hunter2');
    expect((await ts(m3, 'node', 'ls')).err).toContain(LOCKED);

    // Rotated while m3 is down: m3 still takes the key it was locked with, not the new one.
    const key2 = (await ok(m1, 'unlock-key', '--rotate', '-q')).trim();
    expect(key2).toMatch(KEY_RE);
    expect(key2).not.toBe(key1);
    for (const m of [m1, m2]) await until(`${m} rewrapped`, async () => dek(m).kek.id === kekFromUnlockKey(key2).id, 30_000, 200);
    expect((await tsIn(m3, `${key2}\n`, 'unlock')).err).toContain('not the one this manager was locked with');
    const unlocked = await tsIn(m3, `${key1}\n`, 'unlock');
    expect(unlocked.code, unlocked.err).toBe(0);
    // Unlocked, it rejoins, serves, catches up, and follows the rotation.
    await until('m3 serving with the service created meanwhile', async () => (await ts(m3, 'service', 'ls')).out.includes('during'));
    await until('m3 rewrapped with the rotated key', async () => dek(m3).kek.id === kekFromUnlockKey(key2).id, 30_000, 200);
    await until('m3 ready again', async () => /\bReady\b/.test((await ok(m1, 'node', 'ls')).split('\n').find((l) => l.includes(m3)) ?? ''));

    // After the next restart only the new key works.
    await sb.stop(m3);
    await sb.start(m3);
    expect((await tsIn(m3, `${key1}\n`, 'unlock')).err).toContain('not the one this manager was locked with');
    expect((await tsIn(m3, `${key2}\n`, 'unlock')).code).toBe(0);
    expect((await tsIn(m3, `${key2}\n`, 'unlock')).err).toContain('This node is not locked');
    await until('m3 serving again', async () => (await ts(m3, 'node', 'ls')).code === 0);

    // No key in any daemon's log.
    for (const x of sb.hosts()) {
      const log = readFileSync(x.logFile, 'utf8');
      for (const k of [key1, key2]) expect(log, x.name).not.toContain(k.slice(9));
    }

    // Autolock off: the managers' keys and TLS keys go back to stored; a restart needs no unlock.
    expect(await ok(m1, 'swarm', 'update', '--autolock=false')).toBe('Swarm updated.\n');
    for (const m of [m1, m2, m3]) await until(`${m} unlocked for good`, async () => dek(m).kek.source === 'stored', 30_000, 200);
    for (const m of [m1, m2, m3]) await until(`${m}'s TLS key in clear`, async () => !tlsKey(m).includes('ENCRYPTED'), 30_000, 200);
    await sb.stop(m3);
    await sb.start(m3);
    await until('m3 serving after a restart without unlock', async () => (await ts(m3, 'node', 'ls')).code === 0);
    expect((await ts(m1, 'unlock-key')).err).toContain('no unlock key is set');
  }, 300_000);
});
