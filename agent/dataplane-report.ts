// The data-plane report, the agent's side of `network inspect --dataplane`
// (the leader's is manager/controlapi/dataplane-report.ts): what the kernel
// holds for one network on this node (the VXLAN device's FDB and neighbor
// entries in the per-network namespace, each local container's VIP table)
// against what the managers say it must hold. The diffs are pure; reading is a thin shell.
import { existsSync } from 'node:fs';
import { TsswarmError } from '../lib/errors.js';
import type { RelayRequest } from '../proto/gen/control.js';
import type { ContainerVips, DataplaneReport, Difference, VipRow } from '../spec/dataplane-report.js';
import {
  assignSlots,
  chooseLbBackend,
  describeFrontend,
  desiredFrontends,
  frontendKey,
  detectLbBackends,
  netnsPath,
  nftTable,
  parseIptablesSave,
  parseNftJson,
  IpvsDriver,
  runIn,
  type IptState,
  type IpvsState,
  type LbBackendKind,
  type LbTable,
  type NftState,
} from './lb/index.js';
import { desiredPeerState, FLOOD_MAC, parseFdb, parseNeigh, vxlanName, type FdbEntry, type NeighEntry } from './overlay/index.js';
import type { NetworkAgent } from './network-agent.js';

export type { ContainerVips, DataplaneReport, DataplaneSection, Difference, DifferenceKind, VipRow } from '../spec/dataplane-report.js';

// ---------------------------------------------------------------- pure diffs

const byKey = <T>(xs: readonly T[], k: (x: T) => string): Map<string, T[]> => {
  const m = new Map<string, T[]>();
  for (const x of xs) {
    const l = m.get(k(x));
    if (l) l.push(x);
    else m.set(k(x), [x]);
  }
  return m;
};

/**
 * FDB entries by MAC: a wanted MAC absent is missing, present at another
 * VTEP (or at more than the one) is wrong, an unwanted MAC is stale (flood
 * entries included: the agent programs none).
 */
export function diffFdb(expected: readonly FdbEntry[], actual: readonly FdbEntry[]): Difference[] {
  const out: Difference[] = [];
  const want = byKey(expected, (e) => e.mac);
  const have = byKey(actual, (e) => e.mac);
  const dsts = (l: FdbEntry[]): string => [...new Set(l.map((e) => e.dst))].sort().join(', ');
  for (const [mac, w] of want) {
    const h = have.get(mac);
    if (!h) out.push({ section: 'fdb', kind: 'missing', key: mac, expected: `dst ${dsts(w)}` });
    else if (dsts(h) !== dsts(w))
      out.push({ section: 'fdb', kind: 'wrong', key: mac, expected: `dst ${dsts(w)}`, actual: `dst ${dsts(h)}` });
  }
  for (const [mac, h] of have)
    if (!want.has(mac))
      out.push({ section: 'fdb', kind: 'stale', key: mac === FLOOD_MAC ? `${mac} (flood)` : mac, actual: `dst ${dsts(h)}` });
  return out;
}

const neighText = (n: NeighEntry): string => `lladdr ${n.mac || '(none)'}${n.permanent ? ' permanent' : ''}`;

/** Neighbor entries by IP: each wanted one must be there, at its MAC, permanent; any other is stale. */
export function diffNeigh(expected: readonly NeighEntry[], actual: readonly NeighEntry[]): Difference[] {
  const out: Difference[] = [];
  const have = new Map(actual.map((n) => [n.ip, n]));
  const want = new Set(expected.map((n) => n.ip));
  for (const w of expected) {
    const h = have.get(w.ip);
    if (!h) out.push({ section: 'neigh', kind: 'missing', key: w.ip, expected: neighText(w) });
    else if (h.mac !== w.mac || !h.permanent)
      out.push({ section: 'neigh', kind: 'wrong', key: w.ip, expected: neighText(w), actual: neighText(h) });
  }
  for (const h of actual) if (!want.has(h.ip)) out.push({ section: 'neigh', kind: 'stale', key: h.ip, actual: neighText(h) });
  return out;
}

