// The iptables planner, for hosts without nft: plan(desired, actual) → an
// `iptables-restore --noflush` input for the nat table, and the parser of
// `iptables-save -t nat` it diffs against. Everything it owns is named TSS-.
//
// PREROUTING and OUTPUT jump to TSS-SERVICES (one rule per VIP port) and, for
// local destinations, to TSS-INGRESS (one rule per published port). Each
// frontend has a chain TSS-SVC-<hash> / TSS-ING-<hash> whose rules pick slot i
// with `statistic --mode random --probability 1/(N-i)` and DNAT to it. A VIP
// with every port (`ports: []`) has two rules in TSS-SERVICES (`-d VIP -p tcp`
// and `-p udp`, no port) jumping to TSS-ANY-<hash>, which DNATs to an address
// only, so the connection keeps its port. A
// changed frontend gets its chain rewritten (declaring a chain in the input
// flushes it); the rules of other frontends are not sent.
import { createHash } from 'node:crypto';
import { assignSlots, desiredFrontends, frontendKey, type Frontend, type FrontendChange, type Target } from './frontends.js';
import type { ChangePlan, Plan } from './nft.js';
import type { LbProtocol, LbTable } from './types.js';

export const iptServices = 'TSS-SERVICES';
export const iptIngress = 'TSS-INGRESS';

/** The four jumps into our chains, exactly as iptables-save prints them. */
export const iptJumps: readonly string[] = [
  `-A PREROUTING -j ${iptServices}`,
  `-A PREROUTING -m addrtype --dst-type LOCAL -j ${iptIngress}`,
  `-A OUTPUT -j ${iptServices}`,
  `-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j ${iptIngress}`,
];

export interface IptFrontendState {
  fe: Frontend;
  chain: string;
  slots: Target[];
  /** The chain's rules are exactly what `slots` renders to (none missing, probabilities right). */
  rulesOk: boolean;
}

export interface IptState {
  /** TSS- chains present in the nat table. */
  chains: Set<string>;
  /** Rules in PREROUTING, OUTPUT, TSS-SERVICES and TSS-INGRESS that belong to us, as saved (`-A ...`). */
  dispatch: string[];
  frontends: Map<string, IptFrontendState>;
}

export const emptyIptState = (): IptState => ({ chains: new Set(), dispatch: [], frontends: new Map() });

const chainPrefix = { vip: 'TSS-SVC-', ingress: 'TSS-ING-', 'vip-any': 'TSS-ANY-' } as const;

export function iptChainName(fe: Frontend): string {
  const h = createHash('sha256').update(frontendKey(fe)).digest('hex').slice(0, 16).toUpperCase();
  return `${chainPrefix[fe.kind]}${h}`;
}

/** The rules that send a frontend's connections to its chain, as iptables-save prints them. */
function dispatchRules(fe: Frontend, chain: string): string[] {
  switch (fe.kind) {
    case 'vip':
      return [`-A ${iptServices} -d ${fe.vip}/32 -p ${fe.proto} -m ${fe.proto} --dport ${fe.port} -j ${chain}`];
    case 'ingress':
      return [`-A ${iptIngress} -p ${fe.proto} -m ${fe.proto} --dport ${fe.port} -j ${chain}`];
    case 'vip-any':
      // TCP and UDP only, as nft's `meta l4proto { tcp, udp }`: ICMP to the VIP is not forwarded.
      return [`-A ${iptServices} -d ${fe.vip}/32 -p tcp -j ${chain}`, `-A ${iptServices} -d ${fe.vip}/32 -p udp -j ${chain}`];
  }
}

/** The probability rule i of n must carry so that every slot is equally likely. */
const probability = (i: number, n: number): number => 1 / (n - i);

function slotRules(fe: Frontend, chain: string, slots: Target[]): string[] {
  // A vip-any chain is entered for tcp and udp, and DNATs to an address (no port, so no -p needed).
  const p = fe.kind === 'vip-any' ? '' : ` -p ${fe.proto}`;
  return slots.map((t, i) =>
    i < slots.length - 1
      ? `-A ${chain}${p} -m statistic --mode random --probability ${probability(i, slots.length).toFixed(10)} -j DNAT --to-destination ${t}`
      : `-A ${chain}${p} -j DNAT --to-destination ${t}`,
  );
}

