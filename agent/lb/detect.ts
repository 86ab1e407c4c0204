// Which load-balancing backends this host (or namespace) can run, and the one
// to use: the `lbBackend` option when given (refused, with the reason, when
// that backend cannot run), else nft, then iptables, then ipvs.
import { UsageError } from '../../lib/errors.js';
import { runIn } from './exec.js';
import { lbBackendKinds, type LbBackendKind } from './types.js';

export type Availability = { ok: true } | { ok: false; reason: string };
export type LbDetection = Record<LbBackendKind, Availability>;

/** Preference when no backend is asked for (README.md says why). */
export const lbBackendPreference: readonly LbBackendKind[] = ['nft', 'iptables', 'ipvs'];

async function works(netns: string | undefined, cmd: string, args: string[]): Promise<Availability> {
  try {
    const r = await runIn(netns, cmd, args, '', 20_000);
    return r.code === 0
      ? { ok: true }
      : { ok: false, reason: `${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n')[0] ?? ''}` };
  } catch (err) {
    return { ok: false, reason: `${cmd} cannot run (${(err as Error).message}): install it` };
  }
}

async function ipvs(netns: string | undefined): Promise<Availability> {
  const tool = await works(undefined, 'sh', ['-c', 'command -v ipvsadm-restore']);
  if (!tool.ok) return { ok: false, reason: 'ipvsadm-restore is not installed (Debian package ipvsadm)' };
  // /proc/net/ip_vs exists in every namespace once the ip_vs module is in the kernel.
  const probe = (): Promise<Availability> => works(netns, 'cat', ['/proc/net/ip_vs']);
  if ((await probe()).ok) return { ok: true };
  const modprobe = await works(undefined, 'sh', ['-c', 'command -v modprobe']);
  const loaded = modprobe.ok
    ? await works(undefined, 'modprobe', ['ip_vs'])
    : ({ ok: false, reason: 'no modprobe here to load it' } as const);
  if (loaded.ok && (await probe()).ok) return { ok: true };
  return { ok: false, reason: `the kernel has no IPVS (/proc/net/ip_vs is missing${loaded.ok ? '' : `; ip_vs module: ${loaded.reason}`})` };
}

export async function detectLbBackends(netns?: string): Promise<LbDetection> {
  const [nft, save, restore, ip] = await Promise.all([
    works(netns, 'nft', ['list', 'tables']),
    works(netns, 'iptables-save', ['-t', 'nat']),
    works(undefined, 'iptables-restore', ['--version']),
    ipvs(netns),
  ]);
  // The ipvs backend marks every-port VIPs and ingress ports with nft.
  const ipvsOk: Availability = !ip.ok
    ? ip
    : nft.ok
      ? ip
      : { ok: false, reason: `the ipvs backend sets its firewall marks with nft, which cannot run here (${nft.reason})` };
  return { nft, iptables: !save.ok ? save : restore, ipvs: ipvsOk };
}

export function chooseLbBackend(det: LbDetection, override?: string): LbBackendKind {
  if (override !== undefined) {
    if (!(lbBackendKinds as readonly string[]).includes(override))
      throw UsageError.invalid('lbBackend', `one of ${lbBackendKinds.join(', ')}`, override);
    const a = det[override as LbBackendKind];
    if (a.ok) return override as LbBackendKind;
    const usable = lbBackendPreference.filter((k) => det[k].ok);
    throw new UsageError(
      `lbBackend ${override} cannot run here: ${a.reason}; ${usable.length ? `use ${usable.join(' or ')}` : 'no backend can run: install nftables'}`,
      { field: 'lbBackend' },
    );
  }
  const k = lbBackendPreference.find((b) => det[b].ok);
  if (k) return k;
  throw new UsageError(
    `no load-balancing backend can run here: ${lbBackendPreference.map((b) => `${b}: ${(det[b] as { reason: string }).reason}`).join('; ')}`,
    { field: 'lbBackend' },
  );
}
