// `tsswarm network inspect --dataplane`: the text and JSON rendering of the
// nodes' reports (pure), and the command end to end over gRPC against the
// leader's InspectDataplane (manager/controlapi/dataplane-report.ts) with a
// stand-in dispatcher whose agents answer, stay silent, or have no session.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countDifferences, diffFdb, diffNeigh, diffVips, type DataplaneReport, type VipRow } from '../../agent/dataplane-report.js';
import { dataplaneVerdict, dataplaneView, networkCommand, renderDataplane } from '../../cli/network.js';
import { unary } from '../../lib/grpc.js';
import { inspectDataplane } from '../../manager/controlapi/dataplane-report.js';
import { localStore } from '../../manager/store/index.js';
import { ControlService, type InspectDataplaneRequest, type RelayData, type RelayRequest } from '../../proto/gen/control.js';
import {
  Meta,
  Network,
  NetworkSpec,
  NetworkStatus,
  Node,
  NodeDescription,
  NodeSpec,
  Task,
  TaskState,
  TaskStatus,
} from '../../proto/gen/objects.js';
import { runCommand } from './run-command.js';

const fdbE = [
  { mac: '02:42:0a:00:01:03', dst: '192.168.50.2' },
  { mac: '02:42:0a:00:01:04', dst: '192.168.50.3' },
];
const neighE = [
  { ip: '10.0.1.3', mac: '02:42:0a:00:01:03', permanent: true },
  { ip: '10.0.1.4', mac: '02:42:0a:00:01:04', permanent: true },
];
const vipE: VipRow[] = [{ key: 'vip 10.0.1.2 tcp 80', frontend: 'tcp 10.0.1.2:80', backends: ['10.0.1.3:80', '10.0.1.4:80'] }];

/** A report as an agent builds it, from what its kernel holds. */
function report(nodeId: string, fdbA = fdbE, neighA = neighE, vipA = vipE): DataplaneReport {
  const r: DataplaneReport = {
    nodeId,
    networkId: 'net1',
    held: true,
    vni: 4096,
    netns: `tss-ov-4096-${nodeId}`,
    device: 'tssvx4096',
    deviceDifferences: [],
    fdb: { expected: fdbE, actual: fdbA, differences: diffFdb(fdbE, fdbA) },
    neigh: { expected: neighE, actual: neighA, differences: diffNeigh(neighE, neighA) },
    containers: [
      {
        taskId: 'task0123456789ab',
        netns: '/proc/42/ns/net',
        backend: 'nft',
        expected: vipE,
        actual: vipA,
        differences: diffVips(vipE, vipA),
      },
    ],
    differences: 0,
    errors: [],
  };
  r.differences = countDifferences(r);
  return r;
}

describe('rendering inspect --dataplane', () => {
  it('says "in sync" when no node has a difference', () => {
    const v = dataplaneView({
      networkId: 'net1',
      networkName: 'front',
      nodes: [{ nodeId: 'n1', hostname: 'h1', reportJson: JSON.stringify(report('n1')), error: '' }],
    });
    expect(v.inSync).toBe(true);
    const text = renderDataplane(v);
    expect(text.trimEnd().split('\n').at(-1)).toBe('in sync');
    expect(text).toContain('h1 (node n1): vni 4096, namespace tss-ov-4096-n1, device tssvx4096');
    expect(text).not.toMatch(/<- /);
  });

  it('marks a missing FDB entry, a stale neighbor entry and a wrong VIP, and counts them on the last line', () => {
    const bad = report(
      'n2',
      [fdbE[1]!],
      [...neighE, { ip: '10.0.1.9', mac: '02:42:0a:00:01:09', permanent: true }],
      [{ ...vipE[0]!, backends: ['10.0.1.3:80'] }],
    );
    const v = dataplaneView({
      networkId: 'net1',
      networkName: 'front',
      nodes: [
        { nodeId: 'n1', hostname: 'h1', reportJson: JSON.stringify(report('n1')), error: '' },
        { nodeId: 'n2', hostname: 'h2', reportJson: JSON.stringify(bad), error: '' },
      ],
    });
    expect(v.differences).toBe(3);
    const text = renderDataplane(v);
    const line = (s: string): string => text.split('\n').find((l) => l.includes(s) && l.includes('<-')) ?? '';
    expect(line('02:42:0a:00:01:03')).toMatch(/02:42:0a:00:01:03\s+192\.168\.50\.2\s+-\s+<- missing$/);
    expect(line('10.0.1.9')).toMatch(/10\.0\.1\.9\s+-\s+02:42:0a:00:01:09\s+<- stale$/);
    expect(line('tcp 10.0.1.2:80')).toMatch(/tcp 10\.0\.1\.2:80\s+10\.0\.1\.3:80, 10\.0\.1\.4:80\s+10\.0\.1\.3:80\s+<- wrong$/);
    expect(text).toContain("VIP entries in task task01234567's container (nft): 1 expected, 1 in the kernel");
    expect(text.trimEnd().split('\n').at(-1)).toBe('3 differences');
  });

  it('shows a node that could not be read, and says so on the last line', () => {
    const v = dataplaneView({
      networkId: 'net1',
      networkName: 'front',
      nodes: [{ nodeId: 'n3', hostname: 'h3', reportJson: '', error: 'the node is not connected to the managers' }],
    });
    expect(v.inSync).toBe(false);
    expect(renderDataplane(v)).toContain('h3 (node n3): could not be read: the node is not connected to the managers');
    expect(dataplaneVerdict(v)).toBe('1 node not read');
    expect(dataplaneVerdict({ differences: 1, unreadable: 2 })).toBe('1 difference, 2 nodes not read');
  });
});

