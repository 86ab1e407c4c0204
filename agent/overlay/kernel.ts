// The thin shell under the overlay planners: runs `ip`/`bridge` batches and
// `nft -f` inside a namespace (nsenter --net, which enters only the network
// stack), reads links, FDB and neighbor entries back as JSON, and makes and
// removes the /run/netns names of per-network namespaces.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { TsswarmError } from '../../lib/errors.js';
import { parseLinks } from './vxlan.js';
import { netnsPath } from './names.js';
import { parseFdb, parseNeigh } from './fdb.js';
import type { FdbEntry, LinkState, NeighEntry, NetnsRef } from './types.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const packageOf: Record<string, string> = { ip: 'iproute2', bridge: 'iproute2', nsenter: 'util-linux', nft: 'nftables' };

export function run(argv: readonly string[], input?: string): Promise<RunResult> {
  const [cmd, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => {
      const pkg = packageOf[cmd!];
      reject(
        err.code === 'ENOENT'
          ? new TsswarmError(
              'FAILED_PRECONDITION',
              `the ${cmd} command is missing${pkg ? `: install it with apt-get install ${pkg}` : ''}`,
              { cause: err },
            )
          : err,
      );
    });
    child.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** argv run inside namespace `ns` (its network stack only), or as is for the agent's own namespace. */
export const inNs = (ns: NetnsRef, argv: readonly string[]): string[] =>
  ns ? ['nsenter', `--net=${netnsPath(ns)}`, '--', ...argv] : [...argv];

const where = (ns: NetnsRef): string => (ns ? ` in ${ns}` : '');

/**
 * `ip -batch -` or `bridge -batch -` inside `ns`. Without `force` the batch
 * stops at the first failing line and this throws, quoting it; with `force`
 * every line is tried and the caller checks the outcome by reading back.
 */
export async function batch(
  tool: 'ip' | 'bridge',
  ns: NetnsRef,
  lines: readonly string[],
  what: string,
  o: { force?: boolean } = {},
): Promise<RunResult> {
  if (lines.length === 0) return { code: 0, stdout: '', stderr: '' };
  const r = await run(inNs(ns, [tool, ...(o.force ? ['-force'] : []), '-batch', '-']), lines.join('\n') + '\n');
  if (r.code !== 0 && !o.force) {
    const m = /line (\d+)/.exec(r.stderr) ?? /-:(\d+)/.exec(r.stderr);
    const line = m ? lines[Number(m[1]) - 1] : undefined;
    throw new TsswarmError(
      'INTERNAL',
      `${what}: ${tool} -batch${where(ns)} failed${line ? ` at "${line}"` : ''}: ${r.stderr.trim() || `exit status ${r.code}`}`,
    );
  }
  return r;
}

async function json(ns: NetnsRef, argv: readonly string[], what: string): Promise<string> {
  const r = await run(inNs(ns, argv));
  if (r.code !== 0)
    throw new TsswarmError('INTERNAL', `${what}: ${argv.join(' ')}${where(ns)} failed: ${r.stderr.trim() || `exit status ${r.code}`}`);
  return r.stdout;
}

export const netnsExists = (ref: string): boolean => existsSync(netnsPath(ref));

/** Links with their IPv4 addresses and details; undefined when the namespace is gone. */
export async function readLinks(ns: NetnsRef): Promise<LinkState[] | undefined> {
  if (ns && !netnsExists(ns)) return undefined;
  return parseLinks(await json(ns, ['ip', '-json', '-d', 'addr', 'show'], 'reading links'));
}

/** `via` of the default route, if any. */
export async function readDefaultVia(ns: NetnsRef): Promise<string | undefined> {
  const rows = JSON.parse((await json(ns, ['ip', '-json', 'route', 'show', 'default'], 'reading the default route')) || '[]') as {
    gateway?: string;
  }[];
  return rows[0]?.gateway;
}

export async function readFdb(ns: string, dev: string): Promise<FdbEntry[]> {
  return parseFdb(await json(ns, ['bridge', '-json', 'fdb', 'show', 'dev', dev], 'reading the FDB'));
}

export async function readNeigh(ns: string, dev: string): Promise<NeighEntry[]> {
  return parseNeigh(await json(ns, ['ip', '-json', 'neigh', 'show', 'dev', dev], 'reading neighbor entries'));
}

/** `ip netns add NAME` (a fresh namespace, bind-mounted under /run/netns). */
export async function netnsAdd(name: string): Promise<void> {
  const r = await run(['ip', 'netns', 'add', name]);
  if (r.code !== 0 && !netnsExists(name)) throw new TsswarmError('INTERNAL', `creating namespace ${name}: ${r.stderr.trim()}`);
}

/** `ip netns del NAME`: every link inside goes with it. Nothing to do when it is gone. */
export async function netnsDel(name: string): Promise<void> {
  if (!netnsExists(name)) return;
  const r = await run(['ip', 'netns', 'del', name]);
  if (r.code !== 0 && netnsExists(name)) throw new TsswarmError('INTERNAL', `removing namespace ${name}: ${r.stderr.trim()}`);
}

/** One `nft -f -` transaction inside `ns`. */
export async function nft(ns: NetnsRef, program: string, what: string): Promise<void> {
  const r = await run(inNs(ns, ['nft', '-f', '-']), program);
  if (r.code !== 0) throw new TsswarmError('INTERNAL', `${what}: nft -f${where(ns)} failed: ${r.stderr.trim() || `exit status ${r.code}`}`);
}

/** Writes a /proc/sys value as seen from inside `ns` (net.* sysctls are per namespace). */
export async function sysctl(ns: NetnsRef, key: string, value: string): Promise<void> {
  const path = `/proc/sys/${key.replace(/\./g, '/')}`;
  const r = await run(inNs(ns, ['sh', '-c', `echo ${value} > ${path}`]));
  if (r.code !== 0) throw new TsswarmError('INTERNAL', `setting ${key}=${value}${where(ns)}: ${r.stderr.trim()}`);
}
