// Hostile images on a real sandbox host: each crafted archive (test/hostile-
// images.ts) is loaded with `tsswarm image load`, run as a service and removed
// with `image rm`. A canary directory outside the daemon's state directory is
// checksummed before and after: no image may create, write, link, read into or
// delete anything there. The daemon stays up, and `service ps` shows each
// task's outcome with its reason.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Sandbox } from '../../deploy/sandbox/index.js';
import { TaskState } from '../../proto/gen/objects.js';
import { busyboxLayer, dockerSave, hostileLayers, treeDigest } from '../hostile-images.js';
import { canRunSandbox, joinByCli, until } from './helpers.js';

const scratch = `/tmp/tss-e2eh-${process.pid}`;
const canary = `/tmp/tss-e2eh-canary-${process.pid}`;
const sb = new Sandbox({ root: `/tmp/tss-e2eh-sb-${process.pid}`, prefix: `tss-h${process.pid % 1000}-` });

describe.skipIf(!canRunSandbox)('hostile images on a sandbox host', () => {
  let M = '';
  beforeAll(async () => {
    mkdirSync(scratch, { recursive: true });
    mkdirSync(`${canary}/sub`, { recursive: true });
    writeFileSync(`${canary}/file1`, 'canary one\n');
    writeFileSync(`${canary}/sub/file2`, 'canary two\n');
    await sb.up({ managers: 1, workers: 0, bootstrap: (s) => joinByCli(s) });
    M = sb.hosts()[0]!.name;
  }, 300_000);

  afterAll(async () => {
    await sb.down();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(canary, { recursive: true, force: true });
  }, 120_000);

  const cli = async (argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    sb.execCapture(M, ['tsswarm', ...argv], { timeoutMs: 60_000 });

  it('no crafted layer escapes its directory; the daemon stays up and service ps says why', async () => {
    const before = treeDigest(canary);
    const base = await busyboxLayer(scratch);
    const outcomes: string[] = [];
    for (const h of hostileLayers(canary)) {
      const tag = `tss/hostile-${h.name}:latest`;
      const archive = `${scratch}/${h.name}.tar.gz`;
      writeFileSync(archive, gzipSync(dockerSave([base.layer, h.layer], tag, h.diffId ? { diffIds: [base.diffId, h.diffId] } : {})));
      const load = await cli(['image', 'load', '-i', archive]);
      // Refused: a clear error, never a stack trace. Loaded: the layer was kept inside its directory.
      if (load.code !== 0) expect(load.stderr, h.name).toMatch(/^tsswarm: \S/);
      expect(load.stderr, h.name).not.toMatch(/\n\s+at /);
      const svc = `hostile-${h.name}`;
      const c = await cli(['service', 'create', '--detach', '--name', svc, '--restart-condition', 'none', tag]);
      expect(c.code, `${h.name}: ${c.stderr}`).toBe(0);
      const task = await until(
        `${svc}: a task running or rejected`,
        async () => {
          const r = await cli(['service', 'ps', '--format', 'json', svc]);
          const ts = r.code === 0 ? (JSON.parse(r.stdout) as { status: { state: number; err: string; message: string } }[]) : [];
          return ts.find((t) => t.status.state === TaskState.RUNNING || t.status.state >= TaskState.FAILED);
        },
        90_000,
        500,
      );
      if (load.code !== 0) {
        // The image never got in: the task is rejected, and the reason says the image is not on the node.
        expect(task.status.state, `${h.name}: ${JSON.stringify(task.status)}`).toBe(TaskState.REJECTED);
        expect(task.status.err, h.name).toMatch(/is not on node/);
        const ps = await cli(['service', 'ps', '--no-trunc', svc]);
        expect(ps.stdout, h.name).toMatch(/Rejected.*is not on node/);
      }
      outcomes.push(
        `${h.name}: load ${load.code === 0 ? 'ok' : 'refused'} (${(load.stderr || load.stdout).trim().split('\n')[0]}), task ${TaskState[task.status.state]}`,
      );
      expect((await cli(['service', 'rm', svc])).code, h.name).toBe(0);
      // Removing the image must not delete anything outside the store either.
      await cli(['image', 'rm', '--force', tag]);
      expect(treeDigest(canary), `${h.name} touched the canary`).toBe(before);
    }
    // The daemon is still up and still serves.
    const info = await cli(['node', 'ls', '--format', 'json']);
    expect(info.code, info.stderr).toBe(0);
    expect((JSON.parse(info.stdout) as { Status: { State: string } }[])[0]!.Status.State).toBe('ready');
    expect(treeDigest(canary)).toBe(before);
    // What happened to each, for the log of the run.
    process.stdout.write(`${outcomes.join('\n')}\n`);
  }, 900_000);
});
