// A private registry, end to end: Debian's docker-registry serves TLS (a CA
// and certificate the test makes with the project's CA code, trusted by the
// daemons through --certs-dir's HOST:PORT/ca.crt) and htpasswd (bcrypt) auth
// from the first sandbox host's namespace, holding the sandbox's busybox
// image. Without credentials the tasks are rejected naming the login; after
// `tsswarm login`, `service create --with-registry-auth` pins the digest and
// both nodes pull and run; a moved tag named again re-pins and re-pulls; the
// password is in no daemon log and in no `service inspect`. The docker CLI
// logs in through POST /auth and its --with-registry-auth reads the same
// config file. Skipped, saying why, without docker-registry or htpasswd.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTar } from '../../agent/runtime/index.js';
import { createCSR, createRootCA, generateNodeKey, signEngineServerCSR } from '../../ca/index.js';
import { defaultDaemonCommand, Sandbox } from '../../deploy/sandbox/index.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, tsswarmOn, until } from './helpers.js';

const haveRegistry = have('docker-registry');
const haveHtpasswd = have('htpasswd', ['-nbB', 'tss', 'x']);
if (!haveRegistry) console.warn('registry-auth e2e: skipped, docker-registry is not installed (scripts/setup.sh installs it)');
if (!haveHtpasswd) console.warn('registry-auth e2e: skipped, htpasswd is not installed (apache2-utils; scripts/setup.sh installs it)');