const toDelete = (rule: string): string => rule.replace(/^-A /, '-D ');

/** Removes every rule and chain we own; the input for `iptables-restore --noflush`. */
export function iptTeardown(actual: IptState): string {
  const lines = ['*nat'];
  for (const c of [...actual.chains].sort()) lines.push(`:${c} - [0:0]`);
  for (const r of actual.dispatch) if (/^-A (PREROUTING|OUTPUT) /.test(r)) lines.push(toDelete(r));
  for (const c of [...actual.chains].sort()) lines.push(`-X ${c}`);
  lines.push('COMMIT');
  return actual.chains.size === 0 && actual.dispatch.length === 0 ? '' : lines.join('\n') + '\n';
}

export function planIptables(desired: LbTable, actual: IptState): Plan<IptState> {
  const want = desiredFrontends(desired);
  const next: IptState = { chains: new Set([iptServices, iptIngress]), dispatch: [], frontends: new Map() };
  const declare: string[] = [];
  const rules: string[] = [];
  const deletes: string[] = [];
  const drop: string[] = [];
  let ops = 0;
  for (const c of [iptServices, iptIngress]) if (!actual.chains.has(c)) declare.push(`:${c} - [0:0]`);

  const wantDispatch: string[] = [...iptJumps];
  for (const [key, d] of want) {
    const a = actual.frontends.get(key);
    const slots = assignSlots(d.targets, a?.slots ?? []);
    if (slots.length === 0) continue;
    const chain = iptChainName(d.fe);
    wantDispatch.push(...dispatchRules(d.fe, chain));
    next.chains.add(chain);
    next.frontends.set(key, { fe: d.fe, chain, slots, rulesOk: true });
    const same =
      a !== undefined &&
      a.rulesOk &&
      actual.chains.has(chain) &&
      a.slots.length === slots.length &&
      a.slots.every((t, i) => t === slots[i]);
    if (same) continue;
    declare.push(`:${chain} - [0:0]`);
    rules.push(...slotRules(d.fe, chain, slots));
    ops += slots.length;
  }
  // Dispatch rules: keep those wanted (once), delete the rest by their saved text.
  const wanted = new Set(wantDispatch);
  const seen = new Set<string>();
  for (const r of actual.dispatch) {
    if (wanted.has(r) && !seen.has(r)) seen.add(r);
    else {
      deletes.push(toDelete(r));
      ops++;
    }
  }
  const adds = wantDispatch.filter((r) => !seen.has(r));
  ops += adds.length;
  next.dispatch = wantDispatch;
  for (const c of [...actual.chains].sort()) {
    if (next.chains.has(c)) continue;
    declare.push(`:${c} - [0:0]`);
    drop.push(`-X ${c}`);
    ops++;
  }
  const body = [...declare, ...deletes, ...adds, ...rules, ...drop];
  if (body.length === 0) return { program: '', next, ops: 0 };
  return { program: ['*nat', ...body, 'COMMIT'].join('\n') + '\n', next, ops };
}

/**
 * The input for a few frontends against a nat table whose TSS chains and jumps
 * are in place (a full plan was applied): only their dispatch rules and
 * chains are written, so the cost depends on the change only.
 */
export function planIptablesChanges(changes: Iterable<FrontendChange>, actual: IptState): ChangePlan<IptState> {
  if (!actual.chains.has(iptServices) || !actual.chains.has(iptIngress))
    throw new Error('planIptablesChanges needs the TSS chains in place: plan the whole table with planIptables first');
  const declare: string[] = [];
  const deletes: string[] = [];
  const adds: string[] = [];
  const rules: string[] = [];
  const drop: string[] = [];
  const set = new Map<string, IptFrontendState | null>();
  for (const d of changes) {
    const a = actual.frontends.get(d.key);
    const slots = assignSlots(d.targets, a?.slots ?? []);
    if (slots.length === 0) {
      if (a) {
        for (const r of dispatchRules(a.fe, a.chain)) deletes.push(toDelete(r));
        declare.push(`:${a.chain} - [0:0]`);
        drop.push(`-X ${a.chain}`);
        set.set(d.key, null);
      }
      continue;
    }
    const chain = iptChainName(d.fe);
    set.set(d.key, { fe: d.fe, chain, slots, rulesOk: true });
    if (a && a.rulesOk && a.slots.length === slots.length && a.slots.every((t, i) => t === slots[i])) continue;
    if (!a) adds.push(...dispatchRules(d.fe, chain));
    declare.push(`:${chain} - [0:0]`);
    rules.push(...slotRules(d.fe, chain, slots));
  }
  const body = [...declare, ...deletes, ...adds, ...rules, ...drop];
  return {
    program: body.length > 0 ? ['*nat', ...body, 'COMMIT'].join('\n') + '\n' : '',
    ops: deletes.length + adds.length + rules.length + drop.length,
    commit(st: IptState): void {
      for (const [k, v] of set) {
        const old = st.frontends.get(k);
        if (old && !v) {
          for (const r of dispatchRules(old.fe, old.chain)) {
            const i = st.dispatch.indexOf(r);
            if (i >= 0) st.dispatch.splice(i, 1);
          }
          st.chains.delete(old.chain);
          st.frontends.delete(k);
        }
        if (v) {
          if (!old) st.dispatch.push(...dispatchRules(v.fe, v.chain));
          st.chains.add(v.chain);
          st.frontends.set(k, v);
        }
      }
    },
  };
}

