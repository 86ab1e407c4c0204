// The IPVS planner: plan(desired, actual) → the `ipvsadm-restore` input plus
// an nft program for firewall marks, and the parsers of `ipvsadm -S -n` and of
// the mark table. IPVS services carry no owner tag, so this backend owns every
// address-port IPVS service of the namespace it runs in, and the firewall-mark
// services in its mark range: use it only in a namespace of the agent's own
// (as Docker's lb-<net> sandbox).
//
// A VIP port is an IPVS service `-t vip:port`. A VIP forwarding every port and
// a published ingress port cannot be one (IPVS keys services by address and
// port): as Docker does, a mangle-priority rule marks their packets and an
// IPVS firewall-mark service (`-A -f MARK`) spreads them. The marks live in a
// private nft table, `ip tss-lbmark`, whose maps (VIP → mark, proto . port →
// mark) are updated element by element and read back with the IPVS services,
// so a restarted agent finds the marks it gave. An every-port VIP's
// destinations are `ip:0` (the connection keeps its port); an ingress port's
// are `ip:targetPort`.
import { desiredFrontends, frontendKey, type Frontend, type FrontendChange } from './frontends.js';
import type { ChangePlan, Plan } from './nft.js';
import type { LbProtocol, LbTable } from './types.js';

export interface IpvsService {
  /** `fwm`: a firewall-mark service. */
  proto: LbProtocol | 'fwm';
  /** `vip:port`, or the mark in decimal for a firewall-mark service. */
  addr: string;
  scheduler: string;
  /** `ip:port` → weight (0: quiescent, keeps its connections, gets no new ones). */
  dests: Map<string, number>;
}

/** A firewall mark's owner: an every-port VIP or a published ingress port. */
export type MarkFrontend = Extract<Frontend, { kind: 'vip-any' | 'ingress' }>;

export interface IpvsState {
  /** Keyed `tcp 10.0.0.1:80`, or `fwm 1951596545`. */
  services: Map<string, IpvsService>;
  /** The mark table's elements: frontend key → its frontend and mark. */
  marks: Map<string, { fe: MarkFrontend; mark: number }>;
  /** `broken`: not in the shape we write; the next plan rebuilds it. */
  markTable: 'absent' | 'ok' | 'broken';
}

export interface IpvsPlan extends Plan<IpvsState> {
  /** The nft program for the mark table, run after `program` ('' when none). */
  marks: string;
}

export interface IpvsChangePlan extends ChangePlan<IpvsState> {
  marks: string;
}

export const ipvsScheduler = 'wrr';
export const emptyIpvsState = (): IpvsState => ({ services: new Map(), marks: new Map(), markTable: 'absent' });

/** The nft table holding the marks. */
export const markTable = 'tss-lbmark';
const MT = `ip ${markTable}`;
/** Marks are MARK_BASE + n (n = 1..65535): a recognisable range, clear of the low bits other tools use alone. */
export const MARK_BASE = 0x74530000;
const MARK_MAX = 0xffff;

const flag = (p: IpvsService['proto']): string => (p === 'tcp' ? '-t' : p === 'udp' ? '-u' : '-f');
const hex = (mark: number): string => `0x${mark.toString(16).padStart(8, '0')}`;

function markElement(fe: MarkFrontend): { map: string; key: string } {
  return fe.kind === 'vip-any' ? { map: 'tss-vip-marks', key: fe.vip } : { map: 'tss-port-marks', key: `${fe.proto} . ${fe.port}` };
}

