// `tsswarm swarm update` and the settings in `tsswarm info`, against a lone
// manager's Control API and info on a unix socket (as the daemon serves them):
// the flags reach the cluster object and the running dispatcher, --autolock
// turns the manager's Raft keys over to an unlock key and back (`unlock-key`
// shows and rotates it), bad values name the flag, and the top-level verbs stay
// reachable under `swarm`.
import type * as grpc from '@grpc/grpc-js';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterCommands, settingsFromFlags, unlockKeyText } from '../../cli/cluster.js';
import { DataKeys, kekFromUnlockKey, LockedError, newUnlockKey, realVfs, WrongUnlockKeyError } from '../../manager/raft/storage/index.js';
import { until } from '../lib/wait.js';
import type { Command } from '../../cli/command.js';
import { clusterSettings } from '../../spec/cluster.js';
import { type LoneManager, startLoneManager } from '../manager/lone-manager.js';
import { serveLoneManager } from './lone-cli.js';
import { runCommand } from './run-command.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-swarm-cli-'));
const sock = join(dir, 'cli.sock');
let cliServer: grpc.Server;
let lone: LoneManager;
const locks: { secret: boolean; kek: string | null }[] = [];

const command = (name: string): Command => clusterCommands.find((c) => c.name === name)!;
const tss = (...argv: string[]) =>
  runCommand({ swarm: command('swarm'), info: command('info'), 'unlock-key': command('unlock-key') }, `unix://${sock}`, argv);
const settings = () => clusterSettings(lone.manager.cluster()!.spec);

beforeAll(async () => {
  lone = await startLoneManager('m1', 'c-swarm-cli', {
    onLockChange: async (secret, kek) => {
      locks.push({ secret: secret !== null, kek: kek?.id ?? null });
    },
  });
  cliServer = await serveLoneManager(lone, sock);
}, 30_000);