// ---------------------------------------------------------------- over gRPC

const dir = mkdtempSync(join(tmpdir(), 'tss-netdp-'));
const sock = join(dir, 'tsswarm.sock');
const store = localStore();
const server = new grpc.Server();
/** What each node's agent does with a relayed request: answer with a report, stay silent, or (absent) have no session. */
const agents = new Map<string, 'ok' | 'silent' | 'missing-fdb' | 'not-held'>([
  ['n1', 'ok'],
  ['n2', 'missing-fdb'],
  ['n4', 'silent'],
  ['n5', 'not-held'],
]);
const asked: RelayRequest[] = [];
const dispatcher = {
  relay(nodeId: string, req: Omit<RelayRequest, 'requestId' | 'cancel'>, fn: (d: RelayData) => void): (() => void) | null {
    const how = agents.get(nodeId);
    if (!how) return null;
    asked.push({ ...req, requestId: nodeId, cancel: false } as RelayRequest);
    const r = how === 'missing-fdb' ? report(nodeId, [fdbE[1]!]) : { ...report(nodeId), held: how !== 'not-held' };
    if (how !== 'silent')
      setImmediate(() => fn({ requestId: nodeId, end: true, error: '', dataplaneJson: JSON.stringify(r) } as RelayData));
    return () => undefined;
  },
};

beforeAll(async () => {
  await store.update((tx) => {
    tx.networks.create(
      Network.create({
        meta: Meta.create({ id: 'net1' }),
        spec: NetworkSpec.create({ name: 'front', driver: 'overlay' }),
        status: NetworkStatus.create({ vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1' }),
      }),
    );
    for (const [id, host] of [
      ['n1', 'h1'],
      ['n2', 'h2'],
      ['n3', 'h3'],
      ['n4', 'h4'],
      ['n5', 'h5'],
    ] as const) {
      tx.nodes.create(
        Node.create({
          meta: Meta.create({ id }),
          spec: NodeSpec.create({ name: host }),
          description: NodeDescription.create({ hostname: host }),
        }),
      );
    }
    // Live tasks of the network on n1, n2, n3 (no session) and n4 (silent); n5 has none.
    for (const n of ['n1', 'n2', 'n3', 'n4']) {
      tx.tasks.create(
        Task.create({
          meta: Meta.create({ id: `t-${n}` }),
          nodeId: n,
          desiredState: TaskState.RUNNING,
          status: TaskStatus.create({ state: TaskState.RUNNING }),
          networks: [{ networkId: 'net1', addresses: [`10.0.1.${n.slice(1)}/24`], aliases: [] }],
        }),
      );
    }
  });
  server.addService(ControlService, {
    inspectDataplane: unary((r: InspectDataplaneRequest) => inspectDataplane(store, dispatcher, r, 300)),
  });
  await new Promise<void>((res, rej) =>
    server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
});

afterAll(async () => {
  await new Promise<void>((res) => server.tryShutdown(() => res()));
  rmSync(dir, { recursive: true, force: true });
});

const run = (...argv: string[]) => runCommand({ network: networkCommand }, `unix://${sock}`, argv);

describe('network inspect --dataplane against the leader', () => {
  it('asks every node for the network by id, and lists the holders: in sync, a difference, no session, no answer', async () => {
    asked.length = 0;
    const r = await run('network', 'inspect', '--dataplane', '--format', 'json', 'front');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(asked.every((q) => q.dataplane?.networkId === 'net1' && q.taskId === '')).toBe(true);
    const v = JSON.parse(r.out) as ReturnType<typeof dataplaneView>;
    expect(v.network).toEqual({ id: 'net1', name: 'front' });
    // n5 answered that it does not hold the network and runs none of its tasks: left out.
    expect(v.nodes.map((n) => [n.hostname, n.report?.differences ?? n.error])).toEqual([
      ['h1', 0],
      ['h2', 1],
      ['h3', 'the node is not connected to the managers: its data plane cannot be read now'],
      ['h4', "the node's agent did not answer within 0.3 s"],
    ]);
    expect(v.differences).toBe(1);
    expect(v.inSync).toBe(false);
  });

  it('with --node shows that node only, in text', async () => {
    const r = await run('network', 'inspect', '--dataplane', '--node', 'h2', 'front');
    expect(r.code).toBe(0);
    expect(r.out).toContain('data plane on 1 node');
    expect(r.out).toMatch(/02:42:0a:00:01:03\s+192\.168\.50\.2\s+-\s+<- missing/);
    expect(r.out.trimEnd().split('\n').at(-1)).toBe('1 difference');
    const one = await run('network', 'inspect', '--dataplane', '--node', 'h1', 'front');
    expect(one.out.trimEnd().split('\n').at(-1)).toBe('in sync');
  });

  it('names the node or network it cannot find, and refuses --node without --dataplane', async () => {
    expect((await run('network', 'inspect', '--dataplane', '--node', 'h9', 'front')).err).toMatch(/node h9 not found/);
    expect((await run('network', 'inspect', '--dataplane', 'nope')).err).toMatch(/network nope not found/);
    const r = await run('network', 'inspect', '--node', 'h1', 'front');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/--node goes with --dataplane/);
    expect((await run('network', 'inspect', '--dataplane', 'front', 'back')).err).toMatch(/one network at a time/);
  });
});