const sortRows = (rows: VipRow[]): VipRow[] => rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

/** The frontends a container's VIP table calls for: those with a backend taking new connections. */
export function expectedVipRows(table: LbTable): VipRow[] {
  const rows: VipRow[] = [];
  for (const [key, d] of desiredFrontends(table)) {
    const slots = assignSlots(d.targets, []);
    if (slots.length === 0) continue; // not programmed: no DNAT for a frontend without backends
    rows.push({ key, frontend: describeFrontend(d.fe), backends: [...slots].sort() });
  }
  return sortRows(rows);
}

/** Rows from the nft table read back (`nft -j list table ip tss-lb`, parsed). */
export function nftVipRows(st: NftState): VipRow[] {
  const rows: VipRow[] = [];
  for (const [key, f] of st.frontends) {
    const slots: string[] = [];
    const problems: string[] = [];
    f.slots.forEach((t, i) => (t === undefined ? problems.push(`slot ${i} empty`) : slots.push(t)));
    const n = f.chain ? /-(\d+)$/.exec(f.chain) : null;
    if (!f.chain) problems.push('no dispatch element: unreachable');
    else if (!st.chains.has(f.chain)) problems.push(`chain ${f.chain} missing`);
    else if (n && Number(n[1]) !== f.slots.length) problems.push(`dispatches to ${f.chain} for ${f.slots.length} slots`);
    rows.push({
      key,
      frontend: describeFrontend(f.fe),
      backends: slots.sort(),
      ...(problems.length ? { problem: problems.join('; ') } : {}),
    });
  }
  return sortRows(rows);
}

/** Rows from the iptables nat table read back (`iptables-save -t nat`, parsed). */
export function iptVipRows(st: IptState): VipRow[] {
  return sortRows(
    [...st.frontends].map(([key, f]) => ({
      key,
      frontend: describeFrontend(f.fe),
      backends: [...f.slots].sort(),
      ...(f.rulesOk ? {} : { problem: "its chain's rules are not as planned (probabilities or targets)" }),
    })),
  );
}

/** Rows from IPVS read back (`ipvsadm -S -n` and the mark table): a destination of weight w counts w times, as a slot does. */
export function ipvsVipRows(st: IpvsState): VipRow[] {
  const rows: VipRow[] = [];
  const spread = (dests: Map<string, number>, addressOnly: boolean): string[] => {
    const out: string[] = [];
    for (const [d, w] of dests) for (let i = 0; i < w; i++) out.push(addressOnly ? d.replace(/:0$/, '') : d);
    return out.sort();
  };
  const marked = new Set<string>();
  for (const [key, { fe, mark }] of st.marks) {
    marked.add(String(mark));
    const svc = st.services.get(`fwm ${mark}`);
    rows.push({
      key,
      frontend: describeFrontend(fe),
      backends: svc ? spread(svc.dests, fe.kind === 'vip-any') : [],
      ...(svc ? {} : { problem: `mark ${mark} has no IPVS service` }),
    });
  }
  for (const svc of st.services.values()) {
    if (svc.proto === 'fwm') {
      if (!marked.has(svc.addr))
        rows.push({
          key: `fwm ${svc.addr}`,
          frontend: `firewall mark ${svc.addr}`,
          backends: spread(svc.dests, false),
          problem: 'no mark rule sends packets to it',
        });
      continue;
    }
    const [vip, port] = svc.addr.split(':');
    const fe = { kind: 'vip' as const, vip: vip!, proto: svc.proto, port: Number(port) };
    rows.push({ key: frontendKey(fe), frontend: describeFrontend(fe), backends: spread(svc.dests, false) });
  }
  return sortRows(rows);
}

const rowText = (r: VipRow): string => r.backends.join(', ') || '(none)';

/**
 * VIP frontends by key: a wanted one absent is missing, one whose backends
 * differ (or that the kernel holds badly) is wrong, an unwanted one is stale.
 * `tableProblem`: the whole table is not ours as it should be (nft: broken).
 */
