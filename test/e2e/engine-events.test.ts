// GET /events end to end with the real docker CLI (v28): `docker events`
// against a manager that does not lead shows the create, updates (replicas,
// a rolling update's states) and remove of a service made by other clients on
// other managers (the tsswarm CLI on the leader, the docker CLI on a third
// manager), as every manager applies every change to its own store, and its
// stream outlives a leader change; a bounded `docker events --since --until`
// replays a node's update from a follower's ring and exits by itself; a
// worker streams no swarm events. Skipped, saying why, without docker.
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, tsswarmOn, until } from './helpers.js';

const haveDocker = have('docker');
if (!haveDocker) console.warn('engine-events e2e: skipped, the docker CLI is not installed (the acceptance test needs the real client)');

const sb = new Sandbox({
  root: `/tmp/tss-e2eev-${process.pid}`,
  prefix: `tss-ev${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '2000'] };
  },
});
const { docker, ok: dockerOk } = dockerOn(sb, 60_000);
const { ok, ts } = tsswarmOn(sb);

/**
 * A docker command that reads an object and updates it at the version read, run again while
 * it meets a version conflict: the managers write the same objects (a service's endpoint and
 * update status, a node whose agent's session moved after a leader change) between the two.
 */
async function dockerUpdate(host: string, ...args: string[]): Promise<void> {
  await until(`docker ${args.join(' ')}`, async () => {
    const r = await docker(host, ...args);
    if (r.code !== 0 && !/changed since it was read|update out of sequence/.test(r.err))
      throw new Error(`${host}: docker ${args.join(' ')} failed (${r.code}): ${r.err || r.out}`);
    return r.code === 0;
  });
}

interface Msg {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: string;
  time: number;
  timeNano: number;
}

const parse = (out: string): Msg[] =>
  out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Msg);

/** Unix seconds with milliseconds, as `docker events --since/--until` accepts them. */
const unixNow = (): string => (Date.now() / 1000).toFixed(3);

describe.skipIf(!canRunSandbox || !haveDocker)('docker events with the real docker CLI', () => {
  beforeAll(async () => {
    await sb.up({ managers: 3, workers: 1, preloadImages: true, bootstrap: (s) => joinByCli(s) });
  }, 240_000);
  afterAll(async () => {
    await sb.down();
  }, 60_000);

  it("a follower's stream shows a service created, updated and removed by other clients, and outlives a leader change; --since/--until replays a node update and exits", async () => {
    const hosts = sb.hosts();
    const managers = hosts.filter((h) => h.role === 'manager');
    const worker = hosts.find((h) => h.role === 'worker')!;
    // The manager the stream is read from must not lead: its store is fed by Raft alone.
    const leads = async (h: string): Promise<boolean> =>
      (await dockerOk(h, 'node', 'inspect', 'self', '--format', '{{.ManagerStatus.Leader}}')).trim() === 'true';
    const roles = await Promise.all(managers.map(async (h) => ({ h, leader: await leads(h.name) })));
    const leader = roles.find((r) => r.leader)!.h;
    const [follower, other] = roles.filter((r) => !r.leader).map((r) => r.h);
    expect(leader && follower && other).toBeTruthy();

    const t0 = unixNow();
    let child: ChildProcess | undefined;
    let out = '';
    let err = '';
    try {
      // Started with --since, so nothing made after t0 can be missed while it connects (the ring replays it).
      child = spawn('docker', ['events', '--since', t0, '--filter', 'type=service', '--format', '{{json .}}'], {
        env: { ...process.env, DOCKER_HOST: `unix://${follower!.dockerSocketPath}` },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString('utf8');
      });
      child.stderr!.on('data', (c: Buffer) => {
        err += c.toString('utf8');
      });

      const lines = (): Msg[] => parse(out.slice(0, out.lastIndexOf('\n') + 1)).filter((m) => m.Actor.Attributes.name === 'evweb');
      await ok(leader.name, 'service', 'create', '-d', '--name', 'evweb', '--replicas', '1', SANDBOX_IMAGE, 'sleep', '1d');
      await dockerUpdate(other!.name, 'service', 'update', '-d', '--replicas', '2', 'evweb');
      // A change of the task spec is a rolling update: its state shows as updatestate.old/new.
      await dockerUpdate(other!.name, 'service', 'update', '-d', '--env-add', 'EV=1', '--update-monitor', '500ms', 'evweb');
      await until(
        'the rolling update completed, as the stream tells',
        async () => lines().some((m) => m.Actor.Attributes['updatestate.new'] === 'completed'),
        90_000,
      );
      // A leader change ends no stream: the stream's own manager takes the lead, and still streams the next change.
      await until(
        `leadership moved to ${follower!.name}`,
        async () => (await ts(leader.name, 'node', 'transfer-leader', follower!.name)).code === 0,
        60_000,
        1000,
      );
      expect(await docker(leader.name, 'service', 'rm', 'evweb')).toMatchObject({ code: 0 });

      const seen = await until(
        'the follower streamed the create, the updates and the remove',
        async () => {
          const ms = lines();
          const created = ms.find((m) => m.Action === 'create');
          const scaled = ms.find((m) => m.Action === 'update' && m.Actor.Attributes['replicas.new'] === '2');
          const removed = ms.find((m) => m.Action === 'remove');
          return created && scaled && removed ? { ms, created, scaled, removed } : undefined;
        },
        60_000,
      );
      const states = seen.ms.filter((m) => m.Actor.Attributes['updatestate.new']).map((m) => m.Actor.Attributes);
      expect(states[0]).toEqual({ name: 'evweb', 'updatestate.new': 'updating' });
      expect(states.at(-1)).toEqual({ name: 'evweb', 'updatestate.old': 'updating', 'updatestate.new': 'completed' });
      expect(seen.created).toMatchObject({ Type: 'service', scope: 'swarm', Actor: { Attributes: { name: 'evweb' } } });
      expect(seen.created.Actor.ID).toMatch(/^\w{25}$/);
      expect(seen.scaled.Actor).toEqual({
        ID: seen.created.Actor.ID,
        Attributes: expect.objectContaining({ name: 'evweb', 'replicas.old': '1', 'replicas.new': '2' }),
      });
      expect(seen.removed.Actor.ID).toBe(seen.created.Actor.ID);
      expect(seen.ms.indexOf(seen.created)).toBeLessThan(seen.ms.indexOf(seen.removed));
      expect(seen.created.timeNano).toBeGreaterThan(0);
      // The filter held: the worker's and managers' node events of the same moments are not in this stream.
      expect(new Set(parse(out.slice(0, out.lastIndexOf('\n') + 1)).map((m) => m.Type))).toEqual(new Set(['service']));
      expect(child.exitCode, err).toBeNull();
    } finally {
      if (child && child.exitCode === null) {
        const exited = new Promise((r) => child!.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
    }

    // A bounded run: a node update replayed from a follower's ring, and the CLI exits by itself.
    const t1 = unixNow();
    await dockerUpdate(follower!.name, 'node', 'update', '--availability', 'drain', worker.name);
    const t2 = unixNow();
    try {
      const drained = await until('the follower replays the drain between t1 and t2', async () => {
        const r = await docker(other!.name, 'events', '--since', t1, '--until', t2, '--filter', 'type=node', '--format', '{{json .}}');
        expect(r.code, r.err).toBe(0);
        return parse(r.out).find((m) => m.Action === 'update' && m.Actor.Attributes['availability.new'] === 'drain');
      });
      expect(drained).toMatchObject({
        Type: 'node',
        scope: 'swarm',
        Actor: { Attributes: { name: worker.name, 'availability.old': 'active', 'availability.new': 'drain' } },
      });
      // A worker has no swarm events: the same bounded run there answers an empty stream, no 503.
      const onWorker = await docker(worker.name, 'events', '--since', t0, '--until', t2, '--format', '{{json .}}');
      expect(onWorker).toMatchObject({ code: 0, out: '' });
    } finally {
      await dockerUpdate(follower!.name, 'node', 'update', '--availability', 'active', worker.name);
    }
  }, 300_000);
});