/** The mark table whole, with these elements. */
function markTableProgram(marks: Iterable<{ fe: MarkFrontend; mark: number }>, replace: boolean): string[] {
  const vip: string[] = [];
  const port: string[] = [];
  for (const { fe, mark } of marks) (fe.kind === 'vip-any' ? vip : port).push(`${markElement(fe).key} : ${hex(mark)}`);
  const elements = (xs: string[]): string => (xs.length ? `\n\t\telements = { ${xs.join(', ')} }` : '');
  // Marked in the mangle hooks, before IPVS (LOCAL_OUT at NAT_DST+2, LOCAL_IN):
  // output for clients in this namespace, prerouting for traffic entering it.
  const rules = `\t\tmeta l4proto { tcp, udp } meta mark set ip daddr map @tss-vip-marks
\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta mark set meta l4proto . th dport map @tss-port-marks`;
  return [
    ...(replace ? [`add table ${MT}`, `delete table ${MT}`] : []),
    `table ${MT} {
\tmap tss-vip-marks {
\t\ttype ipv4_addr : mark${elements(vip)}
\t}
\tmap tss-port-marks {
\t\ttype inet_proto . inet_service : mark${elements(port)}
\t}
\tchain tss-mark-prerouting {
\t\ttype filter hook prerouting priority mangle; policy accept;
${rules}
\t}
\tchain tss-mark-output {
\t\ttype route hook output priority mangle; policy accept;
${rules}
\t}
}`,
  ];
}

/** Lowest free mark not in `taken`. */
function allocMark(taken: Set<number>): number {
  for (let n = 1; n <= MARK_MAX; n++) if (!taken.has(MARK_BASE + n)) return MARK_BASE + n;
  throw new Error(`no firewall mark left for IPVS (${MARK_MAX} in use)`);
}

/** The IPVS service a frontend becomes (null: none). `mark` is the frontend's mark when it needs one. */
function serviceOf(d: FrontendChange, mark: number | undefined): { key: string; svc: IpvsService | null } {
  if (d.fe.kind === 'vip') {
    const addr = `${d.fe.vip}:${d.fe.port}`;
    const key = `${d.fe.proto} ${addr}`;
    if (d.targets.length === 0) return { key, svc: null };
    return { key, svc: { proto: d.fe.proto, addr, scheduler: ipvsScheduler, dests: new Map(d.targets.map((t) => [t.target, t.weight])) } };
  }
  const key = `fwm ${mark ?? 0}`;
  if (d.targets.length === 0 || mark === undefined) return { key, svc: null };
  // An every-port VIP's targets are addresses alone: port 0 keeps the connection's port.
  const dest = (t: string): string => (d.fe.kind === 'vip-any' ? `${t}:0` : t);
  return {
    key,
    svc: { proto: 'fwm', addr: String(mark), scheduler: ipvsScheduler, dests: new Map(d.targets.map((t) => [dest(t.target), t.weight])) },
  };
}

function diffService(a: IpvsService | undefined, w: IpvsService | null, lines: string[]): void {
  if (a && !w) {
    lines.push(`-D ${flag(a.proto)} ${a.addr}`);
    return;
  }
  if (!w) return;
  const svc = `${flag(w.proto)} ${w.addr}`;
  if (!a) lines.push(`-A ${svc} -s ${w.scheduler}`);
  else if (a.scheduler !== w.scheduler) lines.push(`-E ${svc} -s ${w.scheduler}`);
  for (const [dst] of a?.dests ?? []) if (!w.dests.has(dst)) lines.push(`-d ${svc} -r ${dst}`);
  for (const [dst, weight] of w.dests) {
    const had = a?.dests.get(dst);
    if (had === undefined) lines.push(`-a ${svc} -r ${dst} -m -w ${weight}`);
    else if (had !== weight) lines.push(`-e ${svc} -r ${dst} -m -w ${weight}`);
  }
}

const isMarkFrontend = (fe: Frontend): fe is MarkFrontend => fe.kind !== 'vip';
const text = (lines: string[]): string => (lines.length > 0 ? lines.join('\n') + '\n' : '');

