// Optional redirect mode: the server listens on ephemeral ports of 127.0.0.11
// and an nft table in the container's namespace sends 127.0.0.11:53 there, so
// port 53 stays free for a container that serves DNS itself (as Swarm does).
import { execFile } from 'node:child_process';
import { EMBEDDED_DNS_ADDRESS } from './resolvconf.js';

/** The table name inside the container's namespace (tss prefix: ours to delete). */
export const REDIRECT_TABLE = 'tss-dns';

/**
 * The nft program that (re)creates the redirect: one transaction that
 * replaces any earlier table, so re-attaching after an agent restart is
 * idempotent. Conntrack rewrites the answers' source back to :53.
 */
export function redirectProgram(udpPort: number, tcpPort: number, address = EMBEDDED_DNS_ADDRESS): string {
  return [
    `add table ip ${REDIRECT_TABLE}`,
    `delete table ip ${REDIRECT_TABLE}`,
    `table ip ${REDIRECT_TABLE} {`,
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    `    ip daddr ${address} udp dport 53 dnat to ${address}:${udpPort}`,
    `    ip daddr ${address} tcp dport 53 dnat to ${address}:${tcpPort}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export const removeRedirectProgram = (): string => `add table ip ${REDIRECT_TABLE}\ndelete table ip ${REDIRECT_TABLE}\n`;

/** Runs an nft program inside the namespace at `netnsPath` (nsenter enters only the network namespace). */
export function runNft(netnsPath: string, program: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('nsenter', [`--net=${netnsPath}`, 'nft', '-f', '-'], { timeout: 10_000 }, (err, _out, stderr) => {
      if (err) reject(new Error(`nft in ${netnsPath} failed: ${stderr.trim() || err.message}`));
      else resolve();
    });
    // EPIPE when nsenter fails before reading (the namespace is gone): the exit status tells; an unhandled one would end the daemon.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(program);
  });
}
