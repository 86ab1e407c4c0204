// The Docker Engine API end to end: the real docker CLI (v28, client only)
// run inside sandbox hosts (3 managers, 1 worker) against each daemon's
// docker socket (DOCKER_HOST set by the sandbox): version, info, node ls /
// inspect / update / promote / demote, join tokens and their rotation (the old
// token refused by `tsswarm join`), swarm update, leave and join, the worker's
// 503, and an unknown route's 404. Skipped, saying why, where docker is absent.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_PORT, defaultDaemonCommand, Sandbox } from '../../deploy/sandbox/index.js';
import { kekFromUnlockKey } from '../../manager/raft/storage/index.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, until } from './helpers.js';

const haveDocker = have('docker');
if (!haveDocker) console.warn('engine-api e2e: skipped, the docker CLI is not installed (the acceptance test needs the real client)');

const sb = new Sandbox({
  root: `/tmp/tss-e2eeng-${process.pid}`,
  prefix: `tss-d${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '2000'] };
  },
});
const { docker, ok } = dockerOn(sb, 60_000);

/** One request on a host's docker socket from the test process (unix sockets are not bound to a network namespace). */
function raw(socketPath: string, method: string, path: string): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** `docker node ls` rows as {id, self, host, status, availability, manager}. */
function rows(table: string): { id: string; self: boolean; host: string; cols: string[] }[] {
  return table
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => {
      const cols = l.trim().split(/\s+/);
      const self = cols[1] === '*';
      const c = self ? [cols[0]!, ...cols.slice(2)] : cols;
      return { id: c[0]!, self, host: c[1]!, cols: c };
    });
}

describe.skipIf(!canRunSandbox || !haveDocker)('the Docker Engine API with the real docker CLI', () => {
  let h: string[] = [];
  let addr: string[] = [];
  beforeAll(async () => {
    await sb.up({ managers: 3, workers: 1, bootstrap: (s) => joinByCli(s) });
    h = sb.hosts().map((x) => x.name);
    addr = sb.hosts().map((x) => x.addr);
  }, 180_000);
  afterAll(async () => {
    await sb.down();
    // Every namespace, link and mount the sandbox made carries its prefix and is gone.
    const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    expect(left).not.toContain(`tss-d${process.pid % 1000}-`);
  }, 60_000);

  it('docker version and docker info: API 1.41, the swarm active with 3 managers and 4 nodes', async () => {
    const v = await ok(h[0]!, 'version');
    expect(v).toMatch(/API version:\s+1\.41 \(downgraded from 1\.\d+\)/);
    expect(v).toMatch(/Server: tsswarm/);
    expect(v).toMatch(/API version:\s+1\.41 \(minimum version 1\.24\)/);
    const info = await ok(h[1]!, 'info');
    expect(info).toMatch(/Swarm: active/);
    expect(info).toMatch(/Is Manager: true/);
    expect(info).toMatch(/Managers: 3\n/);
    expect(info).toMatch(/Nodes: 4\n/);
    expect(info).toContain(`Node Address: ${addr[1]}`);
    const w = await ok(h[3]!, 'info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}');
    expect(w.trim()).toBe('active false');
  });

  it('docker node ls marks this node and shows the leader and reachable managers; node inspect self', async () => {
    const table = await until('every node ready in docker node ls', async () => {
      const t = await ok(h[1]!, 'node', 'ls');
      return rows(t).filter((r) => r.cols.includes('Ready')).length === 4 ? t : undefined;
    });
    const rs = rows(table);
    expect(rs.map((r) => r.host).sort()).toEqual([...h].sort());
    expect(rs.filter((r) => r.self).map((r) => r.host)).toEqual([h[1]]);
    const status = (host: string): string[] => rs.find((r) => r.host === host)!.cols;
    const managers = h.slice(0, 3).map((x) => status(x));
    expect(managers.filter((c) => c.includes('Leader'))).toHaveLength(1);
    expect(managers.filter((c) => c.includes('Reachable'))).toHaveLength(2);
    expect(status(h[3]!).some((c) => c === 'Leader' || c === 'Reachable')).toBe(false);

    const self = JSON.parse(await ok(h[0]!, 'node', 'inspect', 'self')) as {
      ID: string;
      Description: { Hostname: string };
      ManagerStatus: { Addr: string };
    }[];
    expect(self[0]!.Description.Hostname).toBe(h[0]);
    expect(self[0]!.ManagerStatus.Addr).toBe(`${addr[0]}:${DAEMON_PORT}`);
    expect((await ok(h[0]!, 'info', '--format', '{{.Swarm.NodeID}}')).trim()).toBe(self[0]!.ID);
  });

  it('docker node update --label-add --availability drain, then promote and demote the worker', async () => {
    await ok(h[0]!, 'node', 'update', '--label-add', 'a=b', '--availability', 'drain', h[3]!);
    const spec = JSON.parse(await ok(h[1]!, 'node', 'inspect', '--format', '{{json .Spec}}', h[3]!)) as Record<string, unknown>;
    expect(spec).toMatchObject({ Labels: { a: 'b' }, Role: 'worker', Availability: 'drain' });
    await ok(h[0]!, 'node', 'update', '--availability', 'active', h[3]!);

    expect(await ok(h[0]!, 'node', 'promote', h[3]!)).toContain(`Node ${h[3]} promoted to a manager in the swarm.`);
    await until(
      'the promoted worker reachable as a manager',
      async () => /Reachable/.test((await ok(h[0]!, 'node', 'ls', '--filter', `name=${h[3]}`)).split('\n')[1] ?? ''),
      90_000,
      500,
    );
    // Its own daemon says so once it has started its manager (Reachable is the cluster's view, seen first).
    await until(
      'the promoted node serving as a manager',
      async () => (await ok(h[3]!, 'info', '--format', '{{.Swarm.ControlAvailable}}')).trim() === 'true',
      90_000,
      500,
    );
    expect(await ok(h[0]!, 'node', 'demote', h[3]!)).toContain(`Manager ${h[3]} demoted in the swarm.`);
    await until(
      'the demoted node a worker again',
      async () => (await ok(h[3]!, 'info', '--format', '{{.Swarm.ControlAvailable}}')).trim() === 'false',
      90_000,
      500,
    );
    const ls = rows(await ok(h[0]!, 'node', 'ls', '--filter', 'role=manager'));
    expect(ls.map((r) => r.host).sort()).toEqual(h.slice(0, 3).sort());
  }, 240_000);

  it('a worker answers the manager routes with Docker 503 message; an unknown route is a JSON 404', async () => {
    const r = await docker(h[3]!, 'node', 'ls');
    expect(r.code).not.toBe(0);
    expect(r.err).toContain(
      "Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
    );
    const sock = sb.hosts()[0]!.dockerSocketPath;
    const nf = await raw(sock, 'GET', '/v1.41/no/such/route');
    expect(nf).toEqual({ status: 404, type: 'application/json', body: '{"message":"page not found"}\n' });
    const ping = await raw(sb.hosts()[3]!.dockerSocketPath, 'HEAD', '/_ping');
    expect(ping.status).toBe(200);
  });

  it('docker swarm update --task-history-limit 3 reaches the cluster settings', async () => {
    expect(await ok(h[1]!, 'swarm', 'update', '--task-history-limit', '3')).toContain('Swarm updated.');
    const limit = await ok(h[2]!, 'info', '--format', '{{.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit}}');
    expect(limit.trim()).toBe('3');
    const ts = await sb.execCapture(h[0]!, ['tsswarm', 'info'], { timeoutMs: 30_000 });
    expect(ts.stdout).toMatch(/Task History Retention Limit: 3/);
    const bad = await docker(h[1]!, 'swarm', 'update', '--cert-expiry', '30m');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/CAConfig\.NodeCertExpiry must be a duration of at least 1h/);
  });

  it('docker swarm join-token prints the join command; --rotate makes the old token refused by tsswarm join; leave and join with the new one', async () => {
    const printed = await ok(h[0]!, 'swarm', 'join-token', 'worker');
    const old = (await ok(h[0]!, 'swarm', 'join-token', '-q', 'worker')).trim();
    expect(printed).toContain(`docker swarm join --token ${old} ${addr[0]}:${DAEMON_PORT}`);
    const rotated = await ok(h[1]!, 'swarm', 'join-token', '--rotate', 'worker');
    expect(rotated).toContain('Successfully rotated worker join token.');
    const fresh = (await ok(h[0]!, 'swarm', 'join-token', '-q', 'worker')).trim();
    expect(fresh).not.toBe(old);
    expect(rotated).toContain(`--token ${fresh} `);

    const oldId = (await ok(h[0]!, 'node', 'inspect', '--format', '{{.ID}}', h[3]!)).trim();
    expect(await ok(h[3]!, 'swarm', 'leave')).toContain('Node left the swarm.');
    expect((await ok(h[3]!, 'info', '--format', '{{.Swarm.LocalNodeState}}')).trim()).toBe('inactive');
    const refused = await sb.execCapture(h[3]!, ['tsswarm', 'join', '--token', old, `${addr[0]}:${DAEMON_PORT}`], { timeoutMs: 60_000 });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/invalid join token/);
    expect(await ok(h[3]!, 'swarm', 'join', '--token', fresh, `${addr[0]}:${DAEMON_PORT}`)).toContain(
      'This node joined a swarm as a worker.',
    );
    expect((await ok(h[3]!, 'info', '--format', '{{.Swarm.LocalNodeState}}')).trim()).toBe('active');
    // The node that left stays listed, down, until docker node rm removes it (refused while it is up).
    const newId = (await ok(h[3]!, 'info', '--format', '{{.Swarm.NodeID}}')).trim();
    expect(newId).not.toBe(oldId);
    const busy = await docker(h[0]!, 'node', 'rm', newId);
    expect(busy.code).not.toBe(0);
    expect(busy.err).toMatch(/is not down and can't be removed/);
    await until(
      'the node that left marked down',
      async () => (await ok(h[0]!, 'node', 'inspect', '--format', '{{.Status.State}}', oldId)).trim() === 'down',
    );
    expect((await ok(h[0]!, 'node', 'rm', oldId)).trim()).toBe(oldId);
    expect((await docker(h[0]!, 'node', 'inspect', oldId)).err).toMatch(/no such node|not found/i);
    expect((await ok(h[0]!, 'node', 'ps', 'self')).split('\n')[0]).toMatch(
      /^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS/,
    );
  }, 120_000);
  it('docker swarm update --autolock=true: a restarted manager is locked (503 with Docker message) until docker swarm unlock', async () => {
    const on = await ok(h[0]!, 'swarm', 'update', '--autolock=true');
    const key = /(SWMKEY-1-\S+)/.exec(on)?.[1] ?? '';
    expect(key).not.toBe('');
    expect((await ok(h[1]!, 'swarm', 'unlock-key', '-q')).trim()).toBe(key);
    const m3 = sb.hosts()[2]!;
    // Locked once its Raft keys are wrapped by the unlock key's KEK and its TLS key is sealed (as the autolock e2e waits).
    const kek = kekFromUnlockKey(key).id;
    await until(`${m3.name}'s Raft keys locked with the unlock key`, async () => {
      const dek = JSON.parse(readFileSync(join(m3.stateDir, 'raft', 'raft-dek.json'), 'utf8')) as { kek: { id: string } };
      return dek.kek.id === kek;
    });
    await until(`${m3.name}'s TLS key sealed`, async () =>
      readFileSync(join(m3.stateDir, 'certificates', 'node.key'), 'utf8').includes('ENCRYPTED PRIVATE KEY'),
    );
    await sb.stop(m3.name);
    await sb.start(m3.name);
    const state = await until('the restarted manager answering on its docker socket', async () => {
      const r = await docker(m3.name, 'info', '--format', '{{.Swarm.LocalNodeState}}');
      return r.code === 0 ? r.out.trim() : undefined;
    });
    expect(state).toBe('locked');
    const ls = await docker(m3.name, 'node', 'ls');
    expect(ls.err).toContain(
      'Error response from daemon: Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.',
    );
    const wrong = await sb.execCapture(m3.name, ['docker', 'swarm', 'unlock'], {
      input: 'SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n',
      timeoutMs: 60_000,
    });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toContain('swarm could not be unlocked: invalid key provided');
    const right = await sb.execCapture(m3.name, ['docker', 'swarm', 'unlock'], { input: `${key}\n`, timeoutMs: 60_000 });
    expect(right.code, right.stderr).toBe(0);
    expect((await ok(m3.name, 'info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')).trim()).toBe('active true');
    const notLocked = await sb.execCapture(m3.name, ['docker', 'swarm', 'unlock'], { input: `${key}\n`, timeoutMs: 60_000 });
    expect(notLocked.stderr).toContain('swarm is not locked');
    expect(await ok(h[0]!, 'swarm', 'update', '--autolock=false')).toContain('Swarm updated.');
    const none = await docker(h[0]!, 'swarm', 'unlock-key');
    expect(none.out + none.err).toContain('no unlock key is set');
  }, 120_000);
});
