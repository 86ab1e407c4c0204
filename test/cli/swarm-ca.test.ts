// `tsswarm swarm ca` against a lone manager's Control API and info on a unix
// socket (as the daemon serves them): printing the root, --cert-expiry as
// `swarm update` sets it, the flags it cannot honour refused by name, a
// detached rotation, and an attached one that shows progress until the
// leader ends it (the node's renewal written as the CA writes it).
import type * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caDigest } from '../../ca/index.js';
import { rotationLine } from '../../cli/ca.js';
import { clusterCommands } from '../../cli/cluster.js';
import type { Command } from '../../cli/command.js';
import { Node } from '../../proto/gen/objects.js';
import { clusterSettings } from '../../spec/cluster.js';
import { until } from '../lib/wait.js';
import { type LoneManager, startLoneManager } from '../manager/lone-manager.js';
import { serveLoneManager } from './lone-cli.js';
import { runCommand } from './run-command.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-swarm-ca-cli-'));
const sock = join(dir, 'cli.sock');
let cliServer: grpc.Server;
let lone: LoneManager;

const command = (name: string): Command => clusterCommands.find((c) => c.name === name)!;
const tss = (...argv: string[]) => runCommand({ swarm: command('swarm'), info: command('info') }, `unix://${sock}`, argv);

beforeAll(async () => {
  lone = await startLoneManager('m1', 'c-swarm-ca-cli');
  cliServer = await serveLoneManager(lone, sock);
}, 30_000);

afterAll(async () => {
  await new Promise<void>((res) => cliServer?.tryShutdown(() => res()));
  await lone?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** What the CA writes when node m1 renews from `rootPem`. */
async function m1RenewedFrom(rootPem: string): Promise<void> {
  const m = lone.manager;
  const n = m.store.view((tx) => tx.nodes.get('m1'))!;
  await m.store.update((tx) => tx.nodes.update(Node.create({ ...n, certificate: { ...n.certificate!, rootDigest: caDigest(rootPem) } })));
}

describe('tsswarm swarm ca', () => {
  it('prints the root CA; --cert-expiry is the setting swarm update sets', async () => {
    expect(await tss('swarm', 'ca')).toEqual({ code: 0, out: lone.ca.certPem, err: '' });
    const r = await tss('swarm', 'ca', '--cert-expiry', '720h');
    expect(r).toEqual({ code: 0, out: lone.ca.certPem, err: '' });
    expect(clusterSettings(lone.manager.cluster()!.spec).certExpiryMs).toBe(720 * 3_600_000);
    expect((await tss('swarm', 'ca', '--cert-expiry', '30m')).err).toMatch(/^tsswarm: --cert-expiry must be a duration of at least 1h/);
  });

  it('refuses what it cannot honour, naming the flag, and changes nothing', async () => {
    const version = lone.manager.cluster()!.meta.version;
    for (const [flag, why] of [
      ['--external-ca', /--external-ca is not supported/],
      ['--ca-cert', /--ca-cert is not supported/],
      ['--ca-key', /--ca-key is not supported/],
    ] as const) {
      const r = await tss('swarm', 'ca', '--rotate', flag, 'x');
      expect(r.code).toBe(1);
      expect(r.err).toMatch(why);
    }
    expect((await tss('swarm', 'ca', '--detach')).err).toMatch(/--detach only applies to --rotate/);
    expect(lone.manager.cluster()!.meta.version).toBe(version);
    expect(lone.manager.cluster()!.spec.rootRotation).toBeFalsy();
  });

  it('--rotate --detach returns at once; info and `swarm ca` show the rotation; --rotate shows progress until it ends', async () => {
    const d = await tss('swarm', 'ca', '--rotate', '--detach');
    expect(d).toEqual({
      code: 0,
      out: 'Root CA rotation started: 0/1 nodes have certificates from the new root (waiting for m1)\n',
      err: '',
    });
    expect((await tss('info')).out).toMatch(/Root Rotation In Progress: true \(0\/1 nodes have certificates from the new root\)/);
    const shown = await tss('swarm', 'ca');
    expect(shown.out).toBe(lone.ca.certPem);
    expect(shown.err).toBe(`${rotationLine({ nodesDone: 0, nodesTotal: 1, pendingNodes: ['m1'] })}\n`);

    // Attached: a second rotation restarts it; once the node holds a certificate from the newest root, the leader ends it.
    const attached = tss('swarm', 'ca', '--rotate');
    const newRoot = await until(
      'the restarted rotation',
      () => {
        const r = lone.manager.cluster()!.spec.rootRotation;
        return r && r.supersededCaCertPems.length === 1 ? r.caCertPem : undefined;
      },
      { timeoutMs: 8_000, everyMs: 20 },
    );
    await m1RenewedFrom(newRoot);
    const r = await attached;
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('rotating the root CA: 0/1 nodes have certificates from the new root (waiting for m1)\n');
    expect(r.out).toContain(`Root CA rotation done: every node has a certificate from the new root.\n${newRoot}`);
    expect((await tss('swarm', 'ca')).out).toBe(newRoot);
    expect((await tss('info')).out).toMatch(/Root Rotation In Progress: false/);
  }, 20_000);
});