export function planIpvs(desired: LbTable, actual: IpvsState): IpvsPlan {
  const next = emptyIpvsState();
  const lines: string[] = [];
  const wanted = [...desiredFrontends(desired)].map(([key, d]) => ({ key, ...d }));
  // Marks kept by frontends that stay; new ones never reuse a mark given up in
  // this plan (its old mark rule may outlive the IPVS change by a moment).
  const taken = new Set([...actual.marks.values()].map((m) => m.mark));
  for (const d of wanted) {
    let mark: number | undefined;
    if (isMarkFrontend(d.fe) && d.targets.length > 0) {
      mark = actual.markTable === 'ok' ? actual.marks.get(d.key)?.mark : undefined;
      if (mark === undefined) {
        mark = allocMark(taken);
        taken.add(mark);
      }
      next.marks.set(d.key, { fe: d.fe, mark });
    }
    const s = serviceOf(d, mark);
    if (s.svc) next.services.set(s.key, s.svc);
  }
  for (const [k, a] of actual.services) if (!next.services.has(k)) diffService(a, null, lines);
  for (const [k, w] of next.services) diffService(actual.services.get(k), w, lines);
  // The mark table: rebuilt whole when absent or not ours, else element by element.
  const marks: string[] = [];
  if (actual.markTable !== 'ok') {
    if (next.marks.size > 0 || actual.markTable === 'broken')
      marks.push(...markTableProgram(next.marks.values(), actual.markTable === 'broken'));
  } else {
    for (const [k, a] of actual.marks) {
      const w = next.marks.get(k);
      if (!w || w.mark !== a.mark) marks.push(`delete element ${MT} ${markElement(a.fe).map} { ${markElement(a.fe).key} }`);
    }
    for (const [k, w] of next.marks) {
      const a = actual.marks.get(k);
      if (!a || a.mark !== w.mark) marks.push(`add element ${MT} ${markElement(w.fe).map} { ${markElement(w.fe).key} : ${hex(w.mark)} }`);
    }
  }
  next.markTable = actual.markTable === 'ok' || marks.length > 0 ? 'ok' : 'absent';
  return { program: text(lines), marks: text(marks), next, ops: lines.length + marks.length };
}

/** The input for a few frontends; the cost depends on the change only (a new mark is the lowest free one). */
export function planIpvsChanges(changes: Iterable<FrontendChange>, actual: IpvsState): IpvsChangePlan {
  const lines: string[] = [];
  const marks: string[] = [];
  const set = new Map<string, IpvsService | null>();
  const markSet = new Map<string, { fe: MarkFrontend; mark: number } | null>();
  let taken: Set<number> | undefined;
  let table = actual.markTable;
  for (const d of changes) {
    let mark: number | undefined;
    if (isMarkFrontend(d.fe)) {
      const had = actual.marks.get(d.key);
      mark = had?.mark;
      if (d.targets.length > 0 && mark === undefined) {
        taken ??= new Set([...actual.marks.values()].map((m) => m.mark));
        mark = allocMark(taken);
        taken.add(mark);
        if (table !== 'ok') {
          // The first mark in this namespace: the table comes with it.
          marks.push(...markTableProgram([], table === 'broken'));
          table = 'ok';
        }
        const el = markElement(d.fe);
        marks.push(`add element ${MT} ${el.map} { ${el.key} : ${hex(mark)} }`);
        markSet.set(d.key, { fe: d.fe, mark });
      }
      if (d.targets.length === 0 && had) {
        const el = markElement(had.fe);
        marks.push(`delete element ${MT} ${el.map} { ${el.key} }`);
        markSet.set(d.key, null);
      }
    }
    const s = serviceOf(d, mark);
    diffService(actual.services.get(s.key), s.svc, lines);
    set.set(s.key, s.svc);
  }
  return {
    program: text(lines),
    marks: text(marks),
    ops: lines.length + marks.length,
    commit(st: IpvsState): void {
      for (const [k, v] of set) {
        if (v) st.services.set(k, v);
        else st.services.delete(k);
      }
      for (const [k, v] of markSet) {
        if (v) st.marks.set(k, v);
        else st.marks.delete(k);
      }
      st.markTable = table;
    },
  };
}

/** Deletes every IPVS service of the namespace (they are all ours, see above) and the mark table. */
export function ipvsTeardown(actual: IpvsState): { program: string; marks: string } {
  return {
    program: [...actual.services.values()].map((s) => `-D ${flag(s.proto)} ${s.addr}\n`).join(''),
    marks: actual.markTable === 'absent' ? '' : `delete table ${MT}\n`,
  };
}

const ours = (mark: number): boolean => mark > MARK_BASE && mark <= MARK_BASE + MARK_MAX;