export function diffVips(expected: readonly VipRow[], actual: readonly VipRow[], tableProblem?: string): Difference[] {
  const out: Difference[] = [];
  if (tableProblem) out.push({ section: 'vip', kind: 'wrong', key: 'table', actual: tableProblem });
  const have = new Map(actual.map((r) => [r.key, r]));
  const want = new Set(expected.map((r) => r.key));
  for (const w of expected) {
    const h = have.get(w.key);
    if (!h) out.push({ section: 'vip', kind: 'missing', key: w.frontend, expected: rowText(w) });
    else if (h.problem || rowText(h) !== rowText(w))
      out.push({
        section: 'vip',
        kind: 'wrong',
        key: w.frontend,
        expected: rowText(w),
        actual: rowText(h) + (h.problem ? ` (${h.problem})` : ''),
      });
  }
  for (const h of actual) if (!want.has(h.key)) out.push({ section: 'vip', kind: 'stale', key: h.frontend, actual: rowText(h) });
  return out;
}

/** Total differences of a report; what its `differences` field holds. */
export function countDifferences(r: Pick<DataplaneReport, 'deviceDifferences' | 'fdb' | 'neigh' | 'containers'>): number {
  return (
    r.deviceDifferences.length +
    r.fdb.differences.length +
    r.neigh.differences.length +
    r.containers.reduce((n, c) => n + c.differences.length + (c.error ? 1 : 0), 0)
  );
}

// ---------------------------------------------------------------- reading the kernel

export interface DataplaneOptions {
  nodeId: string;
  /** The daemon's `--lb-backend`; undefined: detected, as the load balancer does. */
  lbBackend?: string;
}

async function readJson(netns: string, argv: string[], what: string): Promise<string> {
  const r = await runIn(netns, argv[0]!, argv.slice(1), '', 20_000);
  if (r.code !== 0)
    throw new TsswarmError('INTERNAL', `${what}: ${argv.join(' ')} in ${netns} failed: ${r.stderr.trim() || `exit status ${r.code}`}`);
  return r.stdout;
}

async function readVips(netns: string, kind: LbBackendKind): Promise<{ rows: VipRow[]; tableProblem?: string }> {
  switch (kind) {
    case 'nft': {
      const r = await runIn(netns, 'nft', ['-j', 'list', 'table', 'ip', nftTable], '', 20_000);
      if (r.code !== 0 && !/No such file or directory/.test(r.stderr))
        throw new TsswarmError('INTERNAL', `nft -j list table ip ${nftTable}: ${r.stderr.trim() || `exit status ${r.code}`}`);
      const st = parseNftJson(r.code === 0 ? r.stdout : '');
      if (st.table === 'broken')
        return { rows: nftVipRows(st), tableProblem: `table ip ${nftTable} is not as the agent builds it (a map or hook changed)` };
      return { rows: nftVipRows(st) };
    }
    case 'iptables': {
      const r = await runIn(netns, 'iptables-save', ['-t', 'nat'], '', 20_000);
      if (r.code !== 0) throw new TsswarmError('INTERNAL', `iptables-save -t nat: ${r.stderr.trim() || `exit status ${r.code}`}`);
      return { rows: iptVipRows(parseIptablesSave(r.stdout)) };
    }
    case 'ipvs': {
      const st = await new IpvsDriver({ netns }).read();
      if (st.markTable === 'broken')
        return { rows: ipvsVipRows(st), tableProblem: 'table ip tss-lbmark is not as the agent builds it (a map or hook changed)' };
      return { rows: ipvsVipRows(st) };
    }
  }
}

/**
 * Reads the kernel for one network on this node and compares it with
 * `agent.expected(networkId)`. Never throws for what it reads: what cannot be
 * read is listed in `errors` (or on the container).
 */