const PORT = 5000;
const PASSWORD = 'tss-s3cret-pw';
const root = `/tmp/tss-e2ereg-${process.pid}`;
const certsDir = join(root, 'certs.d');
let registryAddr = '';
const sb = new Sandbox({
  root,
  prefix: `tss-r${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    const first = h.addr.replace(/\d+$/, (x) => String(Number(x) - (h.index - 1)));
    registryAddr = `${first}:${PORT}`;
    return { ...d, argv: [...d.argv, '--heartbeat-period', '2000', '--certs-dir', certsDir] };
  },
});
const { ts, tsIn, ok } = tsswarmOn(sb, 120_000);
const { docker, dockerIn } = dockerOn(sb, 120_000);
const haveDocker = have('docker');

const freePort = (): Promise<number> =>
  new Promise((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => res(p));
    });
  });

function startRegistry(dir: string, name: string, http: string, netns?: string): ChildProcess {
  const cfg = join(dir, `${name}.yml`);
  writeFileSync(cfg, `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n${http}`);
  const argv = ['docker-registry', 'serve', cfg];
  return netns
    ? spawn('nsenter', [`--net=${netns}`, '--', ...argv], { stdio: 'ignore' })
    : spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
}

/** Pushes an OCI layout archive's blobs and manifest as `repo:tag` to a registry without auth; returns the manifest digest. */
async function pushOci(base: string, tarPath: string, tag: string): Promise<string> {
  const files = new Map([...readTar(readFileSync(tarPath))].map((e) => [e.name, e.data]));
  for (const [name, data] of files) {
    if (!name.startsWith('blobs/sha256/')) continue;
    const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const loc = new URL(start.headers.get('location')!, base);
    loc.searchParams.set('digest', `sha256:${name.slice(13)}`);
    const put = await fetch(loc, { method: 'PUT', body: new Uint8Array(data), headers: { 'content-type': 'application/octet-stream' } });
    expect(put.status).toBe(201);
  }
  const digest = (JSON.parse(files.get('index.json')!.toString()) as { manifests: { digest: string }[] }).manifests[0]!.digest;
  const r = await fetch(`${base}/manifests/${tag}`, {
    method: 'PUT',
    body: new Uint8Array(files.get(`blobs/sha256/${digest.slice(7)}`)!),
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  expect(r.status).toBe(201);
  return digest;
}

/**
 * Moves `tag` to a new image: the archive's layers under a config with one more label (so a new
 * config and manifest digest), pushed to a registry without auth; returns the new manifest digest.
 */
async function pushMoved(base: string, tarPath: string, tag: string): Promise<string> {
  const files = new Map([...readTar(readFileSync(tarPath))].map((e) => [e.name, e.data]));
  const blob = (d: string): Buffer => files.get(`blobs/sha256/${d.slice(7)}`)!;
  const top = (JSON.parse(files.get('index.json')!.toString()) as { manifests: { digest: string }[] }).manifests[0]!.digest;
  const manifest = JSON.parse(blob(top).toString()) as { config: { digest: string; size: number } };
  const config = JSON.parse(blob(manifest.config.digest).toString()) as { config?: { Labels?: Record<string, string> } };
  config.config = { ...config.config, Labels: { ...config.config?.Labels, 'tss.moved': 'yes' } };
  const cbuf = Buffer.from(JSON.stringify(config));
  const cdigest = `sha256:${createHash('sha256').update(cbuf).digest('hex')}`;
  const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
  const loc = new URL(start.headers.get('location')!, base);
  loc.searchParams.set('digest', cdigest);
  expect((await fetch(loc, { method: 'PUT', body: new Uint8Array(cbuf) })).status).toBe(201);
  const mbuf = Buffer.from(JSON.stringify({ ...manifest, config: { ...manifest.config, digest: cdigest, size: cbuf.length } }));
  const r = await fetch(`${base}/manifests/${tag}`, {
    method: 'PUT',
    body: new Uint8Array(mbuf),
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  expect(r.status).toBe(201);
  return `sha256:${createHash('sha256').update(mbuf).digest('hex')}`;
}

describe.skipIf(!canRunSandbox || !haveRegistry || !haveHtpasswd)('a private registry with TLS and htpasswd auth', () => {
  let m = '';
  let digest = '';
  let reg: ChildProcess | null = null;
  const regDir = join(root, 'registry');
  const dockerConfig = join(root, 'docker-config');
  const image = () => `${registryAddr}/tss/priv:v1`;

  beforeAll(async () => {
    mkdirSync(certsDir, { recursive: true });
    await sb.up({ managers: 1, workers: 1, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    m = sb.hosts()[0]!.name;
    mkdirSync(regDir, { recursive: true });
    // The registry's CA and certificate, for its underlay address; the daemons trust the CA through certs.d.
    const now = Date.now();
    const ca = createRootCA({ now, commonName: 'tss-registry-ca' });
    const key = generateNodeKey();
    const cert = signEngineServerCSR(ca, createCSR(key.privateKeyPem), {
      nodeId: 'tss-registry',
      clusterId: 'tss',
      now,
      ips: [registryAddr.split(':')[0]!],
      dnsNames: [],
    });
    writeFileSync(join(regDir, 'server.crt'), cert);
    writeFileSync(join(regDir, 'server.key'), key.privateKeyPem, { mode: 0o600 });
    mkdirSync(join(certsDir, registryAddr), { recursive: true });
    writeFileSync(join(certsDir, registryAddr, 'ca.crt'), ca.certPem);
    execFileSync('htpasswd', ['-Bbc', join(regDir, 'htpasswd'), 'tss', PASSWORD], { stdio: 'ignore' });
    // Filled from this namespace on loopback without auth, then served from the first host's namespace with TLS and auth.
    const port = await freePort();
    const filler = startRegistry(regDir, 'filler', `  addr: 127.0.0.1:${port}\n`);
    try {
      await until('the registry answers on loopback', async () =>
        fetch(`http://127.0.0.1:${port}/v2/`)
          .then((r) => r.ok)
          .catch(() => false),
      );
      digest = await pushOci(`http://127.0.0.1:${port}/v2/tss/priv`, join(sb.root, 'images', 'busybox-oci.tar'), 'v1');
    } finally {
      filler.kill('SIGKILL');
    }
    reg = startRegistry(
      regDir,
      'private',
      `  addr: 0.0.0.0:${PORT}\n  tls:\n    certificate: ${regDir}/server.crt\n    key: ${regDir}/server.key\nauth:\n  htpasswd:\n    realm: tss-registry\n    path: ${regDir}/htpasswd\n`,
      sb.hosts()[0]!.netnsPath,
    );
    // The CLI on the hosts reads and writes this docker config (exec passes the test's environment on).
    process.env.DOCKER_CONFIG = dockerConfig;
    await until(
      'the registry answers over TLS, refusing a wrong password',
      async () =>
        /credentials given were refused/.test((await tsIn(m, 'wrong\n', 'login', '-u', 'tss', '--password-stdin', registryAddr)).err),
      60_000,
    );
  }, 240_000);

  afterAll(async () => {
    delete process.env.DOCKER_CONFIG;
    reg?.kill('SIGKILL');
    await sb.down();
    rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('without --with-registry-auth the tasks are rejected, naming the login', async () => {
    const r = await ts(m, 'service', 'create', '-d', '--name', 'tss-noauth', image(), 'sleep', '1d');
    expect(r.code, r.err).toBe(0);
    // The daemon could not resolve the digest without credentials either: docker's warning, the tag kept.
    expect(r.err).toMatch(/could not be accessed on a registry to record\nits digest/);
    const ps = await until(
      'the task rejected',
      async () => {
        const out = await ok(m, 'service', 'ps', '--no-trunc', 'tss-noauth');
        return /Rejected/.test(out) && out;
      },
      60_000,
    );
    expect(ps).toMatch(
      /the registry needs authentication; log in \(`tsswarm login REGISTRY`\) and create or update the service with --with-registry-auth/,
    );
    await ok(m, 'service', 'rm', 'tss-noauth');
  });

  it('tsswarm login, then --with-registry-auth: the digest is pinned, both nodes pull and run, the password is nowhere to read', async () => {
    const login = await tsIn(m, `${PASSWORD}\n`, 'login', '-u', 'tss', '--password-stdin', registryAddr);
    expect([login.code, login.out], login.err).toEqual([0, 'Login Succeeded\n']);
    const cfgPath = join(dockerConfig, 'config.json');
    expect(statSync(cfgPath).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(cfgPath, 'utf8')).auths[registryAddr].auth).toBe(Buffer.from(`tss:${PASSWORD}`).toString('base64'));

    const created = await ts(
      m,
      'service',
      'create',
      '--name',
      'tss-priv',
      '--with-registry-auth',
      '--replicas',
      '2',
      '--replicas-max-per-node',
      '1',
      image(),
      'sleep',
      '1d',
    );
    expect(created.code, created.err).toBe(0);
    expect(created.err).not.toMatch(/could not be accessed/);
    const inspect = await ok(m, 'service', 'inspect', 'tss-priv');
    expect(inspect).toContain(`${image()}@${digest}`);
    const secret = Buffer.from(`tss:${PASSWORD}`).toString('base64');
    for (const needle of [PASSWORD, secret]) expect(inspect).not.toContain(needle);
    const tasks = await until(
      'both tasks running, one per node',
      async () => {
        const lines = (await ok(m, 'service', 'ps', '--format', '{{.Node}} {{.CurrentState}}', 'tss-priv')).trim().split('\n');
        return lines.length === 2 && lines.every((l) => / Running/.test(l)) && lines;
      },
      90_000,
    );
    expect(new Set(tasks.map((l) => l.split(' ')[0])).size).toBe(2);
    // Never logged: neither the password nor its encodings reach a daemon's log.
    const credentials = Buffer.from(JSON.stringify({ username: 'tss', password: PASSWORD })).toString('base64url');
    for (const h of sb.hosts()) {
      const log = readFileSync(h.logFile, 'utf8');
      for (const needle of [PASSWORD, secret, credentials.slice(0, 40)]) expect(log).not.toContain(needle);
    }

    // The tag moves: an update naming it again pins the new digest (asked with the login), and the tasks re-pull it.
    const port = await freePort();
    const filler = startRegistry(regDir, 'mover', `  addr: 127.0.0.1:${port}\n`);
    let moved = '';
    try {
      await until('the second registry process answers on loopback', async () =>
        fetch(`http://127.0.0.1:${port}/v2/`)
          .then((r) => r.ok)
          .catch(() => false),
      );
      moved = await pushMoved(`http://127.0.0.1:${port}/v2/tss/priv`, join(sb.root, 'images', 'busybox-oci.tar'), 'v1');
    } finally {
      filler.kill('SIGKILL');
    }
    expect(moved).not.toBe(digest);
    const updated = await ts(m, 'service', 'update', '--image', image(), 'tss-priv');
    expect(updated.code, updated.err).toBe(0);
    expect(updated.err).not.toMatch(/could not be accessed/);
    await until(
      'both tasks of the moved tag running',
      async () => {
        const lines = (
          await ok(
            m,
            'service',
            'ps',
            '--no-trunc',
            '--filter',
            'desired-state=running',
            '--format',
            '{{.Image}} {{.CurrentState}}',
            'tss-priv',
          )
        )
          .trim()
          .split('\n');
        return lines.length === 2 && lines.every((l) => l.startsWith(`${image()}@${moved} Running`));
      },
      90_000,
    );

    await ok(m, 'service', 'rm', 'tss-priv');

    // The docker CLI reads the same config file: its --with-registry-auth sends X-Registry-Auth to the Engine API.
    if (haveDocker) {
      // docker login through the Engine API's POST /auth: the daemon checks the password, the docker CLI stores it.
      const refused = await dockerIn(m, 'wrong\n', 'login', '-u', 'tss', '--password-stdin', registryAddr);
      expect(refused.code).not.toBe(0);
      expect(refused.err).toMatch(/credentials given were refused/);
      const dl = await dockerIn(m, `${PASSWORD}\n`, 'login', '-u', 'tss', '--password-stdin', registryAddr);
      expect([dl.code, dl.out.trim()], dl.err).toEqual([0, 'Login Succeeded']);
      const d = await docker(
        m,
        'service',
        'create',
        '--with-registry-auth',
        '--name',
        'tss-dpriv',
        '--replicas',
        '2',
        image(),
        'sleep',
        '1d',
      );
      expect(d.code, d.err).toBe(0);
      expect(d.err).not.toMatch(/could not be accessed/);
      expect(
        (await docker(m, 'service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', 'tss-dpriv')).out.trim(),
      ).toBe(`${image()}@${moved}`);
      expect((await docker(m, 'service', 'inspect', 'tss-dpriv')).out).not.toMatch(/PullOptions|RegistryAuth/);
      await ok(m, 'service', 'rm', 'tss-dpriv');
    }
    const out = await tsIn(m, '', 'logout', registryAddr);
    expect(out.out).toBe(`Removing login credentials for ${registryAddr}\n`);
  });
});
