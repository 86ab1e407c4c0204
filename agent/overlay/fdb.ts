// The peer table of one network on one host: which static FDB entries
// (remote MAC → remote VTEP) and permanent neighbor entries (remote IP → MAC)
// its VXLAN device must hold, the diff against what the kernel holds, as
// `bridge -batch` and `ip -batch` lines, and the parsers of the kernel's
// `-json` dumps. Pure: the runner (plane.ts) reads, applies and re-reads.
import { UsageError } from '../../lib/errors.js';
import { normalizeMac, parseIp } from './names.js';
import type { FdbEntry, NeighEntry, Peer, PeerProgram, PeerState } from './types.js';

export const FLOOD_MAC = '00:00:00:00:00:00';

/**
 * The entries `peers` call for on a host whose own VTEP is `localVtep`.
 * Peers on this host are skipped (they are on the local bridge). An IP given
 * twice with different MACs, or a MAC at two VTEPs, is refused: the table
 * would not say where to send.
 */
export function desiredPeerState(peers: readonly Peer[], localVtep: string, o: { flood?: boolean } = {}): PeerState {
  const byIp = new Map<string, string>();
  const byMac = new Map<string, string>();
  const vteps = new Set<string>();
  peers.forEach((p, i) => {
    const field = `peers[${i}]`;
    parseIp(`${field}.ip`, p.ip);
    parseIp(`${field}.vtep`, p.vtep);
    const mac = normalizeMac(`${field}.mac`, p.mac);
    if (mac === FLOOD_MAC) throw UsageError.invalid(`${field}.mac`, 'a unicast MAC address', p.mac);
    if (p.vtep === localVtep) return;
    const ipMac = byIp.get(p.ip);
    if (ipMac !== undefined && ipMac !== mac)
      throw new UsageError(`${field}.ip ${p.ip} is given twice with different MACs (${ipMac}, ${mac}): each endpoint IP must appear once`, {
        field: `${field}.ip`,
      });
    const macVtep = byMac.get(mac);
    if (macVtep !== undefined && macVtep !== p.vtep)
      throw new UsageError(`${field}.mac ${mac} is given at two VTEPs (${macVtep}, ${p.vtep}): each MAC lives on one host`, {
        field: `${field}.mac`,
      });
    byIp.set(p.ip, mac);
    byMac.set(mac, p.vtep);
    vteps.add(p.vtep);
  });
  const fdb: FdbEntry[] = [...byMac].map(([mac, dst]) => ({ mac, dst }));
  if (o.flood) for (const dst of vteps) fdb.push({ mac: FLOOD_MAC, dst });
  return { fdb, neigh: [...byIp].map(([ip, mac]) => ({ ip, mac, permanent: true })) };
}

/**
 * Lines that make device `dev` hold exactly `desired`, given `actual`.
 * Deletions first, then additions, each in input order. `replace` and
 * `append` lines are idempotent, so a batch cut short can be run again.
 * A MAC whose only remote is wrong is replaced in place (no gap); any other
 * wrong remote of a MAC is deleted.
 */
export function planPeers(dev: string, desired: PeerState, actual: PeerState): PeerProgram {
  const fdb: string[] = [];
  const neigh: string[] = [];

  const want = new Map<string, Set<string>>();
  for (const e of desired.fdb) {
    let s = want.get(e.mac);
    if (!s) want.set(e.mac, (s = new Set()));
    s.add(e.dst);
  }
  const have = new Map<string, Set<string>>();
  for (const e of actual.fdb) {
    let s = have.get(e.mac);
    if (!s) have.set(e.mac, (s = new Set()));
    s.add(e.dst);
  }
  for (const [mac, dsts] of have) {
    const w = want.get(mac);
    // A wanted unicast MAC with a single, wrong remote: the `replace` below moves it.
    if (mac !== FLOOD_MAC && w && dsts.size === 1 && !w.has([...dsts][0]!)) continue;
    for (const d of dsts) if (!w?.has(d)) fdb.push(`fdb del ${mac} dev ${dev} dst ${d} self`);
  }
  for (const e of desired.fdb) {
    if (have.get(e.mac)?.has(e.dst)) continue;
    // The flood MAC carries one remote per host: append, never replace.
    if (e.mac === FLOOD_MAC) fdb.push(`fdb append ${e.mac} dev ${dev} dst ${e.dst} self permanent`);
    else fdb.push(`fdb replace ${e.mac} dev ${dev} dst ${e.dst} self permanent`);
  }

  const wantNeigh = new Map(desired.neigh.map((n) => [n.ip, n]));
  const haveNeigh = new Map(actual.neigh.map((n) => [n.ip, n]));
  for (const n of actual.neigh) if (!wantNeigh.has(n.ip)) neigh.push(`neigh del ${n.ip} dev ${dev}`);
  for (const n of desired.neigh) {
    const h = haveNeigh.get(n.ip);
    if (h && h.mac === n.mac && h.permanent) continue;
    neigh.push(`neigh replace ${n.ip} lladdr ${n.mac} dev ${dev} nud permanent`);
  }
  return { fdb, neigh };
}

/** How many entries a program adds and removes (for logs and results). */
export function programCounts(p: PeerProgram): { added: number; removed: number } {
  const lines = [...p.fdb, ...p.neigh];
  const removed = lines.filter((l) => / del /.test(` ${l} `)).length;
  return { added: lines.length - removed, removed };
}

// --- reading the kernel ------------------------------------------------------

interface JsonFdb {
  mac?: string;
  dst?: string;
  master?: string;
  flags?: string[];
}
interface JsonNeigh {
  dst?: string;
  lladdr?: string;
  state?: string[];
}

/**
 * The VXLAN device's own entries from `bridge -json fdb show dev DEV`: those
 * flagged `self` with a destination. Entries the bridge learned on the port
 * (`master`) are the bridge's business, not ours.
 */
export function parseFdb(json: string): FdbEntry[] {
  const rows = (json.trim() ? JSON.parse(json) : []) as JsonFdb[];
  return rows
    .filter((r) => r.master === undefined && (r.flags ?? []).includes('self') && r.mac && r.dst)
    .map((r) => ({ mac: r.mac!.toLowerCase(), dst: r.dst! }));
}

/** IPv4 entries from `ip -json neigh show dev DEV`. */
export function parseNeigh(json: string): NeighEntry[] {
  const rows = (json.trim() ? JSON.parse(json) : []) as JsonNeigh[];
  return rows
    .filter((r) => r.dst && !r.dst.includes(':'))
    .map((r) => ({ ip: r.dst!, mac: (r.lladdr ?? '').toLowerCase(), permanent: (r.state ?? []).includes('PERMANENT') }));
}
