// Large assignments and networks messages cut into parts under a byte limit
// and put back together by the agent's assembler exactly as they were cut.
import { describe, expect, it } from 'vitest';
import { PartAssembler, mergeParts, splitMessage } from '../../lib/parts.js';
import { ManagerMessage } from '../../proto/gen/control.js';
import type { NetworkEndpoint, NetworkState } from '../../proto/gen/netfeed.js';
import { Meta, Network, Task, TaskState } from '../../proto/gen/objects.js';

const task = (i: number, envBytes = 1000): Task =>
  Task.create({
    meta: Meta.create({ id: `t${i}` }),
    nodeId: 'n1',
    serviceId: 's1',
    slot: i,
    desiredState: TaskState.RUNNING,
    spec: { container: { image: 'busybox', env: [`BIG=${'e'.repeat(envBytes)}`] } } as never,
  });

const endpoint = (i: number): NetworkEndpoint => ({
  taskId: `t${i}`,
  serviceId: 's1',
  serviceName: 'web',
  slot: i,
  ip: `10.0.${i >> 8}.${i & 255}`,
  mac: '02:42:0a:00:00:01',
  nodeId: 'n1',
  vtep: '192.0.2.1',
  serving: true,
  aliases: [],
  hostname: `web.${i}`,
});

const net = (id: string, endpoints: number): NetworkState => ({
  network: Network.create({ meta: Meta.create({ id }), spec: { name: id, driver: 'overlay' } as never }),
  full: true,
  endpoints: Array.from({ length: endpoints }, (_, i) => endpoint(i)),
  removedEndpoints: ['gone1'],
  services: [{ serviceId: 's1', name: 'web', vip: '10.0.0.2', mode: 0, ports: [], aliases: [] }],
  removedServices: [],
});

const enc = (m: ManagerMessage): number => ManagerMessage.encode(m).length;

/** Feeds parts through a fresh assembler; returns what it hands back. */
function reassemble(parts: ManagerMessage[]): ManagerMessage[] {
  const a = new PartAssembler();
  return parts.map((p) => a.push(p)).filter((x): x is ManagerMessage => x !== null);
}

describe('message parts', () => {
  it('sends a message under the limit whole, without a part marker', () => {
    const m = ManagerMessage.create({ assignments: { full: true, tasks: [task(1)], removedTaskIds: [] } });
    const out = splitMessage(m, 64 * 1024);
    expect(out).toHaveLength(1);
    expect(out[0]!.message).toBe(m);
    expect(out[0]!.bytes).toBe(enc(m));
  });

  it('cuts a full set of 3,000 tasks into parts each under the limit, and the agent gets the same set back once', () => {
    const limit = 256 * 1024;
    const m = ManagerMessage.create({
      assignments: { full: true, tasks: Array.from({ length: 3000 }, (_, i) => task(i)), removedTaskIds: [] },
    });
    expect(enc(m)).toBeGreaterThan(10 * limit);
    const parts = splitMessage(m, limit);
    expect(parts.length).toBeGreaterThan(10);
    for (const [i, p] of parts.entries()) {
      expect(p.bytes).toBeLessThanOrEqual(limit);
      expect(p.bytes).toBe(enc(p.message));
      expect(p.message.part).toEqual({ index: i, last: i === parts.length - 1 });
      expect(p.message.assignments!.full).toBe(true);
    }
    const back = reassemble(parts.map((p) => p.message));
    expect(back).toHaveLength(1);
    expect(back[0]!.part ?? null).toBeNull();
    expect(back[0]!.assignments!.full).toBe(true);
    expect(back[0]!.assignments!.tasks.map((t) => t.meta.id)).toEqual(m.assignments!.tasks.map((t) => t.meta.id));
  });

  it('cuts a change with many removals too, keeping tasks and removals apart', () => {
    const m = ManagerMessage.create({
      assignments: { full: false, tasks: [task(1)], removedTaskIds: Array.from({ length: 20_000 }, (_, i) => `removed-task-${i}`) },
    });
    const parts = splitMessage(m, 64 * 1024);
    expect(parts.length).toBeGreaterThan(3);
    for (const p of parts) expect(p.bytes).toBeLessThanOrEqual(64 * 1024);
    const back = reassemble(parts.map((p) => p.message))[0]!;
    expect(back.assignments).toEqual({ full: false, tasks: [m.assignments!.tasks[0]], removedTaskIds: m.assignments!.removedTaskIds });
  });

  it('sends an item larger than the limit alone in its part rather than dropping it', () => {
    const m = ManagerMessage.create({
      assignments: { full: true, tasks: [task(1, 100), task(2, 200_000), task(3, 100)], removedTaskIds: [] },
    });
    const parts = splitMessage(m, 64 * 1024);
    expect(parts.map((p) => p.message.assignments!.tasks.map((t) => t.meta.id))).toEqual([['t1'], ['t2'], ['t3']]);
  });

  it('cuts one network with 20,000 endpoints into pieces under the limit, each with the network, and merges them into one', () => {
    const limit = 128 * 1024;
    const m = ManagerMessage.create({
      networks: { reset: true, networks: [net('small', 3), net('big', 20_000), net('other', 2)], removedNetworks: ['old'] },
    });
    const parts = splitMessage(m, limit);
    expect(parts.length).toBeGreaterThan(5);
    for (const p of parts) {
      expect(p.bytes).toBeLessThanOrEqual(limit);
      expect(p.message.networks!.reset).toBe(true);
      for (const ns of p.message.networks!.networks) expect(ns.network?.meta?.id).toBeTruthy();
    }
    const back = reassemble(parts.map((p) => p.message))[0]!.networks!;
    expect(back.reset).toBe(true);
    expect(back.removedNetworks).toEqual(['old']);
    expect(back.networks.map((n) => n.network!.meta!.id)).toEqual(['small', 'big', 'other']);
    const big = back.networks[1]!;
    expect(big.full).toBe(true);
    expect(big.endpoints.map((e) => e.taskId)).toEqual(m.networks!.networks[1]!.endpoints.map((e) => e.taskId));
    expect(big.removedEndpoints).toEqual(['gone1']);
    expect(big.services).toHaveLength(1);
  });

  it('the assembler waits for the last part, drops a set whose first part it never saw, and passes other messages through', () => {
    const m = ManagerMessage.create({
      assignments: { full: true, tasks: Array.from({ length: 200 }, (_, i) => task(i)), removedTaskIds: [] },
    });
    const parts = splitMessage(m, 32 * 1024).map((p) => p.message);
    expect(parts.length).toBeGreaterThan(3);
    const a = new PartAssembler();
    // The tail of a set without its head (e.g. a stream that began mid-set): nothing is applied.
    for (const p of parts.slice(1)) expect(a.push(p)).toBeNull();
    const beat = ManagerMessage.create({
      heartbeatAck: {
        heartbeatPeriodMs: 5,
        managerAddrs: [],
        desiredRole: 'worker',
        managerNodeIds: [],
        trustDigest: '',
        signingRootDigest: '',
      },
    });
    expect(a.push(beat)).toBe(beat);
    for (const p of parts.slice(0, -1)) expect(a.push(p)).toBeNull();
    expect(a.pending).toBe(parts.length - 1);
    const whole = a.push(parts.at(-1)!)!;
    expect(whole.assignments!.tasks).toHaveLength(200);
    expect(a.pending).toBe(0);
    expect(mergeParts(parts).assignments!.tasks).toHaveLength(200);
  });
});
