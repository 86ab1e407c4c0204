// The agent applies each network on its own, for real in tss namespaces: a
// network whose VNI a pre-made VXLAN device already holds, and one with a
// subnet that got past validation, fail alone (logged, reported to the tasks
// that use them), while the good network in the same update is programmed and
// a container joins it. Every namespace and process here carries this file's
// tss prefix and is removed in afterAll, pass or fail.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkAgent } from '../../agent/network-agent.js';
import { OverlayPlane } from '../../agent/overlay/index.js';
import { readLinks } from '../../agent/overlay/kernel.js';
import { silentLogger } from '../../lib/log.js';
import type { NetworkUpdate } from '../../proto/gen/netfeed.js';
import { Meta, Network, NetworkSpec, NetworkStatus, Task } from '../../proto/gen/objects.js';
import { have, isRoot } from '../have.js';
import { until as waitUntil } from '../lib/wait.js';

const canRun = isRoot && have('ip', ['-V']) && have('bridge', ['-V']) && have('nft') && have('nsenter');
if (!canRun) console.log('independent-networks kernel tests skipped: need root, iproute2, nftables and util-linux');

const ID = `ni${process.pid}`;
const HOST = `tss-${ID}-h`;
const CTR = `tss-${ID}-c`;
const VTEP = '192.168.78.1';
const CLASH_VNI = 4301;
const GOOD_VNI = 4302;
const BADNET_VNI = 4303;
const made: string[] = [];
const procs: ChildProcess[] = [];

const sh = (argv: string[]): string => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
const ipIn = (ns: string, ...args: string[]): string => sh(['ip', '-n', ns, ...args]);
const ourNetns = (): string[] => readdirSync('/run/netns').filter((n) => n.includes(ID));

const until = <T>(what: string, fn: () => T | undefined | false, ms = 5000): Promise<T> =>
  waitUntil(what, fn, { timeoutMs: ms, everyMs: 10 }) as Promise<T>;

const net = (id: string, name: string, vni: number, subnet: string, gateway: string): Network =>
  Network.create({
    meta: Meta.create({ id }),
    spec: NetworkSpec.create({ name, driver: 'overlay' }),
    status: NetworkStatus.create({ vni, subnet, gateway }),
  });
const task = (id: string, networkId: string, address: string): Task =>
  Task.create({
    meta: Meta.create({ id }),
    serviceId: 'svc',
    serviceName: 'web',
    slot: 1,
    nodeId: 'node-1',
    networks: [{ networkId, addresses: [address], aliases: [] }],
  });

