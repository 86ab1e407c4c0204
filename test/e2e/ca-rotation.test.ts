// Root CA rotation end to end on a sandbox of real daemons (3 managers, 2
// workers, and a spare host that joins afterwards): `swarm ca --rotate` run
// on a follower while a service runs; the tasks keep running (same task ids,
// same container processes and start times); at the end every host's
// node.pem chains to the new root and not to the old one, and its ca.pem
// holds the new root alone; the old worker token is refused by a joining
// node's CA check, the new one works. Then a second rotation with a worker
// stopped: it waits for that node (and survives a change of leader meanwhile),
// which renews once it is back; managers, autolocked, keep their keys encrypted.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDigest, type CAError, splitCertificates, verifyNodeCert } from '../../ca/index.js';
import { DAEMON_PORT, defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { TaskState } from '../../proto/gen/objects.js';
import { have } from '../have.js';
import { canRunSandbox, joinByCli, until, tsswarmOn } from './helpers.js';

const canRun = canRunSandbox && have('conmon') && have('runc');
const prefix = `tss-r${process.pid % 1000}-`;
const sb = new Sandbox({
  root: `/tmp/tss-e2eca-${process.pid}`,
  prefix,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '1000'] };
  },
});

const { ts, ok } = tsswarmOn(sb, 120_000);

interface TaskJson {
  meta: { id: string };
  nodeId: string;
  desiredState: number;
  status: { state: number; pid: number };
}

/** A process's start time in clock ticks since boot (/proc/PID/stat field 22): a restarted container has another. */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

const certs = (stateDir: string): { ca: string; node: string } => ({
  ca: readFileSync(join(stateDir, 'certificates', 'ca.pem'), 'utf8'),
  node: readFileSync(join(stateDir, 'certificates', 'node.pem'), 'utf8'),
});

function reasonOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as CAError).reason ?? (e as Error).message;
  }
  return 'accepted';
}

const netnsWithPrefix = (): string[] =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));

