// `tsswarm swarm ca`: print the root CA, rotate it (showing the nodes moving
// to the new root until every one has), and set node certificates' validity
// (the same setting as `swarm update --cert-expiry`). Flags docker has that
// tsswarm cannot honour (an external CA, a root of the user's own) are
// refused by name.
import type { RootCAStatus } from '../proto/gen/control.js';
import { TsswarmError, UsageError } from '../lib/errors.js';
import { parseCertExpiry } from '../spec/cluster.js';
import { controlApi, controlRead, daemonApi } from './client.js';
import { type Io, leaf } from './command.js';

/** Poll period while a rotation is shown. */
export const CA_POLL_MS = 500;

/** The progress line of a rotation. */
export function rotationLine(s: Pick<RootCAStatus, 'nodesDone' | 'nodesTotal' | 'pendingNodes'>): string {
  const waiting = s.nodesDone < s.nodesTotal && s.pendingNodes.length ? ` (waiting for ${s.pendingNodes.join(', ')})` : '';
  return `rotating the root CA: ${s.nodesDone}/${s.nodesTotal} nodes have certificates from the new root${waiting}`;
}

const UNSUPPORTED: Record<string, string> = {
  'external-ca': '--external-ca is not supported: tsswarm signs node certificates itself, with no external CA',
  'ca-cert': '--ca-cert is not supported: tsswarm rotates to a root it creates; supplying your own root certificate is not implemented',
  'ca-key': '--ca-key is not supported: tsswarm rotates to a root it creates; supplying your own root key is not implemented',
};

async function setCertExpiry(ms: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const info = await daemonApi('info');
    if (!info.isManager) throw new TsswarmError('FAILED_PRECONDITION', 'this node is not a manager: run `tsswarm swarm ca` on a manager');
    try {
      await controlApi('updateCluster', {
        version: info.clusterVersion,
        settings: { taskHistoryLimit: 0, dispatcherHeartbeatMs: 0, certExpiryMs: ms, snapshotInterval: 0, autolock: false },
        set: ['cert-expiry'],
      });
      return;
    } catch (e) {
      if (attempt < 5 && (e as TsswarmError).code === 'CONFLICT') continue;
      throw e;
    }
  }
}

/** Polls until the rotation to `newRoot` ends; the root then, or null when another rotation replaced this one. */
async function watchRotation(io: Io, newRoot: string, quiet: boolean, shown: string): Promise<string | null> {
  let last = shown;
  for (;;) {
    const s = await controlRead(io, 'getRootCAStatus');
    if (!s.rotationInProgress) return s.rootCaCertPem === newRoot ? s.rootCaCertPem : null;
    if (s.newRootCaCertPem !== newRoot) return null;
    const line = rotationLine(s);
    if (!quiet && line !== last) io.stdout.write(`${line}\n`);
    last = line;
    await new Promise((r) => setTimeout(r, CA_POLL_MS));
  }
}

export const swarmCaCommand = leaf({
  name: 'ca',
  summary: 'Display and rotate the root CA',
  usage: '[OPTIONS]',
  description:
    'Without options, prints the root CA certificate. --rotate creates a new root CA: nodes trust both roots meanwhile, ' +
    'each renews its certificate from the new root (certificates come with a copy of the new root signed by the old one, ' +
    'so nodes that still trust only the old root accept them), and once every node has, the old root is dropped and the ' +
    'join tokens change. A node that is down holds the rotation until it is back or removed (`tsswarm node rm`).',
  flags: {
    rotate: { type: 'boolean', description: 'Rotate to a new root CA (a second --rotate restarts a rotation under way)' },
    detach: { type: 'boolean', short: 'd', description: 'Return once the rotation has started, without waiting for it to end' },
    quiet: { type: 'boolean', short: 'q', description: 'Print no progress' },
    'cert-expiry': { type: 'string', valueName: 'DURATION', description: 'Validity of node certificates (default 2160h0m0s)' },
    'external-ca': { type: 'string', valueName: 'SPEC', description: 'Not supported: refused' },
    'ca-cert': { type: 'string', valueName: 'FILE', description: 'Not supported: refused' },
    'ca-key': { type: 'string', valueName: 'FILE', description: 'Not supported: refused' },
  },
  async run({ flags, positionals, io, path }) {
    if (positionals.length) throw new UsageError(`"${path}" accepts no arguments (got "${positionals.join(' ')}")`);
    for (const f of ['external-ca', 'ca-cert', 'ca-key'] as const)
      if (flags[f] !== undefined) throw new UsageError(UNSUPPORTED[f]!, { field: `--${f}` });
    if (flags.detach && !flags.rotate) throw new UsageError('--detach only applies to --rotate', { field: '--detach' });
    const expiry = flags['cert-expiry'] === undefined ? undefined : parseCertExpiry(flags['cert-expiry']);
    if (expiry !== undefined) await setCertExpiry(expiry);
    if (!flags.rotate) {
      const s = await controlRead(io, 'getRootCAStatus');
      io.stdout.write(s.rootCaCertPem);
      if (s.rotationInProgress && !flags.quiet) io.stderr.write(`${rotationLine(s)}\n`);
      return 0;
    }
    const started = await controlApi('rotateRootCA');
    if (flags.detach) {
      if (!flags.quiet) io.stdout.write(`Root CA rotation started: ${rotationLine(started).replace(/^rotating the root CA: /, '')}\n`);
      return 0;
    }
    // The state the rotation started in is shown at once: the first poll may come after it has moved on.
    const first = rotationLine(started);
    if (!flags.quiet) io.stdout.write(`${first}\n`);
    const root = await watchRotation(io, started.newRootCaCertPem, flags.quiet, first);
    if (root === null) {
      io.stderr.write('another `swarm ca --rotate` replaced this rotation; `tsswarm swarm ca` shows where it stands\n');
      return 1;
    }
    if (!flags.quiet) io.stdout.write('Root CA rotation done: every node has a certificate from the new root.\n');
    io.stdout.write(root);
    return 0;
  },
});
