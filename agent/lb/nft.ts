// The nftables planner: plan(desired, actual) → one `nft -f` transaction for
// the private table `ip tss-lb`, and the parser that reads the table back
// (`nft -j list table ip tss-lb`) into the state the planner diffs against.
//
// Layout (see README.md): a VIP port is one element of `tss-vips`
// (vip . proto . port → goto tss-vip-N, N its slot count) plus N elements of
// `tss-vip-slots` (vip . proto . port . slot → backend ip . port). The chain
// tss-vip-N, shared by every frontend with N slots, picks `numgen random mod
// N` and DNATs through the slot map. Ingress ports use tss-ports /
// tss-port-slots / tss-ing-N keyed by proto . published port. A VIP with
// every port (a service with `ports: []`) uses tss-vip-any / tss-any-slots /
// tss-any-N keyed by the VIP alone and DNATs to an address, keeping the port.
// A change touches only its own elements, so its cost does not grow with the table.
import { allFrontends, assignSlots, frontendKey, type Frontend, type FrontendChange, type Target } from './frontends.js';
import type { LbProtocol, LbTable } from './types.js';

export const nftTable = 'tss-lb';
const T = `ip ${nftTable}`;

export interface NftFrontendState {
  fe: Frontend;
  /** The count chain its dispatch element jumps to (`tss-vip-3`), if any. */
  chain?: string;
  /** slot k → target; holes where an element is missing. */
  slots: (Target | undefined)[];
}

export interface NftState {
  /** `broken`: a table of this name whose maps or hooks are not ours as they should be (rebuilt whole). */
  table: 'absent' | 'ok' | 'broken';
  /** Count chains present (`tss-vip-3`, `tss-ing-1`). */
  chains: Set<string>;
  /** How many dispatch elements jump to each count chain. */
  chainUse: Map<string, number>;
  frontends: Map<string, NftFrontendState>;
}

export interface Plan<S> {
  /** Empty when nothing needs doing. */
  program: string;
  /** The state once the program is applied: cache it for the next plan. */
  next: S;
  /** Element, chain and table operations in the program. */
  ops: number;
}

/**
 * A plan for a few frontends: the program, and `commit`, which updates the
 * cached state in place once the program is applied (so that a change costs
 * the same whatever the size of the table).
 */
export interface ChangePlan<S> {
  program: string;
  ops: number;
  commit(state: S): void;
}

export const emptyNftState = (): NftState => ({ table: 'absent', chains: new Set(), chainUse: new Map(), frontends: new Map() });

/** Per frontend kind: count-chain prefix, dispatch map, slot map, and the key the count chain looks slots up by. */
const layout = {
  vip: { chain: 'vip', dispatch: 'tss-vips', slots: 'tss-vip-slots', key: 'ip daddr . meta l4proto . th dport' },
  ingress: { chain: 'ing', dispatch: 'tss-ports', slots: 'tss-port-slots', key: 'meta l4proto . th dport' },
  'vip-any': { chain: 'any', dispatch: 'tss-vip-any', slots: 'tss-any-slots', key: 'ip daddr' },
} as const;
const countChainRe = /^tss-(vip|ing|any)-(\d+)$/;
const kindOfChain = { vip: 'vip', ing: 'ingress', any: 'vip-any' } as const;

export const countChain = (kind: Frontend['kind'], n: number): string => `tss-${layout[kind].chain}-${n}`;

function feKeyText(fe: Frontend): string {
  switch (fe.kind) {
    case 'vip':
      return `${fe.vip} . ${fe.proto} . ${fe.port}`;
    case 'ingress':
      return `${fe.proto} . ${fe.port}`;
    case 'vip-any':
      return fe.vip;
  }
}
/** `ip . port`, or the address alone (vip-any: the connection keeps its port). */
function targetText(t: Target): string {
  const i = t.lastIndexOf(':');
  return i < 0 ? t : `${t.slice(0, i)} . ${t.slice(i + 1)}`;
}