afterAll(async () => {
  await new Promise<void>((res) => cliServer?.tryShutdown(() => res()));
  await lone?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('swarm update flags (pure)', () => {
  it('names only the settings given, each parsed and checked', () => {
    expect(settingsFromFlags({ 'task-history-limit': '0', 'dispatcher-heartbeat': '1m30s' })).toEqual({
      settings: { taskHistoryLimit: 0, dispatcherHeartbeatMs: 90_000, certExpiryMs: 0, snapshotInterval: 0, autolock: false },
      set: ['task-history-limit', 'dispatcher-heartbeat'],
    });
    expect(settingsFromFlags({ autolock: false })).toEqual({
      settings: { taskHistoryLimit: 0, dispatcherHeartbeatMs: 0, certExpiryMs: 0, snapshotInterval: 0, autolock: false },
      set: ['autolock'],
    });
    expect(() => settingsFromFlags({})).toThrow(
      '"tsswarm swarm update" needs at least one setting to change: --task-history-limit, --dispatcher-heartbeat, --cert-expiry, --snapshot-interval, --autolock',
    );
  });
});

describe('tsswarm swarm update', () => {
  it('writes the settings; the running dispatcher takes the heartbeat at once; info shows them as docker info does', async () => {
    const before = settings();
    expect(before).toMatchObject({ taskHistoryLimit: 5, snapshotInterval: 10_000 });
    const r = await tss(
      'swarm',
      'update',
      '--task-history-limit',
      '2',
      '--dispatcher-heartbeat',
      '3s',
      '--cert-expiry',
      '48h',
      '--snapshot-interval',
      '500',
    );
    expect(r).toEqual({ code: 0, out: 'Swarm updated.\n', err: '' });
    expect(settings()).toEqual({
      taskHistoryLimit: 2,
      dispatcherHeartbeatMs: 3000,
      certExpiryMs: 48 * 3_600_000,
      snapshotInterval: 500,
      autolock: false,
    });
    expect(lone.manager.dispatcher.heartbeatPeriodMs).toBe(3000);
    expect(lone.manager.consensus.node.snapshotEntries).toBe(500);

    const info = await tss('info');
    expect(info.code).toBe(0);
    const lines = info.out.split('\n');
    const after = (heading: string, line: string) => {
      const i = lines.indexOf(heading);
      expect(i, heading).toBeGreaterThanOrEqual(0);
      expect(lines.slice(i + 1)).toContain(line);
    };
    after(' Orchestration:', '  Task History Retention Limit: 2');
    after(' Raft:', '  Snapshot Interval: 500');
    after(' Dispatcher:', '  Heartbeat Period: 3 seconds (3s)');
    after(' CA Configuration:', '  Expiry Duration: 2 days (48h0m0s)');

    const json = JSON.parse((await tss('info', '--format', 'json')).out);
    expect(json.clusterSettings).toEqual({
      taskHistoryLimit: 2,
      dispatcherHeartbeatMs: 3000,
      certExpiryMs: 172_800_000,
      snapshotInterval: 500,
    });
  });

  it('-1 keeps all task history, shown as such', async () => {
    expect((await tss('swarm', 'update', '--task-history-limit', '-1')).code).toBe(0);
    expect(settings().taskHistoryLimit).toBe(-1);
    expect((await tss('info')).out).toContain('  Task History Retention Limit: -1 (all kept)');
  });

  it('--autolock=true locks the Raft keys with a new unlock key (printed, and shown by unlock-key); --rotate replaces it; --autolock=false unlocks', async () => {
    const dekFile = join(lone.raftDir, 'raft-dek.json');
    const dek = () => JSON.parse(readFileSync(dekFile, 'utf8')) as { kek: { id: string; source: string }; nodeKey?: string };
    expect(dek().kek.source).toBe('stored');
    expect((await tss('unlock-key')).err).toBe(
      'tsswarm: no unlock key is set: autolock is off. Turn it on with `tsswarm swarm update --autolock=true`, which prints the key\n',
    );

    const on = await tss('swarm', 'update', '--autolock');
    expect(on.code, on.err).toBe(0);
    const key = /(SWMKEY-1-[A-Za-z0-9+/]{43})/.exec(on.out)?.[1] ?? '';
    expect(on.out).toBe(`Swarm updated.\n${unlockKeyText(key)}`);
    expect(settings().autolock).toBe(true);
    // Every manager applies it as the change commits: the key file is rewrapped, then the stored KEK removed.
    await until(
      'the raft keys wrapped by the unlock key and the stored KEK gone',
      () => dek().kek.source === 'unlock-key' && !existsSync(join(lone.raftDir, 'raft-kek.json')),
      { timeoutMs: 10_000, everyMs: 20 },
    );
    expect(dek().kek.id).toBe(kekFromUnlockKey(key).id);
    expect(dek().nodeKey).toBeTruthy();
    expect(existsSync(join(lone.raftDir, 'raft-kek.json'))).toBe(false);
    await expect(DataKeys.load(realVfs, lone.raftDir)).rejects.toBeInstanceOf(LockedError);
    await expect(DataKeys.load(realVfs, lone.raftDir, kekFromUnlockKey(newUnlockKey()))).rejects.toBeInstanceOf(WrongUnlockKeyError);
    expect((await DataKeys.load(realVfs, lone.raftDir, kekFromUnlockKey(key))).source).toBe('unlock-key');
    // The daemon hears of it once the keys are rewrapped and the data key rotated (after the file above).
    await until('the daemon told to seal its TLS key', () => locks.at(-1)?.kek === kekFromUnlockKey(key).id, {
      timeoutMs: 10_000,
      everyMs: 20,
    });
    expect(locks.at(-1)).toEqual({ secret: true, kek: kekFromUnlockKey(key).id });
    expect((await tss('unlock-key', '-q')).out).toBe(`${key}\n`);
    expect((await tss('unlock-key')).out).toBe(unlockKeyText(key));
    expect((await tss('info')).out).toContain(' Autolock Managers: true\n');
    // On again: nothing new to show, the key stays.
    expect(await tss('swarm', 'update', '--autolock=true')).toEqual({ code: 0, out: 'Swarm updated.\n', err: '' });
    expect((await tss('unlock-key', '-q')).out).toBe(`${key}\n`);

    const rot = await tss('unlock-key', '--rotate');
    const key2 = /(SWMKEY-1-[A-Za-z0-9+/]{43})/.exec(rot.out)?.[1] ?? '';
    expect(key2).not.toBe(key);
    expect(rot.out).toBe(`Successfully rotated manager unlock key.\n\n${unlockKeyText(key2)}`);
    await until('the raft keys rewrapped by the new key', () => dek().kek.id === kekFromUnlockKey(key2).id, {
      timeoutMs: 10_000,
      everyMs: 20,
    });
    await expect(DataKeys.load(realVfs, lone.raftDir, kekFromUnlockKey(key))).rejects.toBeInstanceOf(WrongUnlockKeyError);
    expect((await DataKeys.load(realVfs, lone.raftDir, kekFromUnlockKey(key2))).source).toBe('unlock-key');
    // The WAL keeps working under the rewrapped keys.
    expect((await tss('swarm', 'update', '--task-history-limit', '4')).code).toBe(0);

    expect(await tss('swarm', 'update', '--autolock=false')).toEqual({ code: 0, out: 'Swarm updated.\n', err: '' });
    await until('the raft keys under a stored KEK again', () => dek().kek.source === 'stored', { timeoutMs: 10_000, everyMs: 20 });
    expect(existsSync(join(lone.raftDir, 'raft-kek.json'))).toBe(true);
    expect((await DataKeys.load(realVfs, lone.raftDir)).source).toBe('stored');
    await until('the daemon told to store its TLS key in clear', () => locks.at(-1)?.secret === false, { timeoutMs: 10_000, everyMs: 20 });
    expect(locks.at(-1)).toEqual({ secret: false, kek: null });
    expect(lone.manager.cluster()!.spec.encryption?.managerUnlockKey).toBe('');
    expect((await tss('unlock-key')).code).toBe(1);
    expect((await tss('swarm', 'update', '--autolock=maybe')).err).toBe(
      'tsswarm: --autolock must be given alone, or as --autolock=true or --autolock=false (got "maybe")\n',
    );
  });

  it('bad values and no flags: one-line errors naming the flag, nothing written', async () => {
    const version = lone.manager.cluster()!.meta.version;
    expect((await tss('swarm', 'update', '--dispatcher-heartbeat', '5')).err).toBe(
      'tsswarm: --dispatcher-heartbeat must be a duration such as 5s, 1m30s or 2160h (units ns, us, ms, s, m, h) (got "5")\n',
    );
    expect((await tss('swarm', 'update', '--dispatcher-heartbeat', '50ms')).err).toContain('from 100ms to 24h');
    expect((await tss('swarm', 'update', '--cert-expiry', '90d')).err).toContain('--cert-expiry must be a duration such as');
    expect((await tss('swarm', 'update', '--cert-expiry', '30m')).err).toContain('at least 1h');
    expect((await tss('swarm', 'update', '--snapshot-interval', '0')).err).toContain('--snapshot-interval must be a whole number');
    expect((await tss('swarm', 'update', '--task-history-limit', 'all')).err).toContain('--task-history-limit must be');
    expect((await tss('swarm', 'update')).err).toContain('needs at least one setting to change');
    expect((await tss('swarm', 'update', 'extra', '--snapshot-interval', '5')).code).toBe(1);
    expect(lone.manager.cluster()!.meta.version).toBe(version);
  });

  it('swarm lists update and the cluster verbs it shares with the top level', async () => {
    const r = await tss('swarm', '--help');
    for (const sub of ['init', 'join', 'join-token', 'leave', 'update', 'unlock', 'unlock-key'])
      expect(r.out).toMatch(new RegExp(`^  ${sub} `, 'm'));
    const t = await tss('swarm', 'join-token', '-q', 'worker');
    expect(t.out.trim()).toBe(lone.manager.cluster()!.spec.workerToken);
    expect((await tss('swarm', 'update', '--help')).out).toContain('--dispatcher-heartbeat DURATION');
  });
});
