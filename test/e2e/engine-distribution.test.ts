// Digest pinning through the Docker Engine API, end to end: Debian's
// docker-registry runs inside the first sandbox host's namespace (so every
// host reaches it on the underlay) holding the sandbox's busybox image; the
// real docker CLI's `service create` (without --no-resolve-image) asks
// `GET /distribution/{name}/json`, pins `image:tag@sha256:…` in the spec, and
// the tasks pull that manifest by digest and run. Then a digest-pinned ref of
// the locally loaded image runs without a registry, `docker container
// inspect` and `docker volume ls` answer on the worker, and the route answers
// a missing repository with the registry's 404. Skipped, saying why, without
// docker or docker-registry.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTar } from '../../agent/runtime/index.js';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, until } from './helpers.js';

const haveDocker = have('docker');
const haveRegistry = have('docker-registry');
if (!haveDocker) console.warn('engine-distribution e2e: skipped, the docker CLI is not installed');
if (!haveRegistry) console.warn('engine-distribution e2e: skipped, docker-registry is not installed (scripts/setup.sh installs it)');

const REGISTRY_PORT = 5000;
const root = `/tmp/tss-e2edist-${process.pid}`;
let registryAddr = '';
const sb = new Sandbox({
  root,
  prefix: `tss-d${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    // The registry sits on the first host's address: plain http, as dockerd's insecure-registries allows.
    const first = h.addr.replace(/\d+$/, (x) => String(Number(x) - (h.index - 1)));
    registryAddr = `${first}:${REGISTRY_PORT}`;
    return { ...d, argv: [...d.argv, '--heartbeat-period', '2000', '--insecure-registry', registryAddr] };
  },
});
const { docker, ok } = dockerOn(sb, 120_000);

/** A GET on a host's docker socket (unix sockets are reached by path, whatever the network namespace). */
function engineGet(host: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const socketPath = sb.hosts().find((h) => h.name === host)!.dockerSocketPath;
  return new Promise((res, rej) => {
    const req = request({ socketPath, path, headers, timeout: 60_000 }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
    });
    req.on('error', rej);
    req.end();
  });
}

const freePort = (): Promise<number> =>
  new Promise((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => res(p));
    });
  });

function startRegistry(dir: string, addr: string, netns?: string): ChildProcess {
  const cfg = join(dir, `config-${addr.replace(/[^\w]/g, '_')}.yml`);
  writeFileSync(
    cfg,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${addr}\n`,
  );
  const argv = ['docker-registry', 'serve', cfg];
  return netns
    ? spawn('nsenter', [`--net=${netns}`, '--', ...argv], { stdio: 'ignore' })
    : spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
}