/** The whole table without elements: maps, the two hooks, no count chains. */
export function nftSkeleton(): string {
  // The typeofs only fix types: `mod 2` makes the slot a 32-bit integer, and
  // the data says `tcp dport` for any inet_service because nft 1.0.6 cannot
  // re-read a map whose data typeof holds `th dport` ("conflicting
  // protocols specified: ip vs. th" on every later rule that names it).
  // Every-port VIPs are looked up after the per-port ones, so a VIP port
  // frontend would win; validation keeps a VIP to one kind anyway.
  return `table ${T} {
\tmap tss-vips {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t}
\tmap tss-vip-slots {
\t\ttypeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . tcp dport
\t}
\tmap tss-vip-any {
\t\ttype ipv4_addr : verdict
\t}
\tmap tss-any-slots {
\t\ttypeof ip daddr . numgen random mod 2 : ip daddr
\t}
\tmap tss-ports {
\t\ttype inet_proto . inet_service : verdict
\t}
\tmap tss-port-slots {
\t\ttypeof meta l4proto . th dport . numgen random mod 2 : ip daddr . tcp dport
\t}
\tchain tss-prerouting {
\t\ttype nat hook prerouting priority dstnat; policy accept;
\t\tip daddr . meta l4proto . th dport vmap @tss-vips
\t\tmeta l4proto { tcp, udp } ip daddr vmap @tss-vip-any
\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @tss-ports
\t}
\tchain tss-output {
\t\ttype nat hook output priority -100; policy accept;
\t\tip daddr . meta l4proto . th dport vmap @tss-vips
\t\tmeta l4proto { tcp, udp } ip daddr vmap @tss-vip-any
\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @tss-ports
\t}
}
`;
}

function countChainLines(name: string): string[] {
  const m = countChainRe.exec(name)!;
  const l = layout[kindOfChain[m[1] as keyof typeof kindOfChain]];
  return [`add chain ${T} ${name}`, `add rule ${T} ${name} dnat ip to ${l.key} . numgen random mod ${m[2]} map @${l.slots}`];
}

/** Removes the table and everything in it; succeeds when it is already gone. */
export function nftTeardown(): string {
  return `add table ${T}\ndelete table ${T}\n`;
}

class Program {
  readonly head: string[] = [];
  readonly addChains: string[] = [];
  // map name → element texts
  readonly dels = new Map<string, string[]>();
  readonly adds = new Map<string, string[]>();
  readonly delChains: string[] = [];
  ops = 0;

  push(m: Map<string, string[]>, map: string, el: string): void {
    const l = m.get(map);
    if (l) l.push(el);
    else m.set(map, [el]);
    this.ops++;
  }

  text(): string {
    const lines = [...this.head];
    for (const c of this.addChains) lines.push(...countChainLines(c));
    // Deletes first: a slot whose target changes is deleted, then added.
    for (const [map, els] of this.dels) lines.push(`delete element ${T} ${map} { ${els.join(', ')} }`);
    for (const [map, els] of this.adds) lines.push(`add element ${T} ${map} { ${els.join(', ')} }`);
    for (const c of this.delChains) lines.push(`delete chain ${T} ${c}`);
    return lines.length > 0 ? lines.join('\n') + '\n' : '';
  }
}

/**
 * Diffs the given frontends against `base`, writing element operations into
 * `prog`. Returns the new state of each (null: no longer programmed) and the
 * change in uses of each count chain.
 */
function diffFrontends(
  changes: Iterable<FrontendChange>,
  base: NftState,
  prog: Program,
): { set: Map<string, NftFrontendState | null>; use: Map<string, number> } {
  const set = new Map<string, NftFrontendState | null>();
  const use = new Map<string, number>();
  const bump = (c: string | undefined, d: number): void => {
    if (c !== undefined) use.set(c, (use.get(c) ?? 0) + d);
  };
  for (const d of changes) {
    const a = base.frontends.get(d.key);
    const slots = assignSlots(d.targets, a?.slots ?? []);
    const chain = slots.length > 0 ? countChain(d.fe.kind, slots.length) : undefined;
    const k = feKeyText(d.fe);
    if (a?.chain !== chain) {
      if (a?.chain !== undefined) prog.push(prog.dels, layout[d.fe.kind].dispatch, k);
      if (chain !== undefined) prog.push(prog.adds, layout[d.fe.kind].dispatch, `${k} : goto ${chain}`);
      bump(a?.chain, -1);
      bump(chain, +1);
    }
    const old = a?.slots ?? [];
    for (let i = 0; i < Math.max(old.length, slots.length); i++) {
      if (old[i] === slots[i]) continue;
      if (old[i] !== undefined) prog.push(prog.dels, layout[d.fe.kind].slots, `${k} . ${i}`);
      if (slots[i] !== undefined) prog.push(prog.adds, layout[d.fe.kind].slots, `${k} . ${i} : ${targetText(slots[i]!)}`);
    }
    set.set(d.key, chain !== undefined ? { fe: d.fe, chain, slots } : null);
  }
  return { set, use };
}

/**
 * The program for a few frontends (a service's VIP ports, a published port)
 * against a table known to be `ok`: its cost depends on the change only.
 * Unchanged frontends need not be passed; a frontend with no targets is removed.
 */
