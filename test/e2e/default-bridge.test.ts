// Networking defaults as Docker's, on a sandbox of real daemons (1 manager,
// 1 worker) running real containers: a service with no --network reaches a
// server on another sandbox host's underlay address (through its node's
// default bridge and NAT: the server sees the node's own address), and a
// service on --network none has nothing but lo, cannot connect, and shows its
// network as Docker stores it. --network host is refused with the reason.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { TaskState } from '../../proto/gen/objects.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, tsswarmOn, until } from './helpers.js';

const canRun = canRunSandbox && have('conmon') && have('runc') && have('nft') && have('bridge', ['-V']);
if (!canRun) console.log('default-bridge e2e skipped: needs root, nsenter, runc, conmon, nft and iproute2');

const sb = new Sandbox({ root: `/tmp/tss-e2eb-${process.pid}`, prefix: `tss-b${process.pid % 1000}-` });
const { ts, ok } = tsswarmOn(sb, 90_000);
const { docker } = dockerOn(sb, 90_000);
const PORT = 7708;

interface TaskJson {
  nodeId: string;
  desiredState: number;
  status: { state: number };
}

describe.skipIf(!canRun)('networking defaults as Docker: the default bridge, and none', () => {
  let M = '';
  let W = '';
  let server: ChildProcess | undefined;

  async function runningOn(service: string): Promise<void> {
    await until(
      `${service} running`,
      async () => {
        const all = JSON.parse(await ok(M, 'service', 'ps', '--format', 'json', service)) as TaskJson[];
        return all.some((t) => t.desiredState === TaskState.RUNNING && t.status.state === TaskState.RUNNING);
      },
      90_000,
      500,
    );
  }

  /** A shell command in the service's container: its output, or the failure (exit status and output) as a string. */
  async function inTask(service: string, script: string): Promise<string> {
    // The script's own status, printed last: what the shell in the container saw.
    const r = await ts(M, 'service', 'exec', '--slot', '1', service, '--', 'sh', '-c', `${script}; echo "rc=$?"`);
    const m = /^([\s\S]*?)rc=(\d+)\s*$/.exec(r.out);
    if (r.code !== 0 || !m) return `exit ${r.code || 'unknown'}: ${r.out}${r.err}`;
    return m[2] === '0' ? m[1]!.trim() : `exit ${m[2]}: ${m[1]}${r.err}`;
  }

  beforeAll(async () => {
    await sb.up({ managers: 1, workers: 1, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    M = sb.hosts()[0]!.name;
    W = sb.hosts()[1]!.name;
    await until(
      '2 READY nodes',
      async () => {
        const ns = JSON.parse(await ok(M, 'node', 'ls', '--format', 'json')) as { Status: { State: string } }[];
        return ns.length === 2 && ns.every((n) => n.Status.State === 'ready');
      },
      90_000,
    );
    // The outside server, in the worker host's namespace: it answers with the address the request came from.
    server = spawn(
      'nsenter',
      [
        `--net=${sb.host(W).netnsPath}`,
        '--',
        process.execPath,
        '-e',
        `require('http').createServer((q,s)=>s.end(q.socket.remoteAddress.replace(/^::ffff:/,''))).listen(${PORT},'${sb.host(W).addr}',()=>console.log('listening'))`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let said = '';
    server.stdout!.setEncoding('utf8').on('data', (d: string) => (said += d));
    await until('the server on the worker host to listen', async () => said.includes('listening'), 30_000, 100);
  }, 240_000);

  afterAll(async () => {
    if (server?.pid && server.exitCode === null) server.kill('SIGKILL');
    await sb.down();
  }, 120_000);

  it('a service with no --network reaches a server on another host, NATed to its node address (Docker tutorial: ping docker.com)', async () => {
    await ok(M, 'service', 'create', '--detach', '--name', 'out', '--constraint', 'node.role==manager', SANDBOX_IMAGE, 'sleep', '1d');
    await runningOn('out');
    // eth0 on the default bridge, besides lo.
    expect(await inTask('out', "sed -n 's/^ *\\([a-z0-9]*\\):.*/\\1/p' /proc/net/dev | sort | tr '\\n' ' '")).toBe('eth0 lo');
    const seen = await until(
      'the server to answer the task',
      async () => {
        const r = await inTask('out', `timeout 10 wget -qO- http://${sb.host(W).addr}:${PORT}/`);
        if (r.startsWith('exit')) throw new Error(r);
        return r;
      },
      60_000,
      1000,
    );
    expect(seen).toBe(sb.host(M).addr);
    // docker inspect shows it on Docker's bridge network, with its address there.
    const id = (await docker(M, 'ps', '-q', '--filter', 'name=out.1')).out.trim();
    expect(id).not.toBe('');
    const d = await docker(M, 'inspect', '--format', '{{.HostConfig.NetworkMode}} {{.NetworkSettings.Networks.bridge.IPAddress}}', id);
    expect(d.out.trim()).toMatch(/^bridge 172\.30\.\d+\.\d+$/);
    // No loopback resolver from the host in the container (it would answer only in the host's namespace).
    expect(await inTask('out', 'grep -c "^nameserver 127\\." /etc/resolv.conf || true')).toBe('0');
  }, 180_000);

  it('--network none: lo only, no connection; stored and shown as Docker stores it; none with another network and host are refused', async () => {
    await ok(M, 'service', 'create', '--detach', '--name', 'quiet', '--network', 'none', SANDBOX_IMAGE, 'sleep', '1d');
    await runningOn('quiet');
    expect(await inTask('quiet', "sed -n 's/^ *\\([a-z0-9]*\\):.*/\\1/p' /proc/net/dev | sort | tr '\\n' ' '")).toBe('lo');
    expect(await inTask('quiet', `timeout 10 wget -qO- http://${sb.host(W).addr}:${PORT}/`)).toMatch(
      /^exit [1-9].*Network is unreachable/s,
    );
    const inspected = JSON.parse(await ok(M, 'service', 'inspect', 'quiet')) as
      | Array<{ spec: { task: { networks: unknown } } }>
      | { spec: { task: { networks: unknown } } };
    expect((Array.isArray(inspected) ? inspected[0]! : inspected).spec.task.networks).toEqual([{ target: 'none', aliases: [] }]);
    if (have('docker', ['--version'])) {
      const d = await docker(M, 'service', 'inspect', '--format', '{{json .Spec.TaskTemplate.Networks}}', 'quiet');
      expect(d.code, d.err).toBe(0);
      expect(JSON.parse(d.out)).toEqual([{ Target: 'none' }]);
    }
    const host = await ts(M, 'service', 'create', '--detach', '--name', 'h', '--network', 'host', SANDBOX_IMAGE, 'sleep', '1d');
    expect(host.code).not.toBe(0);
    expect(host.err).toMatch(/--network host.*does not run tasks in their node's network namespace/);
    await ok(M, 'network', 'create', '-d', 'overlay', 'front');
    const both = await ts(M, 'service', 'update', '--detach', '--network-add', 'front', 'quiet');
    expect(both.code).not.toBe(0);
    expect(both.err).toMatch(/--network none\) cannot be combined with other networks/);
  }, 180_000);
});