/** Pushes an OCI layout archive's blobs and its manifest under `repo:tag`; returns the manifest's digest. */
async function pushOci(base: string, tarPath: string): Promise<string> {
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
  const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]!.digest;
  const r = await fetch(`${base}/manifests/v1`, {
    method: 'PUT',
    body: new Uint8Array(files.get(`blobs/sha256/${digest.slice(7)}`)!),
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  expect(r.status).toBe(201);
  return digest;
}

describe.skipIf(!canRunSandbox || !haveDocker || !haveRegistry)('digest pinning through /distribution with the real docker CLI', () => {
  let m = '';
  let w = '';
  let digest = '';
  let reg: ChildProcess | null = null;
  const regDir = join(root, 'registry');

  beforeAll(async () => {
    await sb.up({ managers: 1, workers: 1, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    m = sb.hosts()[0]!.name;
    w = sb.hosts()[1]!.name;
    mkdirSync(regDir, { recursive: true });
    // Filled from this namespace on loopback, then served from the first host's namespace on the same storage.
    const port = await freePort();
    const filler = startRegistry(regDir, `127.0.0.1:${port}`);
    try {
      await until('the registry answers on loopback', async () =>
        fetch(`http://127.0.0.1:${port}/v2/`)
          .then((r) => r.ok)
          .catch(() => false),
      );
      digest = await pushOci(`http://127.0.0.1:${port}/v2/tss/bb`, join(sb.root, 'images', 'busybox-oci.tar'));
    } finally {
      filler.kill('SIGKILL');
    }
    reg = startRegistry(regDir, `0.0.0.0:${REGISTRY_PORT}`, sb.hosts()[0]!.netnsPath);
    await until(
      'the registry answers on the underlay, through /distribution',
      async () => (await engineGet(w, `/v1.41/distribution/${registryAddr}/tss/bb:v1/json`)).status === 200,
      60_000,
    );
  }, 240_000);

  afterAll(async () => {
    reg?.kill('SIGKILL');
    await sb.down();
    rmSync(root, { recursive: true, force: true });
  }, 60_000);

  it('GET /distribution answers the descriptor and platforms, and the registry 404 for a missing repository', async () => {
    const r = await engineGet(m, `/v1.41/distribution/${registryAddr}/tss/bb:v1/json`, {
      'X-Registry-Auth': Buffer.from('{}').toString('base64url'),
    });
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body);
    expect(body.Descriptor).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest });
    expect(body.Descriptor.size).toBeGreaterThan(0);
    expect(body.Platforms).toEqual([expect.objectContaining({ os: 'linux', architecture: expect.any(String) })]);
    // By digest too, unversioned.
    expect((await engineGet(m, `/distribution/${registryAddr}/tss/bb@${digest}/json`)).status).toBe(200);
    const missing = await engineGet(m, `/v1.41/distribution/${registryAddr}/tss/none:v1/json`);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).message).toMatch(/unknown/);
    const bad = await engineGet(m, '/v1.41/distribution/Not_Valid:/json');
    expect(bad.status).toBe(400);
  });

  it('service create resolves the tag, pins image:tag@digest, and the tasks pull it by digest and run', async () => {
    const image = `${registryAddr}/tss/bb:v1`;
    const created = await docker(
      m,
      'service',
      'create',
      '--name',
      'tss-pinned',
      '--replicas',
      '2',
      // One task on each node, whichever is ready first: both pull, and the worker has a container to inspect.
      '--replicas-max-per-node',
      '1',
      '--mount',
      'type=volume,source=tss-dist-data,target=/data',
      image,
      'sleep',
      '1d',
    );
    expect(created.code, created.err).toBe(0);
    expect(created.err).not.toMatch(/could not be accessed on a registry/);
    expect(created.err + created.out).toMatch(/overall progress: 2 out of 2 tasks/);
    const pinned = (await ok(m, 'service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', 'tss-pinned')).trim();
    expect(pinned).toBe(`${image}@${digest}`);
    // The CLI pins the platform it was told of, which the scheduler matches against the nodes' x86_64/aarch64.
    const platforms = JSON.parse(
      await ok(m, 'service', 'inspect', '--format', '{{json .Spec.TaskTemplate.Placement.Platforms}}', 'tss-pinned'),
    );
    expect(platforms).toEqual([expect.objectContaining({ OS: 'linux' })]);
    // service ls shows the image without its digest, as the docker CLI prints it.
    expect(await ok(m, 'service', 'ls')).toMatch(
      new RegExp(`tss-pinned\\s+replicated\\s+2/2 \\(max 1 per node\\)\\s+${image.replace(/[/.]/g, '\\$&')}\\s`),
    );
    // service ps too; --no-trunc shows the digest.
    expect((await ok(m, 'service', 'ps', '--format', '{{.Image}}', 'tss-pinned')).trim().split('\n')).toEqual([image, image]);
    expect((await ok(m, 'service', 'ps', '--no-trunc', '--format', '{{.Image}}', 'tss-pinned')).trim().split('\n')).toEqual([
      `${image}@${digest}`,
      `${image}@${digest}`,
    ]);
    // Every node stored the pulled image with its repo digest.
    for (const h of [m, w]) {
      const digests = JSON.parse(
        await ok(h, 'image', 'ls', '--digests', '--format', '{{json .}}').then((o) => `[${o.trim().split('\n').join(',')}]`),
      );
      expect(digests).toContainEqual(expect.objectContaining({ Repository: `${registryAddr}/tss/bb`, Digest: digest }));
    }

    // docker container inspect on the worker: its task container, as dockerd shows one.
    const names = (await ok(w, 'ps', '--filter', 'label=com.docker.swarm.service.name=tss-pinned', '--format', '{{.Names}}'))
      .trim()
      .split('\n');
    expect(names.length).toBeGreaterThanOrEqual(1);
    const [c] = JSON.parse(await ok(w, 'container', 'inspect', names[0]!));
    expect(c).toMatchObject({
      Name: `/${names[0]}`,
      State: { Status: 'running', Running: true },
      Config: { Image: `${image}@${digest}`, Cmd: ['sleep', '1d'], Labels: { 'com.docker.swarm.service.name': 'tss-pinned' } },
    });
    expect(c.State.Pid).toBeGreaterThan(0);
    expect(c.Image).toMatch(/^sha256:[0-9a-f]{64}$/);
    // A unique id prefix resolves too, and an unknown name is dockerd's 404.
    expect(JSON.parse(await ok(w, 'container', 'inspect', c.Id.slice(0, 12)))[0].Id).toBe(c.Id);
    const unknown = await docker(w, 'container', 'inspect', 'tss-no-such');
    expect(unknown.code).not.toBe(0);
    expect(unknown.err).toMatch(/No such container: tss-no-such/);
    expect(c.Mounts).toEqual([expect.objectContaining({ Type: 'volume', Name: 'tss-dist-data', Destination: '/data', RW: true })]);
    // The node's named volume, and its task containers counted by docker info.
    expect((await ok(w, 'volume', 'ls', '--format', '{{.Driver}} {{.Name}}')).trim().split('\n')).toContain('local tss-dist-data');
    expect(Number((await ok(w, 'info', '--format', '{{.ContainersRunning}}')).trim())).toBeGreaterThanOrEqual(1);

    // Portainer's snapshot, call by call (pkg/snapshot/docker.go), on the manager and on the worker.
    for (const h of [m, w]) {
      for (const path of ['/_ping', '/info', '/containers/json?all=1', '/images/json', '/volumes', '/networks', '/version'])
        expect([path, (await engineGet(h, `/v1.41${path}`)).status]).toEqual([path, 200]);
      const list = JSON.parse((await engineGet(h, '/v1.41/containers/json?all=1')).body) as { Id: string; State: string }[];
      for (const x of list.filter((y) => y.State === 'running')) {
        const r = await engineGet(h, `/v1.41/containers/${x.Id}/json`);
        expect(r.status).toBe(200);
        expect(Array.isArray(JSON.parse(r.body).Config.Env)).toBe(true);
      }
    }
    for (const path of ['/services', '/nodes', '/networks'])
      expect([path, (await engineGet(m, `/v1.41${path}`)).status]).toEqual([path, 200]);
    await ok(m, 'service', 'rm', 'tss-pinned');
  });

  it('a digest-pinned ref of the locally loaded image runs without a registry', async () => {
    // The sandbox image came from an OCI layout whose manifest digest is the one pushed above.
    const image = `${SANDBOX_IMAGE.replace(/:latest$/, '')}@${digest}`;
    const created = await docker(
      m,
      'service',
      'create',
      '--name',
      'tss-local',
      '--no-resolve-image',
      '--replicas',
      '2',
      image,
      'sleep',
      '1d',
    );
    expect(created.code, created.err).toBe(0);
    expect(created.err + created.out).toMatch(/overall progress: 2 out of 2 tasks/);
    expect((await ok(m, 'service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', 'tss-local')).trim()).toBe(image);
    // A digest nobody has is rejected with the pull's reason, not retried as a nameless image.
    const wrong = `${SANDBOX_IMAGE.replace(/:latest$/, '')}@sha256:${'0'.repeat(64)}`;
    expect((await docker(m, 'service', 'create', '-d', '--name', 'tss-wrong', '--no-resolve-image', wrong)).code).toBe(0);
    await until(
      'the unknown digest rejected',
      async () => /Rejected/.test(await ok(m, 'service', 'ps', '--no-trunc', 'tss-wrong')),
      60_000,
    );
    await ok(m, 'service', 'rm', 'tss-local', 'tss-wrong');
  });
});
