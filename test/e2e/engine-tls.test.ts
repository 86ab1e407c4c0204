// The Docker Engine API over TCP with TLS, end to end: a sandbox (1 manager,
// 1 worker) whose daemons also serve --docker-tcp on their sandbox address;
// `tsswarm ca client-cert` on the manager writes an operator's ca.pem,
// cert.pem and key.pem; the real docker CLI (v28) with --tlsverify (and with
// DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH) runs `info` and `node ls`,
// checking the server's certificate for the address it dialled. Without a
// client certificate, with the worker's node certificate, with a self-signed
// "operator" certificate, and with the operator's certificate but another
// CA to check the server by, the CLI fails. Skipped, saying why, where docker
// is absent.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRootCA, OPERATOR_OU } from '../../ca/index.js';
import { defaultDaemonCommand, Sandbox } from '../../deploy/sandbox/index.js';
import { have } from '../have.js';
import { selfSignedClientCert } from '../lib/forged-cert.js';
import { canRunSandbox, joinByCli, until } from './helpers.js';

const haveDocker = have('docker');
if (!haveDocker) console.warn('engine-tls e2e: skipped, the docker CLI is not installed (the acceptance test needs the real client)');

const PORT = 2376;
const root = `/tmp/tss-e2etls-${process.pid}`;
const prefix = `tss-t${process.pid % 1000}-`;
const sb = new Sandbox({
  root,
  prefix,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '2000', '--docker-tcp', `${h.addr}:${PORT}`] };
  },
});

/** Where the test's certificate directories go (removed with the sandbox). */
const certs = join(root, 'tss-certs');

interface Out {
  code: number;
  out: string;
  err: string;
}

