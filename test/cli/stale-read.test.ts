// A manager without a quorum (its two peers unreachable, so no leader) serves
// Control API reads from its own state and marks them stale; the answers cross
// the generated codecs over gRPC as the daemon serves them, and the CLI prints
// one warning to stderr per command while still printing the result.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STALE_WARNING, closeClients, controlApi, setHost } from '../../cli/client.js';
import { clusterCommands } from '../../cli/cluster.js';
import type { Command } from '../../cli/command.js';
import { networkCommand } from '../../cli/network.js';
import { serviceCommand } from '../../cli/service.js';
import { unary } from '../../lib/grpc.js';
import { silentLogger } from '../../lib/log.js';
import { newRaftId } from '../../manager/consensus/index.js';
import { Manager } from '../../manager/manager.js';
import { controlImplementation, leaderProxy } from '../../manager/controlapi/server.js';
import { ControlService, DaemonService, type InfoResponse } from '../../proto/gen/control.js';
import { runCommand } from './run-command.js';
import { startLoneManager } from '../manager/lone-manager.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-stale-'));
const sock = join(dir, 'tsswarm.sock');
const clusterId = 'tssstalecluster0000000000';
let manager: Manager;
const raftServer = new grpc.Server();
const cliServer = new grpc.Server();
const groups: Record<string, Command> = {
  ...Object.fromEntries(clusterCommands.map((c) => [c.name, c])),
  service: serviceCommand,
  network: networkCommand,
};

beforeAll(async () => {
  manager = await Manager.start({
    raftDir: join(dir, 'raft'),
    nodeId: 'tssm1',
    raftId: newRaftId(),
    clusterId,
    advertiseAddr: '127.0.0.1:1',
    server: raftServer,
    credentials: { server: grpc.ServerCredentials.createInsecure(), client: grpc.credentials.createInsecure() },
    logger: silentLogger(),
    // Two peers nobody answers for: this member can never see a leader.
    members: [
      { raftId: 'tsspeer2', nodeId: 'tssm2', addr: '127.0.0.1:9' },
      { raftId: 'tsspeer3', nodeId: 'tssm3', addr: '127.0.0.1:9' },
    ],
    version: 'test',
    caCertPem: () => '',
    readTimeoutMs: 300,
  });
  // The daemon's routing of Control calls (node/daemon.ts), without mTLS: no leader is ever known, so nothing is forwarded.
  const never = (): Promise<never> => Promise.reject(new Error('no leader: nothing may be forwarded'));
  const route = {
    isLeader: () => manager.consensus.isLeader,
    leaderAddr: () => manager.consensus.leaderAddr,
    forward: never,
    forwardStream: never,
  };
  cliServer.addService(
    ControlService,
    controlImplementation(leaderProxy(manager.controlHandlers(), route), () => undefined),
  );
  cliServer.addService(DaemonService, {
    info: unary(async () => manager.clusterApi.info({ state: 'active', version: 'test', stale: false })),
  });
  await new Promise<void>((res, rej) =>
    cliServer.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
}, 30_000);

afterAll(async () => {
  closeClients();
  await new Promise<void>((res) => cliServer.tryShutdown(() => res()));
  await manager?.close();
  raftServer.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe('reads without a quorum', () => {
  it('leader-only calls are refused by the manager itself, naming the cause', async () => {
    const h = manager.controlHandlers();
    await expect(h.createService({ spec: null })).rejects.toMatchObject({ code: 'NOT_LEADER' });
    await expect(h.inspectDataplane({ ref: 'x', node: '' })).rejects.toMatchObject({ code: 'NOT_LEADER' });
    await expect(h.transferLeader({ ref: '' })).rejects.toMatchObject({ code: 'NOT_LEADER' });
  });

  it('mark every Control API read stale: nodes, services, tasks and networks', async () => {
    expect(manager.consensus.leader).toBe('');
    setHost(`unix://${sock}`);
    try {
      const answers = await Promise.all([
        controlApi('listNodes'),
        controlApi('listServices'),
        controlApi('listTasks', { services: [], nodes: [], desiredRunning: false }),
        controlApi('listNetworks'),
      ]);
      expect(answers.map((a) => a.stale)).toEqual([true, true, true, true]);
    } finally {
      closeClients();
    }
  });

  it('info says it is stale without a leader', () => {
    expect(manager.clusterApi.info({ stale: false }).stale).toBe(true);
  });

  it.each(['node ls', 'service ls', 'network ls', 'info'])(
    'tsswarm %s prints the stale warning once on stderr, and its result',
    async (cmd) => {
      const argv = cmd.split(' ');
      const r = await runCommand(groups, `unix://${sock}`, argv);
      expect(r.code).toBe(0);
      expect(r.out).not.toBe('');
      expect(r.err.startsWith(STALE_WARNING)).toBe(true);
      expect(r.err.split(STALE_WARNING).length - 1).toBe(1);
      expect(STALE_WARNING).toMatch(
        /^WARNING: this manager could not confirm it is up to date with the leader; the result may be stale\n$/,
      );
    },
  );

  it('says that a "not found" from unconfirmed state may be stale too', async () => {
    const r = await runCommand(groups, `unix://${sock}`, ['service', 'ps', 'web']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/web.*\(this manager could not confirm it is up to date with the leader; the answer may be stale\)/);
  });
});

describe('reads with a leader', () => {
  it('are not marked stale (a one-manager cluster confirms its own reads)', async () => {
    const lone = await startLoneManager('tssm9', clusterId);
    const m = lone.manager;
    try {
      const r = await m.nodes.listNodes();
      expect(r.stale).toBe(false);
      expect(r.nodes.map((n) => n.meta.id)).toEqual(['tssm9']);
      expect((await m.controlHandlers().listServices({})).stale).toBe(false);
      expect((m.clusterApi.info({}) as InfoResponse).stale).toBe(false);
    } finally {
      await lone.close();
    }
  }, 20_000);
});