/**
 * Parses `iptables-save -t nat`. Frontends come from the TSS-SERVICES and
 * TSS-INGRESS rules; a frontend's slots from its chain's DNAT targets in
 * order, with rulesOk false when a rule is missing or altered (the
 * probabilities then no longer match 1/(N-i)).
 */
export function parseIptablesSave(text: string): IptState {
  const st = emptyIptState();
  const chainRules = new Map<string, string[]>();
  let inNat = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) inNat = line === '*nat';
    if (!inNat) continue;
    const decl = /^:(TSS-\S+) /.exec(line);
    if (decl) st.chains.add(decl[1]!);
    const rule = /^-A (\S+) /.exec(line);
    if (!rule) continue;
    const chain = rule[1]!;
    if (chain === 'PREROUTING' || chain === 'OUTPUT') {
      if (/ -j TSS-\S+$/.test(line)) st.dispatch.push(line);
    } else if (chain === iptServices || chain === iptIngress) st.dispatch.push(line);
    else if (chain.startsWith('TSS-')) chainRules.set(chain, [...(chainRules.get(chain) ?? []), line]);
  }
  for (const r of st.dispatch) {
    const vip = /^-A TSS-SERVICES -d (\S+)\/32 -p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j (TSS-SVC-\S+)$/.exec(r);
    const ing = /^-A TSS-INGRESS -p (tcp|udp) -m (?:tcp|udp) --dport (\d+) -j (TSS-ING-\S+)$/.exec(r);
    const any = /^-A TSS-SERVICES -d (\S+)\/32 -p (?:tcp|udp) -j (TSS-ANY-\S+)$/.exec(r);
    let fe: Frontend | undefined;
    let chain = '';
    if (any) {
      fe = { kind: 'vip-any', vip: any[1]! };
      chain = any[2]!;
    } else if (vip) {
      fe = { kind: 'vip', vip: vip[1]!, proto: vip[2] as LbProtocol, port: Number(vip[3]) };
      chain = vip[4]!;
    } else if (ing) {
      fe = { kind: 'ingress', proto: ing[1] as LbProtocol, port: Number(ing[2]) };
      chain = ing[3]!;
    }
    // A vip-any frontend has two dispatch rules: read its chain once.
    if (!fe || chain !== iptChainName(fe) || st.frontends.has(frontendKey(fe))) continue;
    const p = fe.kind === 'vip-any' ? undefined : fe.proto;
    const lines = chainRules.get(chain) ?? [];
    const slots: Target[] = [];
    let ok = lines.length > 0;
    lines.forEach((l, i) => {
      const m = /^-A \S+(?: -p (tcp|udp))?(?: -m statistic --mode random --probability ([0-9.]+))? -j DNAT --to-destination (\S+)$/.exec(l);
      if (!m) {
        ok = false;
        return;
      }
      slots.push(m[3]!);
      const last = i === lines.length - 1;
      if (m[1] !== p || (last ? m[2] !== undefined : m[2] === undefined || Math.abs(Number(m[2]) - probability(i, lines.length)) > 1e-6))
        ok = false;
    });
    st.frontends.set(frontendKey(fe), { fe, chain, slots, rulesOk: ok });
  }
  return st;
}