/** The docker CLI run on `host` (its network namespace), talking TLS to `target`'s TCP address. */
async function docker(host: string, args: string[], env: Record<string, string> = {}): Promise<Out> {
  const r = await sb.execCapture(host, ['docker', ...args], { timeoutMs: 60_000, env });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

/** `--tlsverify` flags for a DOCKER_CERT_PATH-like directory, against `addr`. */
const tlsFlags = (dir: string, addr: string, o: { clientCert?: boolean } = {}): string[] => [
  '--tlsverify',
  '--tlscacert',
  join(dir, 'ca.pem'),
  ...(o.clientCert === false ? [] : ['--tlscert', join(dir, 'cert.pem'), '--tlskey', join(dir, 'key.pem')]),
  '-H',
  `tcp://${addr}:${PORT}`,
];

describe.skipIf(!canRunSandbox || !haveDocker)('the Docker Engine API over TCP with TLS client certificates', () => {
  let m = '';
  let w = '';
  let mAddr = '';
  let wAddr = '';
  const op = join(certs, 'operator');

  beforeAll(async () => {
    await sb.up({ managers: 1, workers: 1, bootstrap: (s) => joinByCli(s) });
    [m, w] = sb.hosts().map((x) => x.name) as [string, string];
    [mAddr, wAddr] = sb.hosts().map((x) => x.addr) as [string, string];
    mkdirSync(certs, { recursive: true, mode: 0o700 });
  }, 180_000);

  afterAll(async () => {
    await sb.down();
    rmSync(root, { recursive: true, force: true });
    // Every namespace the sandbox made carries its prefix and is gone.
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(prefix);
  }, 60_000);

  it('tsswarm ca client-cert writes ca.pem, cert.pem and key.pem (0600) for an operator', async () => {
    const r = await sb.execCapture(m, ['tsswarm', 'ca', 'client-cert', '--out', op, '--name', 'tss-e2e-op', '--expiry', '24h'], {
      timeoutMs: 60_000,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/operator tss-e2e-op, serial [0-9a-f]+, valid until/);
    expect(statSync(join(op, 'key.pem')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(op, 'cert.pem'), 'utf8')).toMatch(/BEGIN CERTIFICATE/);
    expect(readFileSync(join(op, 'ca.pem'), 'utf8')).toMatch(/BEGIN CERTIFICATE/);
    // A worker cannot issue one: it is no manager.
    const onWorker = await sb.execCapture(w, ['tsswarm', 'ca', 'client-cert', '--out', join(certs, 'from-worker')], { timeoutMs: 60_000 });
    expect(onWorker.code).not.toBe(0);
    expect(onWorker.stderr).toMatch(/not a swarm manager/);
  });

  it('docker --tlsverify with the operator certificate runs info and node ls on the manager', async () => {
    // The listener comes up once the daemon has its server certificate from the leader.
    const info = await until('docker info over TLS on the manager', async () => {
      const r = await docker(m, [
        ...tlsFlags(op, mAddr),
        'info',
        '--format',
        '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.Nodes}}',
      ]);
      return r.code === 0 ? r.out : undefined;
    });
    expect(info.trim()).toBe('active true 2');
    const ls = await docker(m, [...tlsFlags(op, mAddr), 'node', 'ls', '--format', '{{.Hostname}} {{.Self}}']);
    expect(ls.code, ls.err).toBe(0);
    expect(ls.out.trim().split('\n').sort()).toEqual([`${m} true`, `${w} false`].sort());
  });

  it('DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH work the same, from the worker host too', async () => {
    const env = { DOCKER_HOST: `tcp://${mAddr}:${PORT}`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: op };
    const r = await docker(w, ['node', 'ls', '-q'], env);
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim().split('\n')).toHaveLength(2);
  });

  it("the worker serves TCP too, answering manager routes with Docker's 503", async () => {
    const info = await until('docker info over TLS on the worker', async () => {
      const r = await docker(w, [...tlsFlags(op, wAddr), 'info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}']);
      return r.code === 0 ? r.out : undefined;
    });
    expect(info.trim()).toBe('active false');
    const ls = await docker(w, [...tlsFlags(op, wAddr), 'node', 'ls']);
    expect(ls.code).not.toBe(0);
    expect(ls.err).toMatch(/This node is not a swarm manager/);
  });

  it('without a client certificate the CLI fails at the TLS handshake', async () => {
    const r = await docker(m, [...tlsFlags(op, mAddr, { clientCert: false }), 'info']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/certificate|tls/i);
  });

  it("with the worker's node certificate the CLI is refused (403), naming what the certificate is", async () => {
    const host = sb.hosts().find((x) => x.name === w)!;
    const dir = join(certs, 'worker-node');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    copyFileSync(join(host.stateDir, 'certificates', 'node.pem'), join(dir, 'cert.pem'));
    copyFileSync(join(host.stateDir, 'certificates', 'node.key'), join(dir, 'key.pem'));
    copyFileSync(join(op, 'ca.pem'), join(dir, 'ca.pem'));
    const r = await docker(m, [...tlsFlags(dir, mAddr), 'node', 'ls']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/Error response from daemon: the client certificate is the node certificate of node \w+ \(swarm-worker\)/);
  });

  it('with a self-signed "operator" certificate of the right cluster the CLI fails at the TLS handshake', async () => {
    const clusterId = (await docker(m, [...tlsFlags(op, mAddr), 'info', '--format', '{{.Swarm.Cluster.ID}}'])).out.trim();
    expect(clusterId).toMatch(/^\w{25}$/);
    const forged = selfSignedClientCert({ o: clusterId, ou: OPERATOR_OU, cn: 'tss-mallory' });
    const dir = join(certs, 'forged');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'cert.pem'), forged.certPem);
    writeFileSync(join(dir, 'key.pem'), forged.keyPem, { mode: 0o600 });
    copyFileSync(join(op, 'ca.pem'), join(dir, 'ca.pem'));
    const r = await docker(m, [...tlsFlags(dir, mAddr), 'info']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/certificate|tls/i);
    expect(r.err).not.toMatch(/Swarm: active/);
  });

  it('the CLI refuses the server when checking it against another CA', async () => {
    const dir = join(certs, 'other-ca');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    copyFileSync(join(op, 'cert.pem'), join(dir, 'cert.pem'));
    copyFileSync(join(op, 'key.pem'), join(dir, 'key.pem'));
    writeFileSync(join(dir, 'ca.pem'), createRootCA({ now: Date.now(), commonName: 'tss-other' }).certPem);
    const r = await docker(m, [...tlsFlags(dir, mAddr), 'info']);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/certificate signed by unknown authority|x509/);
  });

  it("after a root CA rotation the old root's operator certificate is refused, and a new one from the new root works on both nodes", async () => {
    const rot = await sb.execCapture(m, ['tsswarm', 'swarm', 'ca', '--rotate', '--quiet'], { timeoutMs: 120_000 });
    expect(rot.code, rot.stderr).toBe(0);
    // Each listener takes on the new root alone once its node follows the rotation's end.
    for (const [host, addr] of [
      [m, mAddr],
      [w, wAddr],
    ] as const) {
      const refused = await until(`${host} refusing the old root's operator certificate`, async () => {
        const r = await docker(host, [...tlsFlags(op, addr), 'info']);
        return r.code !== 0 ? r : undefined;
      });
      expect(refused.err).toMatch(/certificate|tls/i);
    }
    const op2 = join(certs, 'operator-new-root');
    const r = await sb.execCapture(m, ['tsswarm', 'ca', 'client-cert', '--out', op2, '--name', 'tss-e2e-op2'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(op2, 'ca.pem'), 'utf8')).not.toBe(readFileSync(join(op, 'ca.pem'), 'utf8'));
    for (const [host, addr] of [
      [m, mAddr],
      [w, wAddr],
    ] as const) {
      const out = await until(`docker info over TLS on ${host} with the new root's certificate`, async () => {
        const x = await docker(host, [...tlsFlags(op2, addr), 'info', '--format', '{{.Swarm.LocalNodeState}}']);
        return x.code === 0 ? x.out : undefined;
      });
      expect(out.trim()).toBe('active');
    }
  });
});