/**
 * Parses `ipvsadm -S -n` into `st`. Left out, so never touched: SCTP services
 * (we create none) and firewall-mark services outside our mark range.
 */
export function parseIpvsSave(text: string, st: IpvsState = emptyIpvsState()): IpvsState {
  const protoOf = (f: string): IpvsService['proto'] => (f === '-t' ? 'tcp' : f === '-u' ? 'udp' : 'fwm');
  for (const line of text.split('\n')) {
    const svc = /^-A (-t|-u|-f) (\S+) -s (\S+)/.exec(line);
    if (svc && (svc[1] !== '-f' || ours(Number(svc[2])))) {
      const proto = protoOf(svc[1]!);
      st.services.set(`${proto} ${svc[2]}`, { proto, addr: svc[2]!, scheduler: svc[3]!, dests: new Map() });
      continue;
    }
    const dst = /^-a (-t|-u|-f) (\S+) -r (\S+) .*-w (\d+)/.exec(line);
    if (dst) st.services.get(`${protoOf(dst[1]!)} ${dst[2]}`)?.dests.set(dst[3]!, Number(dst[4]));
  }
  return st;
}

type Json = unknown;
const isObj = (x: Json): x is Record<string, Json> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * Parses `nft -j list table ip tss-lbmark` into `st` ('' when the table does
 * not exist). Maps or hook chains not as we write them make the table broken.
 */
export function parseMarkTable(jsonText: string, st: IpvsState = emptyIpvsState()): IpvsState {
  st.marks = new Map();
  if (jsonText.trim() === '') {
    st.markTable = 'absent';
    return st;
  }
  const items = ((JSON.parse(jsonText) as { nftables?: Json[] }).nftables ?? []).filter(isObj);
  const maps = new Map<string, Record<string, Json>>();
  const chains = new Map<string, { hook: unknown; rules: number }>();
  for (const it of items) {
    if (isObj(it.map) && it.map.table === markTable) maps.set(String(it.map.name), it.map);
    if (isObj(it.chain) && it.chain.table === markTable) chains.set(String(it.chain.name), { hook: it.chain.hook, rules: 0 });
    if (isObj(it.rule) && it.rule.table === markTable) {
      const c = chains.get(String(it.rule.chain));
      if (c) c.rules++;
    }
  }
  const type = (m: Record<string, Json> | undefined): string =>
    m ? `${Array.isArray(m.type) ? m.type.join(',') : String(m.type)}>${String(m.map)}` : 'missing';
  const ok =
    type(maps.get('tss-vip-marks')) === 'ipv4_addr>mark' &&
    type(maps.get('tss-port-marks')) === 'inet_proto,inet_service>mark' &&
    chains.get('tss-mark-prerouting')?.hook === 'prerouting' &&
    chains.get('tss-mark-output')?.hook === 'output' &&
    chains.get('tss-mark-prerouting')?.rules === 2 &&
    chains.get('tss-mark-output')?.rules === 2;
  if (!ok) {
    st.markTable = 'broken';
    return st;
  }
  st.markTable = 'ok';
  const elems = (name: string): [Json, Json][] => {
    const e = maps.get(name)?.elem;
    return Array.isArray(e) ? (e.filter((x) => Array.isArray(x) && x.length === 2) as [Json, Json][]) : [];
  };
  for (const [k, v] of elems('tss-vip-marks')) {
    if (typeof k !== 'string' || typeof v !== 'number' || !ours(v)) continue;
    const fe: MarkFrontend = { kind: 'vip-any', vip: k };
    st.marks.set(frontendKey(fe), { fe, mark: v });
  }
  for (const [k, v] of elems('tss-port-marks')) {
    const parts = isObj(k) && Array.isArray(k.concat) ? k.concat : [];
    const [p, port] = parts;
    const proto = p === 'tcp' || p === 6 ? 'tcp' : p === 'udp' || p === 17 ? 'udp' : undefined;
    if (!proto || typeof port !== 'number' || typeof v !== 'number' || !ours(v)) continue;
    const fe: MarkFrontend = { kind: 'ingress', proto, port };
    st.marks.set(frontendKey(fe), { fe, mark: v });
  }
  return st;
}
