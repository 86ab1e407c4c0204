// The IPVS planner: plan(desired, actual) → `ipvsadm-restore` input, and the
// parser of `ipvsadm -S -n` (the same format). IPVS services carry no owner
// tag, so this backend owns every IPVS service of the namespace it runs in:
// use it only in a namespace of the agent's own (as Docker's lb-<net> sandbox).
// It serves VIP ports only. Ingress ports and every-port VIPs (`ports: []`)
// would need firewall marks: a mangle rule (iptables or nft) setting the mark
// plus an `ipvsadm -A -f MARK` service. The mark rule is outside what
// ipvsadm-restore programs, so it could not be applied or read back with the
// rest; they are reported unsupported.
import { desiredFrontends, type FrontendChange } from './frontends.js';
import type { ChangePlan, Plan } from './nft.js';
import type { LbProtocol, LbTable } from './types.js';

export interface IpvsService {
  proto: LbProtocol;
  /** `vip:port` */
  addr: string;
  scheduler: string;
  /** `ip:port` → weight (0: quiescent, keeps its connections, gets no new ones). */
  dests: Map<string, number>;
}

export interface IpvsState {
  /** Keyed `tcp 10.0.0.1:80`. */
  services: Map<string, IpvsService>;
}

export interface IpvsPlan extends Plan<IpvsState> {
  /** Frontends this backend cannot program, with the reason. */
  unsupported: string[];
}

export const ipvsScheduler = 'wrr';
export const emptyIpvsState = (): IpvsState => ({ services: new Map() });

const flag = (p: LbProtocol): string => (p === 'tcp' ? '-t' : '-u');

/** The IPVS service a frontend becomes (null: none), or why it cannot be one. */
function serviceOf(d: FrontendChange): { key: string; svc: IpvsService | null } | { unsupported: string } {
  if (d.fe.kind === 'ingress') return { unsupported: `ingress ${d.fe.proto} port ${d.fe.port}: the ipvs backend does not publish ingress ports; use lbBackend nft or iptables` };
  if (d.fe.kind === 'vip-any')
    return { unsupported: `VIP ${d.fe.vip} with every port (ports: []): the ipvs backend forwards listed ports only (every port needs a firewall mark that ipvsadm-restore cannot set); list the service's ports or use lbBackend nft or iptables` };
  const addr = `${d.fe.vip}:${d.fe.port}`;
  const key = `${d.fe.proto} ${addr}`;
  if (d.targets.length === 0) return { key, svc: null };
  return { key, svc: { proto: d.fe.proto, addr, scheduler: ipvsScheduler, dests: new Map(d.targets.map((t) => [t.target, t.weight])) } };
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

export function planIpvs(desired: LbTable, actual: IpvsState): IpvsPlan {
  const next: IpvsState = { services: new Map() };
  const unsupported: string[] = [];
  const lines: string[] = [];
  for (const [key, d] of desiredFrontends(desired)) {
    const s = serviceOf({ key, ...d });
    if ('unsupported' in s) unsupported.push(s.unsupported);
    else if (s.svc) next.services.set(s.key, s.svc);
  }
  for (const [k, a] of actual.services) if (!next.services.has(k)) diffService(a, null, lines);
  for (const [k, w] of next.services) diffService(actual.services.get(k), w, lines);
  return { program: lines.length > 0 ? lines.join('\n') + '\n' : '', next, ops: lines.length, unsupported };
}

/** The input for a few frontends; the cost depends on the change only. */
export function planIpvsChanges(changes: Iterable<FrontendChange>, actual: IpvsState): ChangePlan<IpvsState> & { unsupported: string[] } {
  const unsupported: string[] = [];
  const lines: string[] = [];
  const set = new Map<string, IpvsService | null>();
  for (const d of changes) {
    const s = serviceOf(d);
    if ('unsupported' in s) {
      if (d.targets.length > 0) unsupported.push(s.unsupported);
      continue;
    }
    diffService(actual.services.get(s.key), s.svc, lines);
    set.set(s.key, s.svc);
  }
  return {
    program: lines.length > 0 ? lines.join('\n') + '\n' : '',
    ops: lines.length,
    unsupported,
    commit(st: IpvsState): void {
      for (const [k, v] of set) {
        if (v) st.services.set(k, v);
        else st.services.delete(k);
      }
    },
  };
}

/** Deletes every IPVS service of the namespace (they are all ours, see above). */
export function ipvsTeardown(actual: IpvsState): string {
  return [...actual.services.values()].map((s) => `-D ${flag(s.proto)} ${s.addr}\n`).join('');
}

/** Parses `ipvsadm -S -n`. Fwmark and SCTP services, which we never create, are left out. */
export function parseIpvsSave(text: string): IpvsState {
  const st = emptyIpvsState();
  for (const line of text.split('\n')) {
    const svc = /^-A (-t|-u) (\S+) -s (\S+)/.exec(line);
    if (svc) {
      const proto: LbProtocol = svc[1] === '-t' ? 'tcp' : 'udp';
      st.services.set(`${proto} ${svc[2]}`, { proto, addr: svc[2]!, scheduler: svc[3]!, dests: new Map() });
      continue;
    }
    const dst = /^-a (-t|-u) (\S+) -r (\S+) .*-w (\d+)/.exec(line);
    if (dst) {
      const s = st.services.get(`${dst[1] === '-t' ? 'tcp' : 'udp'} ${dst[2]}`);
      s?.dests.set(dst[3]!, Number(dst[4]));
    }
  }
  return st;
}
