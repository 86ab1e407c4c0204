// The kernel programs that build a sandbox, as text: `ip -batch` lines and an
// `nft -f` ruleset. Pure, so each line is unit-tested; kernel.ts runs them.
import { UNDERLAY_BRIDGE, UNDERLAY_MTU, type SandboxHost } from './layout.js';

/** Run in the root namespace: only `netns add`, so nothing appears among its links. */
export function namespacesProgram(names: readonly string[]): string[] {
  return names.map((n) => `netns add ${n}`);
}

/**
 * Run inside the underlay namespace (`ip -n UL -batch -`): the bridge, and per
 * host a veth made here whose peer is born as eth0 inside the host's namespace.
 */
export function underlayProgram(hosts: readonly Pick<SandboxHost, 'name' | 'underlayPort'>[]): string[] {
  return [
    'link set lo up',
    `link add ${UNDERLAY_BRIDGE} type bridge`,
    `link set ${UNDERLAY_BRIDGE} mtu ${UNDERLAY_MTU} up`,
    ...hosts.flatMap((h) => [
      `link add ${h.underlayPort} mtu ${UNDERLAY_MTU} type veth peer name eth0 netns ${h.name}`,
      `link set ${h.underlayPort} master ${UNDERLAY_BRIDGE} up`,
    ]),
  ];
}

/** Run inside a host's namespace: loopback, and eth0 with its address. */
export function hostProgram(host: Pick<SandboxHost, 'addr'>, prefixLength: number): string[] {
  return ['link set lo up', `addr add ${host.addr}/${prefixLength} dev eth0`, 'link set eth0 up'];
}

export function deleteNamespacesProgram(names: readonly string[]): string[] {
  return names.map((n) => `netns del ${n}`);
}

/**
 * Cutting a host drops every frame the underlay bridge would forward to or
 * from its port: the host keeps eth0 up and its neighbour cache, as when a
 * switch partitions it, and heal is one set element away.
 */
export const CUT_TABLE = 'tss-sandbox';
export const CUT_SET = 'cut';

export function cutTableRuleset(): string {
  return [
    `table bridge ${CUT_TABLE} {`,
    `  set ${CUT_SET} { type ifname; }`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    `    iifname @${CUT_SET} drop`,
    `    oifname @${CUT_SET} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The nft command (as argv after `nft`) that puts a port in the cut set or takes it out. */
export function cutElementArgs(port: string, cut: boolean): string[] {
  return [cut ? 'add' : 'delete', 'element', 'bridge', CUT_TABLE, CUT_SET, `{ "${port}" }`];
}

/** The ports in the cut set, from `nft -j list set bridge tss-sandbox cut`. */
export function parseCutSet(json: string): string[] {
  const doc = JSON.parse(json) as { nftables?: Array<{ set?: { elem?: unknown[] } }> };
  const set = doc.nftables?.find((e) => e.set)?.set;
  return (set?.elem ?? []).filter((e): e is string => typeof e === 'string');
}

/**
 * One-way cuts (the chaos nemesis): frames from one host's port to another's
 * are dropped at the bridge, frames back still pass. A table of its own, made
 * on first use, so a sandbox made before it existed can use it too.
 */
export const ONEWAY_TABLE = 'tss-sandbox-oneway';
export const ONEWAY_SET = 'pairs';

export function oneWayTableRuleset(): string {
  return [
    `table bridge ${ONEWAY_TABLE} {`,
    `  set ${ONEWAY_SET} { type ifname . ifname; }`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    `    iifname . oifname @${ONEWAY_SET} drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The nft argv (after `nft`) that drops frames from port `from` to port `to`, or stops dropping them. */
export function oneWayElementArgs(from: string, to: string, cut: boolean): string[] {
  return [cut ? 'add' : 'delete', 'element', 'bridge', ONEWAY_TABLE, ONEWAY_SET, `{ "${from}" . "${to}" }`];
}

/** The (from, to) port pairs in the one-way set, from `nft -j list set bridge tss-sandbox-oneway pairs`. */
export function parseOneWaySet(json: string): Array<[string, string]> {
  const doc = JSON.parse(json) as { nftables?: Array<{ set?: { elem?: unknown[] } }> };
  const set = doc.nftables?.find((e) => e.set)?.set;
  const out: Array<[string, string]> = [];
  for (const e of set?.elem ?? []) {
    const c = (e as { concat?: unknown }).concat;
    if (Array.isArray(c) && c.length === 2 && typeof c[0] === 'string' && typeof c[1] === 'string') out.push([c[0], c[1]]);
  }
  return out;
}
