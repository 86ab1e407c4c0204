// A node whose container runtime cannot start (here: runc and conmon not on
// its PATH) still joins the cluster, and the tasks sent to it are rejected with
// the reason, which `service ps` shows: a Swarm user learns why from the CLI,
// not from a daemon log.
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { TaskState } from '../../proto/gen/objects.js';
import { canRunSandbox, joinByCli, until } from './helpers.js';

// The worker's daemon gets a PATH that holds nsenter (the sandbox starts daemons with it) and no runc or conmon.
const bin = `/tmp/tss-e2er-bin-${process.pid}`;

const sb = new Sandbox({
  root: `/tmp/tss-e2er-${process.pid}`,
  prefix: `tss-r${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    // The worker's daemon finds no runc or conmon.
    return h.role === 'worker' ? { ...d, env: { ...d.env, PATH: bin } } : d;
  },
});

describe.skipIf(!canRunSandbox)('a node without a usable container runtime', () => {
  let M = '';
  beforeAll(async () => {
    mkdirSync(bin, { recursive: true });
    symlinkSync('/usr/bin/nsenter', `${bin}/nsenter`);
    // No image preload: loading one needs a runtime, and the task never gets that far.
    await sb.up({ managers: 1, workers: 1, preloadImages: false, bootstrap: (s) => joinByCli(s) });
    M = sb.hosts()[0]!.name;
    await until(
      '2 READY nodes',
      async () => {
        const r = await sb.execCapture(M, ['tsswarm', 'node', 'ls', '--format', 'json'], { timeoutMs: 30_000 });
        const ns = r.code === 0 ? (JSON.parse(r.stdout) as { Status: { State: string } }[]) : [];
        return ns.length === 2 && ns.every((n) => n.Status.State === 'ready');
      },
      90_000,
    );
  }, 180_000);

  afterAll(async () => {
    await sb.down();
    rmSync(bin, { recursive: true, force: true });
  }, 120_000);

  it('joins, and rejects the tasks sent to it with the reason, which service ps shows', async () => {
    const c = await sb.execCapture(
      M,
      [
        'tsswarm',
        'service',
        'create',
        '--detach',
        '--name',
        'nort',
        '--constraint',
        'node.role==worker',
        '--restart-condition',
        'none',
        SANDBOX_IMAGE,
        'sleep',
        '3600',
      ],
      { timeoutMs: 60_000 },
    );
    expect(c.code, c.stderr).toBe(0);
    const t = await until(
      'the task rejected',
      async () => {
        const r = await sb.execCapture(M, ['tsswarm', 'service', 'ps', '--format', 'json', 'nort'], { timeoutMs: 30_000 });
        const ts = JSON.parse(r.stdout) as { status: { state: number; err: string } }[];
        return ts.find((x) => x.status.state === TaskState.REJECTED);
      },
      60_000,
      500,
    );
    expect(t.status.err).toMatch(/^this node cannot run containers: runc is not installed: containers need it \(apt-get install runc\)/);
    const ps = await sb.execCapture(M, ['tsswarm', 'service', 'ps', '--no-trunc', 'nort'], { timeoutMs: 30_000 });
    expect(ps.stdout).toMatch(/Rejected.*this node cannot run containers: runc is not installed/);
  }, 120_000);
});
