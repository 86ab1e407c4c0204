// `tsswarm swarm update` and the settings in `tsswarm info`, against a lone
// manager's Control API and info on a unix socket (as the daemon serves them):
// the flags reach the cluster object and the running dispatcher, --autolock in
// any form is refused with nothing changed, bad values name the flag, and the
// top-level verbs stay reachable under `swarm`.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterCommands, settingsFromFlags } from '../../cli/cluster.js';
import type { Command } from '../../cli/command.js';
import { unary } from '../../lib/grpc.js';
import { controlImplementation, leaderProxy } from '../../manager/controlapi/server.js';
import { ControlService, DaemonService } from '../../proto/gen/control.js';
import { clusterSettings } from '../../spec/cluster.js';
import { type LoneManager, startLoneManager } from '../manager/lone-manager.js';
import { runCommand } from './run-command.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-swarm-cli-'));
const sock = join(dir, 'cli.sock');
const cliServer = new grpc.Server();
let lone: LoneManager;

const command = (name: string): Command => clusterCommands.find((c) => c.name === name)!;
const tss = (...argv: string[]) => runCommand({ swarm: command('swarm'), info: command('info') }, `unix://${sock}`, argv);
const settings = () => clusterSettings(lone.manager.cluster()!.spec);

beforeAll(async () => {
  lone = await startLoneManager('m1', 'c-swarm-cli');
  const m = lone.manager;
  const never = (): Promise<never> => Promise.reject(new Error('a lone leader forwards nothing'));
  cliServer.addService(
    ControlService,
    controlImplementation(
      leaderProxy(m.controlHandlers(), {
        isLeader: () => m.consensus.isLeader,
        leaderAddr: () => m.consensus.leaderAddr,
        forward: never,
        forwardStream: never,
      }),
      () => undefined,
    ),
  );
  cliServer.addService(DaemonService, {
    info: unary(async () =>
      m.clusterApi.info({ state: 'active', version: 'test', stale: false, nodeId: 'm1', nodeName: 'm1', clusterId: 'c-swarm-cli' }),
    ),
  });
  await new Promise<void>((res, rej) =>
    cliServer.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
}, 30_000);

afterAll(async () => {
  await new Promise<void>((res) => cliServer.tryShutdown(() => res()));
  await lone?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('swarm update flags (pure)', () => {
  it('names only the settings given, each parsed and checked', () => {
    expect(settingsFromFlags({ 'task-history-limit': '0', 'dispatcher-heartbeat': '1m30s' })).toEqual({
      settings: { taskHistoryLimit: 0, dispatcherHeartbeatMs: 90_000, certExpiryMs: 0, snapshotInterval: 0 },
      set: ['task-history-limit', 'dispatcher-heartbeat'],
    });
    expect(() => settingsFromFlags({})).toThrow(
      '"tsswarm swarm update" needs at least one setting to change: --task-history-limit, --dispatcher-heartbeat, --cert-expiry, --snapshot-interval',
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
    expect(settings()).toEqual({ taskHistoryLimit: 2, dispatcherHeartbeatMs: 3000, certExpiryMs: 48 * 3_600_000, snapshotInterval: 500 });
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

  it('refuses --autolock in every form, changing nothing (not even the other flags given with it)', async () => {
    const version = lone.manager.cluster()!.meta.version;
    for (const argv of [['--autolock'], ['--autolock=true'], ['--autolock=false'], ['--task-history-limit', '3', '--autolock']]) {
      const r = await tss('swarm', 'update', ...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err).toBe(
        'tsswarm: --autolock is not supported yet: tsswarm cannot lock managers until encryption at rest with an unlock key lands; nothing was changed (run the command again without --autolock)\n',
      );
    }
    expect(lone.manager.cluster()!.meta.version).toBe(version);
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
    for (const sub of ['init', 'join', 'join-token', 'leave', 'update']) expect(r.out).toMatch(new RegExp(`^  ${sub} `, 'm'));
    const t = await tss('swarm', 'join-token', '-q', 'worker');
    expect(t.out.trim()).toBe(lone.manager.cluster()!.spec.workerToken);
    expect((await tss('swarm', 'update', '--help')).out).toContain('--dispatcher-heartbeat DURATION');
  });
});