export function planNftChanges(changes: Iterable<FrontendChange>, actual: NftState): ChangePlan<NftState> {
  if (actual.table !== 'ok') throw new Error('planNftChanges needs a table known to be ok: plan the whole table with planNft first');
  const prog = new Program();
  const { set, use } = diffFrontends(changes, actual, prog);
  const chains: [string, number][] = [];
  for (const [c, d] of use) {
    if (d === 0) continue;
    const n = (actual.chainUse.get(c) ?? 0) + d;
    chains.push([c, n]);
    if (n > 0 && !actual.chains.has(c)) prog.addChains.push(c);
    if (n <= 0 && actual.chains.has(c)) prog.delChains.push(c);
  }
  prog.ops += prog.addChains.length + prog.delChains.length;
  return {
    program: prog.text(),
    ops: prog.ops,
    commit(st: NftState): void {
      for (const [k, v] of set) {
        if (v) st.frontends.set(k, v);
        else st.frontends.delete(k);
      }
      for (const [c, n] of chains) {
        if (n > 0) {
          st.chainUse.set(c, n);
          st.chains.add(c);
        } else {
          st.chainUse.delete(c);
          st.chains.delete(c);
        }
      }
    },
  };
}

/**
 * The program that takes `actual` to `desired`: element adds and deletes only,
 * unless the table is absent or broken, in which case it is rebuilt from
 * scratch in the same transaction. Stale frontends and unused count chains
 * are removed.
 */
export function planNft(desired: LbTable, actual: NftState): Plan<NftState> {
  const prog = new Program();
  let base = actual;
  if (actual.table !== 'ok') {
    prog.head.push(`add table ${T}`, `delete table ${T}`, nftSkeleton().trimEnd());
    prog.ops++;
    base = emptyNftState();
  }
  const changes = allFrontends(desired);
  if (base.frontends.size > 0) {
    const want = new Set(changes.map((c) => c.key));
    for (const [key, a] of base.frontends) if (!want.has(key)) changes.push({ key, fe: a.fe, targets: [] });
  }
  const { set } = diffFrontends(changes, base, prog);
  const next: NftState = { table: 'ok', chains: new Set(), chainUse: new Map(), frontends: new Map() };
  for (const [k, v] of set) {
    if (!v) continue;
    next.frontends.set(k, v);
    next.chainUse.set(v.chain!, (next.chainUse.get(v.chain!) ?? 0) + 1);
  }
  for (const c of [...next.chainUse.keys()].sort()) {
    next.chains.add(c);
    if (!base.chains.has(c)) prog.addChains.push(c);
  }
  for (const c of [...base.chains].sort()) if (!next.chains.has(c)) prog.delChains.push(c);
  prog.ops += prog.addChains.length + prog.delChains.length;
  return { program: prog.text(), next, ops: prog.ops };
}

// ---- reading the table back ----

type Json = unknown;
const isObj = (x: Json): x is Record<string, Json> => typeof x === 'object' && x !== null && !Array.isArray(x);

function proto(x: Json): LbProtocol | undefined {
  if (x === 'tcp' || x === 6) return 'tcp';
  if (x === 'udp' || x === 17) return 'udp';
  return undefined;
}

const expectedMaps: Record<string, string> = {
  'tss-vips': 'ipv4_addr,inet_proto,inet_service>verdict',
  'tss-vip-slots': 'ipv4_addr,inet_proto,inet_service,integer>ipv4_addr . inet_service',
  'tss-ports': 'inet_proto,inet_service>verdict',
  'tss-port-slots': 'inet_proto,inet_service,integer>ipv4_addr . inet_service',
  'tss-vip-any': 'ipv4_addr>verdict',
  'tss-any-slots': 'ipv4_addr,integer>ipv4_addr',
};

/**
 * Parses `nft -j list table ip tss-lb`. An empty string means the table does
 * not exist. Anything that does not look exactly like our skeleton (a map or
 * hook rule missing or changed, a count chain with the wrong modulus) makes
 * the table `broken`, which the planner answers with a rebuild.
 */