export async function dataplaneReport(
  agent: Pick<NetworkAgent, 'expected'>,
  networkId: string,
  o: DataplaneOptions,
): Promise<DataplaneReport> {
  const exp = agent.expected(networkId);
  const vni = exp?.vni ?? 0;
  const report: DataplaneReport = {
    nodeId: o.nodeId,
    networkId,
    held: exp !== undefined,
    vni,
    netns: exp?.netns ?? '',
    device: vni ? vxlanName(vni) : '',
    deviceDifferences: [],
    fdb: { expected: [], actual: [], differences: [] },
    neigh: { expected: [], actual: [], differences: [] },
    containers: [],
    differences: 0,
    errors: [],
  };
  if (!exp) return report;
  try {
    // The peers are remote endpoints already: no local VTEP to skip.
    const want = desiredPeerState(exp.peers, '');
    report.fdb.expected = want.fdb;
    report.neigh.expected = want.neigh;
  } catch (e) {
    report.errors.push(`the managers' peer table is inconsistent: ${(e as Error).message}`);
  }
  let readOk = false;
  if (!exp.netns) {
    report.errors.push('the network is not programmed on this node yet (not allocated, or its state is still arriving)');
  } else if (!existsSync(netnsPath(exp.netns))) {
    report.deviceDifferences.push({ section: 'device', kind: 'missing', key: `namespace ${exp.netns}` });
    readOk = true;
  } else {
    try {
      const [fdb, neigh] = await Promise.all([
        readJson(exp.netns, ['bridge', '-json', 'fdb', 'show', 'dev', report.device], 'reading the FDB'),
        readJson(exp.netns, ['ip', '-json', 'neigh', 'show', 'dev', report.device], 'reading neighbor entries'),
      ]);
      report.fdb.actual = parseFdb(fdb);
      report.neigh.actual = parseNeigh(neigh);
      readOk = true;
    } catch (e) {
      const links = await runIn(exp.netns, 'ip', ['-br', 'link', 'show', 'dev', report.device], '', 20_000).catch(() => undefined);
      if (links && links.code !== 0) {
        report.deviceDifferences.push({ section: 'device', kind: 'missing', key: `device ${report.device} in ${exp.netns}` });
        readOk = true;
      } else report.errors.push((e as Error).message);
    }
  }
  if (readOk) {
    report.fdb.differences = diffFdb(report.fdb.expected, report.fdb.actual);
    report.neigh.differences = diffNeigh(report.neigh.expected, report.neigh.actual);
  }
  let kind: LbBackendKind | undefined;
  for (const c of exp.containers) {
    const cv: ContainerVips = {
      taskId: c.taskId,
      netns: c.netns,
      backend: '',
      expected: expectedVipRows(c.table),
      actual: [],
      differences: [],
    };
    report.containers.push(cv);
    try {
      if (!existsSync(netnsPath(c.netns))) throw new TsswarmError('NOT_FOUND', `the container's namespace ${c.netns} is gone`);
      kind ??= chooseLbBackend(await detectLbBackends(c.netns), o.lbBackend);
      cv.backend = kind;
      const got = await readVips(c.netns, kind);
      cv.actual = got.rows;
      cv.differences = diffVips(cv.expected, cv.actual, got.tableProblem);
    } catch (e) {
      cv.error = (e as Error).message;
    }
  }
  report.differences = countDifferences(report);
  return report;
}

/**
 * Answers a relayed `dataplane` request with one message carrying the report
 * as JSON (or why there is none). `agent` is null on a node that runs no
 * containers.
 */
export function answerDataplane(
  agent: Pick<NetworkAgent, 'expected'> | null,
  req: RelayRequest,
  o: DataplaneOptions,
  send: (d: { requestId: string; end: true; error: string; dataplaneJson: string }) => void,
): Promise<void> {
  const reply = (d: { error?: string; json?: string }): void =>
    send({ requestId: req.requestId, end: true, error: d.error ?? '', dataplaneJson: d.json ?? '' });
  if (!agent) {
    reply({ error: 'this node cannot run containers (its container runtime is not usable), so it holds no data plane' });
    return Promise.resolve();
  }
  return dataplaneReport(agent, req.dataplane!.networkId, o).then(
    (r) => reply({ json: JSON.stringify(r) }),
    (e: unknown) => reply({ error: (e as Error).message }),
  );
}
