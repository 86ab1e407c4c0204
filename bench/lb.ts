// `npm run bench -- lb`: how long the agent's service load balancer takes to
// program S services × B backends from scratch (full_sync_ms) and to apply one
// backend change at that size (one_change_ms: one task's backend replaced by
// another), inside a tss network namespace, for each backend that runs here.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { detectLbBackends, IptablesDriver, NftDriver, ServiceLoadBalancer, type LbDriver, type LbTable } from '../agent/lb/index.js';
import { percentile, Report } from './report.js';

const exec = promisify(execFile);

const ipOf = (base: number, i: number): string => `10.${base + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;

function table(services: number, backends: number): LbTable {
  return {
    services: Array.from({ length: services }, (_, i) => ({
      id: `s${i}`,
      vip: ipOf(100, i),
      ports: [{ protocol: 'tcp' as const, port: 80 }],
      backends: Array.from({ length: backends }, (_, j) => ({ ip: ipOf(150, i * backends + j) })),
    })),
    ingress: [],
  };
}

interface System {
  name: string;
  driver: (ns: string) => LbDriver<unknown>;
  changes: number;
  /** Cases this system is too slow for, with why (reported as an error line). */
  skip?: (c: string) => string | undefined;
}

const cases = [
  { name: '1000x10', services: 1000, backends: 10 },
  { name: '10000x3', services: 10000, backends: 3 },
];

export async function main(): Promise<void> {
  const report = new Report('lb');
  const ns = `tss-lbbench-${process.pid}`;
  await exec('ip', ['netns', 'add', ns]);
  try {
    const det = await detectLbBackends(ns);
    const systems: System[] = [
      { name: 'tsswarm-nft', driver: (n) => new NftDriver({ netns: n, via: 'libnftables' }) as LbDriver<unknown>, changes: 200 },
      // The same programs through one `nsenter nft -f -` process per change: what the in-process context saves.
      { name: 'tsswarm-nft-process', driver: (n) => new NftDriver({ netns: n, via: 'process' }) as LbDriver<unknown>, changes: 50 },
      { name: 'tsswarm-iptables', driver: (n) => new IptablesDriver({ netns: n }) as LbDriver<unknown>, changes: 10 },
    ];
    for (const c of cases) {
      for (const s of systems) {
        // Each system starts from the same table (the change loop edits it).
        const desired = table(c.services, c.backends);
        const kind = s.name.startsWith('tsswarm-nft') ? 'nft' : 'iptables';
        const a = det[kind];
        if (!a.ok) {
          report.error(s.name, c.name, a.reason);
          continue;
        }
        const lb = new ServiceLoadBalancer(s.driver(ns));
        try {
          const t0 = performance.now();
          await lb.update(desired);
          report.add(s.name, c.name, 'full_sync_ms', performance.now() - t0, 'ms');

          // One change at a time: service k's first backend is replaced by a new address.
          const times: number[] = [];
          for (let i = 0; i < s.changes; i++) {
            const k = (i * 7919) % c.services;
            const svc = desired.services[k]!;
            svc.backends = [{ ip: ipOf(250, i) }, ...svc.backends.slice(1)];
            const t = performance.now();
            const r = await lb.upsertService(svc);
            times.push(performance.now() - t);
            if (r.readBack) throw new Error(`${s.name}: change ${i} fell back to a read-back; the measurement would not be of one change`);
          }
          times.sort((x, y) => x - y);
          report.add(s.name, c.name, 'one_change_ms', percentile(times, 0.5), 'ms');
          report.add(s.name, c.name, 'one_change_p99_ms', percentile(times, 0.99), 'ms');

          const t1 = performance.now();
          const r = await lb.reconcile(desired);
          report.add(s.name, c.name, 'reconcile_ms', performance.now() - t1, 'ms');
          if (r.ops !== 0) throw new Error(`${s.name}: the kernel read back differs from what was programmed (${r.ops} ops)`);
        } finally {
          await lb.teardown().catch(() => undefined);
          await lb.close();
        }
      }
      // The IPVS backend is real but needs a kernel with IPVS; never silently left out.
      if (!det.ipvs.ok) report.error('tsswarm-ipvs', c.name, det.ipvs.reason);
    }
  } finally {
    await exec('ip', ['netns', 'del', ns]).catch(() => undefined);
  }
  report.table();
}