export function parseNftJson(text: string): NftState {
  const st = emptyNftState();
  if (text.trim() === '') return st;
  const doc = JSON.parse(text) as { nftables?: Json[] };
  const items = doc.nftables ?? [];
  let table = false;
  const maps = new Map<string, Record<string, Json>>();
  const chains = new Map<string, { hook?: string; rules: Record<string, Json>[] }>();
  for (const it of items) {
    if (!isObj(it)) continue;
    if (isObj(it.table) && it.table.name === nftTable) table = true;
    if (isObj(it.map) && it.map.table === nftTable) maps.set(String(it.map.name), it.map);
    if (isObj(it.chain) && it.chain.table === nftTable)
      chains.set(String(it.chain.name), { ...(typeof it.chain.hook === 'string' ? { hook: it.chain.hook } : {}), rules: [] });
    if (isObj(it.rule) && it.rule.table === nftTable) chains.get(String(it.rule.chain))?.rules.push(it.rule);
  }
  if (!table) return st;
  let ok = true;
  for (const [name, sig] of Object.entries(expectedMaps)) {
    const m = maps.get(name);
    const got = m ? `${Array.isArray(m.type) ? m.type.join(',') : String(m.type)}>${String(m.map)}` : 'missing';
    if (got !== sig) ok = false;
  }
  for (const [name, hook] of [
    ['tss-prerouting', 'prerouting'],
    ['tss-output', 'output'],
  ] as const) {
    const c = chains.get(name);
    // A table from before every-port VIPs has two rules here: it is rebuilt.
    if (!c || c.hook !== hook || c.rules.length !== 3) ok = false;
    else {
      const [r1, r2, r3] = c.rules.map((r) => JSON.stringify(r.expr));
      if (
        !r1!.includes('"@tss-vips"') ||
        !r2!.includes('"@tss-vip-any"') ||
        !r2!.includes('"set":["tcp","udp"]') ||
        !r3!.includes('"@tss-ports"') ||
        !r3!.includes('"fib"')
      )
        ok = false;
    }
  }
  for (const [name, c] of chains) {
    if (name === 'tss-prerouting' || name === 'tss-output') continue;
    const m = countChainRe.exec(name);
    const rule = c.rules.length === 1 ? JSON.stringify(c.rules[0]!.expr) : '';
    const mod = /"numgen":\{[^}]*"mod":(\d+)/.exec(rule);
    const map = m ? `"@${layout[kindOfChain[m[1] as keyof typeof kindOfChain]].slots}"` : '';
    if (!m || c.hook !== undefined || !mod || mod[1] !== m[2] || !rule.includes(map) || !rule.includes('"dnat"')) ok = false;
    else st.chains.add(name);
  }
  if (!ok) return { ...st, table: 'broken' };
  st.table = 'ok';

  const fe = (kind: Frontend['kind'], parts: Json[]): Frontend | undefined => {
    if (kind === 'vip-any') {
      const [vip] = parts;
      return typeof vip === 'string' && parts.length === 1 ? { kind, vip } : undefined;
    }
    if (kind === 'vip') {
      const [vip, p, port] = parts;
      const pr = proto(p);
      return typeof vip === 'string' && pr && typeof port === 'number' ? { kind, vip, proto: pr, port } : undefined;
    }
    const [p, port] = parts;
    const pr = proto(p);
    return pr && typeof port === 'number' ? { kind, proto: pr, port } : undefined;
  };
  // A single-field key or data is printed bare ("10.96.0.20"), a concatenation as { concat: [...] }.
  const fields = (x: Json): Json[] | undefined =>
    isObj(x) && Array.isArray(x.concat) ? x.concat : typeof x === 'string' ? [x] : undefined;
  const get = (f: Frontend): NftFrontendState => {
    const k = frontendKey(f);
    let s = st.frontends.get(k);
    if (!s) st.frontends.set(k, (s = { fe: f, slots: [] }));
    return s;
  };
  const elems = (name: string): [Json, Json][] => {
    const e = maps.get(name)?.elem;
    return Array.isArray(e) ? (e.filter((x) => Array.isArray(x) && x.length === 2) as [Json, Json][]) : [];
  };
  for (const kind of ['vip', 'ingress', 'vip-any'] as const) {
    const { dispatch, slots } = layout[kind];
    for (const [k, v] of elems(dispatch)) {
      const parts = fields(k);
      const f = parts ? fe(kind, parts) : undefined;
      const target = isObj(v) && isObj(v.goto) ? v.goto.target : undefined;
      if (f && typeof target === 'string') {
        get(f).chain = target;
        st.chainUse.set(target, (st.chainUse.get(target) ?? 0) + 1);
      }
    }
    for (const [k, v] of elems(slots)) {
      const parts = fields(k);
      const data = fields(v);
      if (!parts || !data) continue;
      const slot = parts[parts.length - 1];
      const f = fe(kind, parts.slice(0, -1));
      const [ip, port] = data;
      if (!f || typeof slot !== 'number' || typeof ip !== 'string') continue;
      if (kind === 'vip-any') {
        if (data.length === 1) get(f).slots[slot] = ip;
      } else if (typeof port === 'number' && data.length === 2) get(f).slots[slot] = `${ip}:${port}`;
    }
  }
  // A sparse array read back has holes as `undefined` already; normalise length.
  for (const s of st.frontends.values()) s.slots = Array.from(s.slots);
  return st;
}