describe.skipIf(!canRun)('root CA rotation on real daemons', () => {
  let hosts: ReturnType<Sandbox['hosts']> = [];
  beforeAll(async () => {
    // Three workers, the last held back: it joins after the rotation.
    await sb.up({ managers: 3, workers: 3, preloadImages: true, bootstrap: (s) => joinByCli(s, 1) });
    hosts = sb.hosts();
  }, 240_000);
  afterAll(async () => {
    await sb.down();
    // Every namespace the sandbox made is gone.
    expect(netnsWithPrefix()).toEqual([]);
  }, 60_000);

  it('rotates with no task restarted; every node ends on the new root alone; the old join token is refused', async () => {
    const [m1, m2, m3] = hosts.filter((h) => h.role === 'manager').map((h) => h.name);
    const members = hosts.slice(0, 5);
    const spare = hosts[5]!;
    const oldRoot = await ok(m1!, 'swarm', 'ca');
    expect(splitCertificates(oldRoot)).toHaveLength(1);
    const oldWorkerToken = (await ok(m1!, 'join-token', '-q', 'worker')).trim();

    await ok(m1!, 'service', 'create', '--detach', '--name', 'web', '--replicas', '5', SANDBOX_IMAGE, 'sleep', '1d');
    const running = async (): Promise<TaskJson[]> =>
      (JSON.parse(await ok(m1!, 'service', 'ps', '--format', 'json', 'web')) as TaskJson[]).filter(
        (t) => t.desiredState === TaskState.RUNNING && t.status.state === TaskState.RUNNING,
      );
    const before = await until(
      '5 running tasks of web',
      async () => {
        const r = await running();
        return r.length === 5 ? r : false;
      },
      90_000,
    );
    const started = new Map(before.map((t) => [t.meta.id, { pid: t.status.pid, at: startTime(t.status.pid) }]));

    // On a follower: forwarded to the leader; it shows progress until every node has moved.
    const rot = await ts(m2!, 'swarm', 'ca', '--rotate');
    expect(rot.code, rot.err).toBe(0);
    expect(rot.out).toMatch(/Root CA rotation done: every node has a certificate from the new root/);
    const newRoot = rot.out.slice(rot.out.indexOf('-----BEGIN CERTIFICATE-----'));
    expect(splitCertificates(newRoot)).toHaveLength(1);
    expect(newRoot).not.toBe(oldRoot);
    await until('every manager to show the new root', async () => {
      for (const m of [m1!, m2!, m3!]) if ((await ok(m, 'swarm', 'ca')) !== newRoot) return false;
      return true;
    });
    expect(await ok(m3!, 'info')).toMatch(/Root Rotation In Progress: false/);

    // Every node takes the new root alone on a heartbeat, and drops the cross-signed certificate from its chain.
    await until(
      'every node holding the new root alone',
      async () => members.every((h) => bundleDigest(certs(h.stateDir).ca) === bundleDigest(newRoot)),
      60_000,
    );
    for (const h of members) {
      const { node } = certs(h.stateDir);
      expect(splitCertificates(node), h.name).toHaveLength(1);
      expect(verifyNodeCert(newRoot, node, { now: Date.now() }).nodeId, h.name).toMatch(/\w/);
      expect(
        reasonOf(() => verifyNodeCert(oldRoot, node, { now: Date.now() })),
        h.name,
      ).toBe('CERT_UNTRUSTED');
    }

    // No task restarted: the same tasks, the same container processes started at the same moment.
    const after = await running();
    expect(after.map((t) => t.meta.id).sort()).toEqual([...started.keys()].sort());
    for (const t of after) {
      expect(t.status.pid).toBe(started.get(t.meta.id)!.pid);
      expect(startTime(t.status.pid)).toBe(started.get(t.meta.id)!.at);
    }
    const ls = JSON.parse(await ok(m1!, 'node', 'ls', '--format', 'json')) as { Status: { State: string } }[];
    expect(ls.map((n) => n.Status.State)).toEqual(['ready', 'ready', 'ready', 'ready', 'ready']);
    // The cluster still takes writes.
    await ok(m3!, 'service', 'scale', 'web=6');

    // The old token pins the old root: the joining node's CA check refuses the managers; the new token works.
    const refused = await ts(spare.name, 'join', '--token', oldWorkerToken, `${hosts[0]!.addr}:${DAEMON_PORT}`);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/does not match the CA digest in the join token/);
    const newWorkerToken = (await ok(m1!, 'join-token', '-q', 'worker')).trim();
    expect(newWorkerToken).not.toBe(oldWorkerToken);
    await ok(spare.name, 'join', '--token', newWorkerToken, `${hosts[0]!.addr}:${DAEMON_PORT}`);
    expect(verifyNodeCert(newRoot, certs(spare.stateDir).node, { now: Date.now() }).role).toBe('worker');
  }, 240_000);

  it('a node that is down holds a rotation, across a change of leader; back, it renews from the new root and the rotation ends', async () => {
    const [m1] = hosts.filter((h) => h.role === 'manager').map((h) => h.name);
    const worker = hosts[4]!;
    const before = await ok(m1!, 'swarm', 'ca');
    // With autolock on, managers keep their TLS key encrypted on disk through the rotation.
    await ok(m1!, 'swarm', 'update', '--autolock=true');
    const managerDirs = hosts.filter((h) => h.role === 'manager').map((h) => h.stateDir);
    await until('every manager keeping its TLS key encrypted', async () =>
      managerDirs.every((d) => readFileSync(join(d, 'certificates', 'node.key'), 'utf8').includes('ENCRYPTED PRIVATE KEY')),
    );
    expect(await sb.stop(worker.name)).toBe(true);
    try {
      const started = await ok(m1!, 'swarm', 'ca', '--rotate', '--detach');
      expect(started).toMatch(/^Root CA rotation started: 0\/6 nodes have certificates from the new root/);
      // Every node but the stopped one moves; the rotation waits for it, and says so.
      const stuck = await until(
        'the rotation held by the stopped worker alone',
        async () => {
          const r = await ts(m1!, 'swarm', 'ca');
          return r.err.includes(`5/6 nodes have certificates from the new root (waiting for ${worker.name})`) ? r : false;
        },
        60_000,
      );
      expect(stuck.out).toBe(before);
      expect(await ok(m1!, 'info')).toMatch(/Root Rotation In Progress: true \(5\/6 nodes have certificates from the new root\)/);
      // The stopped node still holds the previous root alone.
      expect(bundleDigest(certs(worker.stateDir).ca)).toBe(bundleDigest(before));
      // The rotation lives in the cluster object: another leader carries it on.
      await ok(m1!, 'node', 'transfer-leader');
    } finally {
      await sb.start(worker.name);
    }
    // Back, it reaches the managers with its old certificate (they still trust the old root), renews, and the rotation ends.
    const newRoot = await until(
      'the rotation to end',
      async () => {
        const r = await ts(m1!, 'swarm', 'ca');
        return r.code === 0 && r.err === '' && r.out !== before ? r.out : false;
      },
      60_000,
    );
    await until(
      'the worker holding the new root alone',
      async () => bundleDigest(certs(worker.stateDir).ca) === bundleDigest(newRoot),
      30_000,
    );
    expect(verifyNodeCert(newRoot, certs(worker.stateDir).node, { now: Date.now() }).role).toBe('worker');
    expect(reasonOf(() => verifyNodeCert(before, certs(worker.stateDir).node, { now: Date.now() }))).toBe('CERT_UNTRUSTED');
    for (const d of managerDirs) {
      expect(readFileSync(join(d, 'certificates', 'node.key'), 'utf8')).toContain('ENCRYPTED PRIVATE KEY');
      expect(verifyNodeCert(newRoot, certs(d).node, { now: Date.now() }).role).toBe('manager');
    }
    await ok(m1!, 'service', 'scale', 'web=4');
  }, 180_000);
});