describe.skipIf(!canRun)('each network applied on its own', () => {
  let agent: NetworkAgent;
  let sleeper: ChildProcess;

  beforeAll(async () => {
    for (const n of [HOST, CTR]) {
      sh(['ip', 'netns', 'add', n]);
      made.push(n);
      ipIn(n, 'link', 'set', 'lo', 'up');
    }
    // The host's underlay: a veth pair inside the host namespace, the VTEP on one end.
    ipIn(HOST, 'link', 'add', 'tssul0', 'type', 'veth', 'peer', 'name', 'tssul1');
    ipIn(HOST, 'addr', 'add', `${VTEP}/24`, 'dev', 'tssul0');
    ipIn(HOST, 'link', 'set', 'tssul0', 'up');
    ipIn(HOST, 'link', 'set', 'tssul1', 'up');
    // Something else already holds VNI 4301 on port 4789 at this address: the kernel refuses a second such device.
    ipIn(HOST, 'link', 'add', 'tssclash', 'type', 'vxlan', 'id', String(CLASH_VNI), 'dstport', '4789', 'local', VTEP, 'nolearning');
    sleeper = spawn('nsenter', [`--net=/run/netns/${CTR}`, '--', 'sleep', '600'], { stdio: 'ignore' });
    procs.push(sleeper);
    const want = statSync(`/run/netns/${CTR}`).ino;
    await until('the container process to enter its namespace', () => {
      try {
        return statSync(`/proc/${sleeper.pid}/ns/net`).ino === want;
      } catch {
        return false;
      }
    });
    agent = new NetworkAgent({ nodeId: 'node-1', vtep: VTEP, logger: silentLogger(), hostNetns: HOST, nameTag: ID });
  });

  afterAll(async () => {
    await agent?.close().catch(() => undefined);
    for (const p of procs) {
      try {
        if (p.exitCode === null && p.signalCode === null && p.pid) process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const n of [...ourNetns().filter((x) => !made.includes(x)), ...made.reverse()]) {
      try {
        sh(['ip', 'netns', 'del', n]);
      } catch {
        // already gone
      }
    }
  });

  it('programs the good network of an update in which two others fail, and keeps each failure with its network', async () => {
    const update: NetworkUpdate = {
      reset: true,
      removedNetworks: [],
      networks: [
        {
          network: net('net-clash', 'clash', CLASH_VNI, '10.0.31.0/24', '10.0.31.1'),
          full: true,
          endpoints: [],
          removedEndpoints: [],
          services: [],
          removedServices: [],
        },
        // Host bits set: the allocator never makes one, so it stands for any bad state that slipped through.
        {
          network: net('net-badsubnet', 'badsubnet', BADNET_VNI, '10.0.33.7/24', '10.0.33.1'),
          full: true,
          endpoints: [],
          removedEndpoints: [],
          services: [],
          removedServices: [],
        },
        {
          network: net('net-good', 'good', GOOD_VNI, '10.0.32.0/24', '10.0.32.1'),
          full: true,
          endpoints: [],
          removedEndpoints: [],
          services: [],
          removedServices: [],
        },
      ],
    };
    await agent.apply(update);
    const view = new Map(agent.view().map((v) => [v.id, v]));
    expect(view.get('net-good')).toMatchObject({ ensured: true });
    expect(view.get('net-good')!.error).toBeUndefined();
    expect(view.get('net-clash')).toMatchObject({ ensured: false, error: expect.stringMatching(/VNI already exists/) });
    expect(view.get('net-badsubnet')).toMatchObject({ ensured: false, error: expect.stringMatching(/subnet/) });

    // The good network's devices are there, with its gateway.
    const plane = new OverlayPlane({ vtep: VTEP, underlayMtu: 1500, nameTag: ID, hostNetns: HOST });
    const links = (await readLinks(plane.netnsOf(GOOD_VNI)))!;
    expect(links.find((l) => l.name === `tssvx${GOOD_VNI}`)?.vxlan?.vni).toBe(GOOD_VNI);
    expect(links.find((l) => l.name === `tssbr${GOOD_VNI}`)?.addrs).toEqual(['10.0.32.1/24']);
  });

  it("fails a task on a failed network with that network's reason, and joins a task on the good one", async () => {
    await expect(agent.attach(task('t-clash', 'net-clash', '10.0.31.5/24'), sleeper.pid!)).rejects.toThrow(
      /network clash \(net-clash\) could not be set up on this node: .*VNI already exists/,
    );
    await agent.attach(task('t-good', 'net-good', '10.0.32.5/24'), sleeper.pid!);
    const eth0 = (await readLinks(`/run/netns/${CTR}`))!.find((l) => l.name === 'eth0');
    expect(eth0?.addrs).toEqual(['10.0.32.5/24']);
    await agent.detach(task('t-good', 'net-good', '10.0.32.5/24'));
  });

  it('programs a failed network once its cause is gone, on the next repair', async () => {
    ipIn(HOST, 'link', 'del', 'tssclash');
    await agent.repair();
    const view = new Map(agent.view().map((v) => [v.id, v]));
    expect(view.get('net-clash')).toMatchObject({ ensured: true });
    expect(view.get('net-clash')!.error).toBeUndefined();
    // Still failing, still alone.
    expect(view.get('net-badsubnet')).toMatchObject({ ensured: false, error: expect.stringMatching(/subnet/) });
    expect(view.get('net-good')).toMatchObject({ ensured: true });
  });

  it('repairs the other networks in a plane when one of them cannot be repaired', async () => {
    const plane = new OverlayPlane({ vtep: VTEP, underlayMtu: 1500, nameTag: `${ID}p`, hostNetns: HOST });
    await plane.ensureNetwork({ id: 'p-one', vni: 4311, subnet: '10.0.41.0/24', gateway: '10.0.41.1' });
    await plane.ensureNetwork({ id: 'p-two', vni: 4312, subnet: '10.0.42.0/24', gateway: '10.0.42.1' });
    // Break p-one for good (its VNI taken in the host namespace once its namespace is gone) and p-two mildly (its bridge deleted).
    sh(['ip', 'netns', 'del', plane.netnsOf(4311)]);
    // The kernel tears a deleted namespace down in the background: its VXLAN socket goes a moment later.
    await until('VNI 4311 to be free after its namespace went', () => {
      try {
        ipIn(HOST, 'link', 'add', 'tssclash2', 'type', 'vxlan', 'id', '4311', 'dstport', '4789', 'local', VTEP, 'nolearning');
        return true;
      } catch {
        return false;
      }
    });
    ipIn(plane.netnsOf(4312), 'link', 'del', 'tssbr4312');
    await expect(plane.reconcile()).rejects.toThrow(
      /reconciling 1 of 2 networks failed \(the others are reconciled\): p-one: .*VNI already exists/,
    );
    const links = (await readLinks(plane.netnsOf(4312)))!;
    expect(links.find((l) => l.name === 'tssbr4312')?.addrs).toEqual(['10.0.42.1/24']);
    ipIn(HOST, 'link', 'del', 'tssclash2');
  });
});
