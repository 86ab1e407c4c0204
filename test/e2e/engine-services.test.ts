// Services through the Docker Engine API, end to end: the real docker CLI
// (v28) on a sandbox manager creates a service and waits for convergence with
// its own progress display (which reads _up-to-date tasks, UpdateStatus and
// the nodes every 200 ms), lists it (REPLICAS from ServiceStatus), lists its
// tasks, inspects it, updates, scales and rolls it back, reads its logs (the
// multiplexed stream with details), refuses a field tsswarm cannot honour by
// its Docker name, and removes it; then networks, secrets and configs made,
// used by a service and removed. Skipped, saying why, without docker.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage } from '../../deploy/images/busybox.js';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, until } from './helpers.js';

const haveDocker = have('docker');
if (!haveDocker) console.warn('engine-services e2e: skipped, the docker CLI is not installed (the acceptance test needs the real client)');

const sb = new Sandbox({
  root: `/tmp/tss-e2esvc-${process.pid}`,
  prefix: `tss-v${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '2000'] };
  },
});
const { docker, ok } = dockerOn(sb, 120_000);

/** One JSON request on a host's docker socket from the test process (a unix socket is not bound to a network namespace). */
function raw(socketPath: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = data ? { 'Content-Type': 'application/json', 'Content-Length': String(data.length) } : {};
    const req = request({ socketPath, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const V2_IMAGE = 'tsswarm/busybox:v2';

describe.skipIf(!canRunSandbox || !haveDocker)('services through the Docker Engine API with the real docker CLI', () => {
  let m = '';
  beforeAll(async () => {
    await sb.up({ managers: 1, workers: 1, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    m = sb.hosts()[0]!.name;
  }, 180_000);
  afterAll(async () => {
    await sb.down();
  }, 60_000);

  it('create waits for convergence; ls, ps, inspect; update, scale, rollback; logs; a refused field; rm', async () => {
    const created = await docker(
      m,
      'service',
      'create',
      '--name',
      'web',
      '--replicas',
      '2',
      '--update-monitor',
      '1s',
      '--no-resolve-image',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      'echo hello-from-task; sleep 1d',
    );
    expect(created.code, created.err).toBe(0);
    const id = created.out.trim().split('\n')[0]!.trim();
    expect(id).toMatch(/^\w{25}$/);
    // The CLI's own progress display ran to its end: both tasks running, then verified stable.
    expect(created.err + created.out).toMatch(/overall progress: 2 out of 2 tasks/);
    expect(created.err + created.out).toMatch(/verify: Service .* converged/);

    const ls = await ok(m, 'service', 'ls');
    expect(ls).toMatch(new RegExp(`${id.slice(0, 12)}\\s+web\\s+replicated\\s+2/2\\s+${SANDBOX_IMAGE.replace(/[/.]/g, '\\$&')}`));
    const ps = (await ok(m, 'service', 'ps', 'web')).trim().split('\n').slice(1);
    expect(ps).toHaveLength(2);
    for (const row of ps) expect(row).toMatch(/web\.[12]\s+\S+\s+\S+\s+Running\s+Running/);
    const [inspected] = JSON.parse(await ok(m, 'service', 'inspect', 'web'));
    expect(inspected).toMatchObject({ ID: id, Spec: { Name: 'web', Mode: { Replicated: { Replicas: 2 } }, Labels: {} } });

    // Logs: the multiplexed stream, each line with its task's context (the CLI needs the details).
    await until('both tasks logged their line', async () => {
      const logs = await docker(m, 'service', 'logs', 'web');
      return logs.code === 0 && (logs.out.match(/web\.\d\.\w+@\S+\s+\|\s+hello-from-task/g) ?? []).length === 2;
    });

    expect(await docker(m, 'service', 'update', '-d', '--env-add', 'X=1', 'web')).toMatchObject({ code: 0 });
    expect(JSON.parse(await ok(m, 'service', 'inspect', '--format', '{{json .Spec.TaskTemplate.ContainerSpec.Env}}', 'web'))).toEqual([
      'X=1',
    ]);
    const scaled = await docker(m, 'service', 'scale', 'web=3');
    expect(scaled.code, scaled.err).toBe(0);
    expect(scaled.err + scaled.out).toMatch(/overall progress: 3 out of 3 tasks/);
    // REPLICAS counts every running task (as dockerd: the env update's old tasks too, until they stop).
    await until(
      '3/3 once the update has replaced every task',
      async () => /web\s+replicated\s+3\/3/.test(await ok(m, 'service', 'ls')),
      60_000,
    );
    expect(await docker(m, 'service', 'rollback', '-d', 'web')).toMatchObject({ code: 0 });
    await until('the rollback back at 2 replicas', async () => /web\s+replicated\s+2\/2/.test(await ok(m, 'service', 'ls')), 60_000);

    // A field tsswarm cannot honour is refused, by its Docker name, and nothing is created.
    const refused = await docker(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'sys',
      '--isolation',
      'hyperv',
      '--no-resolve-image',
      SANDBOX_IMAGE,
    );
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/Error response from daemon: .*TaskTemplate\.ContainerSpec\.Isolation/);
    expect(await ok(m, 'service', 'ls')).not.toMatch(/\bsys\b/);
    expect((await docker(m, 'service', 'inspect', 'nope')).err).toMatch(/no such service: nope|service nope not found/i);

    expect(await docker(m, 'service', 'rm', 'web')).toMatchObject({ code: 0 });
    expect((await ok(m, 'service', 'ls')).trim().split('\n')).toHaveLength(1);
  }, 300_000);

  it('create -p with --network converges; inspect --pretty; update --image; logs -f --tail 5; a failing image pauses the update with Docker message; rollback', async () => {
    // A second tag of the sandbox image, loaded on every host as a user would (tsswarm image load).
    const dir = mkdtempSync(join(tmpdir(), 'tss-e2esvc-img-'));
    try {
      const tar = join(dir, 'v2.tar');
      await buildBusyboxImage({ outPath: tar, format: 'oci', tag: V2_IMAGE });
      for (const h of sb.hosts()) {
        const r = await sb.execCapture(h.name, ['tsswarm', 'image', 'load', '-i', tar], { timeoutMs: 120_000 });
        expect(r.code, r.stderr).toBe(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await ok(m, 'network', 'create', '-d', 'overlay', '--attachable', 'front');
    const script = 'i=0; while true; do i=$((i+1)); echo line-$i; sleep 0.2; done';
    const created = await docker(
      m,
      'service',
      'create',
      '--name',
      'counter',
      '--replicas',
      '3',
      '-p',
      '8080:80',
      '--network',
      'front',
      '--update-monitor',
      '2s',
      '--no-resolve-image',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      script,
    );
    expect(created.code, created.err).toBe(0);
    expect(created.err + created.out).toMatch(/overall progress: 3 out of 3 tasks/);
    expect(await ok(m, 'service', 'ls')).toMatch(/counter\s+replicated\s+3\/3\s+\S+\s+\*:8080->80\/tcp/);
    const pretty = await ok(m, 'service', 'inspect', '--pretty', 'counter');
    expect(pretty).toMatch(/Name:\s+counter/);
    expect(pretty).toMatch(/Replicas:\s+3/);
    expect(pretty).toMatch(/PublishedPort = 8080/);
    expect(pretty).toMatch(/Networks:\s+front/);

    // logs -f --tail 5: five lines per task at first, then the lines printed since, until the client leaves.
    await until('each task printed more than 10 lines', async () => {
      const out = await ok(m, 'service', 'logs', '--raw', 'counter');
      return (out.match(/line-11\b/g) ?? []).length === 3;
    });
    const seenBefore = Math.max(
      ...[...(await ok(m, 'service', 'logs', '--raw', 'counter')).matchAll(/line-(\d+)/g)].map((x) => Number(x[1])),
    );
    const follower = spawn('docker', ['service', 'logs', '-f', '--tail', '5', '--no-task-ids', 'counter'], {
      env: { ...process.env, DOCKER_HOST: `unix://${sb.hosts()[0]!.dockerSocketPath}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let followed = '';
    follower.stdout.on('data', (c: Buffer) => {
      followed += c.toString();
    });
    try {
      await until('the follower shows lines printed after it started', async () =>
        [...followed.matchAll(/line-(\d+)/g)].some((x) => Number(x[1]) > seenBefore + 5),
      );
      // --tail 5: no task's first line was its first line ever.
      expect(followed).not.toMatch(/\bline-1\n/);
      expect(followed).toMatch(/counter\.[123]@\S+\s+\|\s+line-\d+/);
    } finally {
      follower.kill();
    }

    const v2 = await docker(m, 'service', 'update', '--image', V2_IMAGE, '--no-resolve-image', 'counter');
    expect(v2.code, v2.err).toBe(0);
    expect(v2.err + v2.out).toMatch(/verify: Service .* converged/);
    expect((await ok(m, 'service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', 'counter')).trim()).toBe(V2_IMAGE);

    // An image no node has and no registry serves: the first new task fails, the update pauses (the default
    // failure action) and the CLI's progress display ends with Docker's message and a failure exit.
    const failing = await docker(m, 'service', 'update', '--image', 'tsswarm/absent:1', '--no-resolve-image', 'counter');
    expect(failing.code).toBe(1);
    expect(failing.err).toMatch(/service update paused: update paused due to failure or early termination of task \w+/);
    expect((await ok(m, 'service', 'inspect', '--format', '{{.UpdateStatus.State}}', 'counter')).trim()).toBe('paused');
    // The tasks not yet replaced keep running the previous image.
    const running = (
      await ok(m, 'service', 'ps', '--filter', 'desired-state=running', '--format', '{{.Image}} {{.CurrentState}}', 'counter')
    )
      .trim()
      .split('\n');
    expect(running.filter((l) => l.startsWith(`${V2_IMAGE} Running`)).length).toBeGreaterThanOrEqual(2);

    const back = await docker(m, 'service', 'rollback', 'counter');
    expect(back.code, back.err).toBe(0);
    expect(back.err + back.out).toMatch(/rollback: manually requested rollback/);
    expect((await ok(m, 'service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', 'counter')).trim()).toBe(V2_IMAGE);
    await until('3/3 on the previous image again', async () => /counter\s+replicated\s+3\/3/.test(await ok(m, 'service', 'ls')), 60_000);

    await ok(m, 'service', 'rm', 'counter');
    await until(
      'the network removable once the tasks are gone',
      async () => (await docker(m, 'network', 'rm', 'front')).code === 0,
      60_000,
    );
  }, 300_000);

  it("bad input gets dockerd's error and stores nothing: an unknown network, a stale version, a field tsswarm cannot honour", async () => {
    const sock = sb.hosts()[0]!.dockerSocketPath;
    const unknown = await docker(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'lost',
      '--network',
      'nosuch',
      '--no-resolve-image',
      SANDBOX_IMAGE,
    );
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/Error response from daemon: network nosuch not found/);

    await ok(m, 'service', 'create', '-d', '--name', 'versioned', '--no-resolve-image', SANDBOX_IMAGE, 'sleep', '1d');
    const [svc] = JSON.parse(await ok(m, 'service', 'inspect', 'versioned'));
    const version = svc.Version.Index as number;
    await ok(m, 'service', 'update', '-d', '--env-add', 'A=1', 'versioned');
    const stale = await raw(sock, 'POST', `/v1.41/services/${svc.ID}/update?version=${version}`, {
      ...svc.Spec,
      Labels: { stale: 'yes' },
    });
    expect(stale.status).toBe(500);
    expect(JSON.parse(stale.body).message).toMatch(/update out of sequence/);
    const [after] = JSON.parse(await ok(m, 'service', 'inspect', 'versioned'));
    expect(after.Spec.Labels).toEqual({});
    expect(after.Spec.TaskTemplate.ContainerSpec.Env).toEqual(['A=1']);

    const unhonoured = await raw(sock, 'POST', '/v1.41/services/create', {
      Name: 'cannot',
      TaskTemplate: { ContainerSpec: { Image: SANDBOX_IMAGE, Isolation: 'hyperv' } },
    });
    expect(unhonoured.status).toBe(400);
    expect(JSON.parse(unhonoured.body).message).toMatch(/Isolation/);
    const names = (await ok(m, 'service', 'ls', '--format', '{{.Name}}')).trim().split('\n');
    expect(names).toEqual(['versioned']);
    await ok(m, 'service', 'rm', 'versioned');
  }, 120_000);

  it("docker ps and docker image ls on each node: its task containers named and labelled as Swarm's, its images", async () => {
    const created = await docker(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'pinger',
      '--replicas',
      '2',
      '--no-resolve-image',
      SANDBOX_IMAGE,
      'sleep',
      '1d',
    );
    expect(created.code, created.err).toBe(0);
    await until('both pinger tasks running', async () => /pinger\s+replicated\s+2\/2/.test(await ok(m, 'service', 'ls')), 60_000);
    let seen = 0;
    for (const h of sb.hosts()) {
      const ps = await ok(
        h.name,
        'ps',
        '--filter',
        'label=com.docker.swarm.service.name=pinger',
        '--format',
        '{{.Names}} {{.State}} {{.Image}}',
      );
      for (const line of ps.trim().split('\n').filter(Boolean)) {
        expect(line).toMatch(new RegExp(`^pinger\\.[12]\\.\\w+ running ${SANDBOX_IMAGE.replace(/[/.]/g, '\\$&')}$`));
        seen++;
      }
      expect(await ok(h.name, 'image', 'ls')).toMatch(/tsswarm\/busybox\s+latest/);
    }
    expect(seen).toBe(2);
    // docker node ps NODE: the same two tasks, each listed under the node that runs it.
    let listed = 0;
    for (const h of sb.hosts()) {
      const rows = (
        await ok(m, 'node', 'ps', '--filter', 'desired-state=running', '--filter', 'name=pinger', '--format', '{{.Name}} {{.Node}}', h.name)
      )
        .trim()
        .split('\n')
        .filter(Boolean);
      for (const row of rows) expect(row).toMatch(new RegExp(`^pinger\\.[12] ${h.name}$`));
      listed += rows.length;
    }
    expect(listed).toBe(2);
    await ok(m, 'service', 'rm', 'pinger');
  }, 180_000);

  it('networks, secrets and configs: create, ls, inspect, used by a service, removal refused while used, rm', async () => {
    const netId = (await ok(m, 'network', 'create', '-d', 'overlay', '--attachable', '--subnet', '10.77.0.0/24', 'backend')).trim();
    expect(netId).toMatch(/^\w{25}$/);
    expect(await ok(m, 'network', 'ls', '--filter', 'driver=overlay')).toMatch(/backend\s+overlay\s+swarm/);
    const [net] = JSON.parse(await ok(m, 'network', 'inspect', 'backend'));
    expect(net).toMatchObject({
      Name: 'backend',
      Id: netId,
      Scope: 'swarm',
      Attachable: true,
      IPAM: { Config: [{ Subnet: '10.77.0.0/24' }] },
    });
    expect((await docker(m, 'network', 'create', '-d', 'macvlan', 'nope')).err).toContain('Driver is not supported by tsswarm yet');

    const secretId = (
      await sb.execCapture(m, ['docker', 'secret', 'create', '--label', 'env=e2e', 'db_pw', '-'], {
        input: 'tss-engine-secret',
        timeoutMs: 60_000,
      })
    ).stdout.trim();
    expect(secretId).toMatch(/^\w{25}$/);
    expect(await ok(m, 'secret', 'ls')).toMatch(new RegExp(`${secretId}\\s+db_pw`));
    const [sec] = JSON.parse(await ok(m, 'secret', 'inspect', 'db_pw'));
    expect(sec).toMatchObject({ ID: secretId, Spec: { Name: 'db_pw', Labels: { env: 'e2e' } } });
    expect(sec.Spec.Data).toBeUndefined();
    await sb.execCapture(m, ['docker', 'config', 'create', 'app.conf', '-'], { input: 'x=tss-engine-config\n', timeoutMs: 60_000 });
    const [conf] = JSON.parse(await ok(m, 'config', 'inspect', 'app.conf'));
    expect(Buffer.from(conf.Spec.Data, 'base64').toString()).toBe('x=tss-engine-config\n');

    const created = await docker(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'api',
      '--network',
      'backend',
      '--secret',
      'db_pw',
      '--config',
      'source=app.conf,target=/etc/app.conf',
      '--no-resolve-image',
      SANDBOX_IMAGE,
      'sleep',
      '1d',
    );
    expect(created.code, created.err).toBe(0);
    await until('the api task running with its secret', async () => /Running\s+Running/.test(await ok(m, 'service', 'ps', 'api')), 60_000);
    const [svc] = JSON.parse(await ok(m, 'service', 'inspect', 'api'));
    expect(svc.Spec.TaskTemplate.Networks).toEqual([{ Target: netId }]);
    expect(svc.Spec.TaskTemplate.ContainerSpec.Secrets[0]).toMatchObject({
      SecretID: secretId,
      SecretName: 'db_pw',
      File: { Name: 'db_pw' },
    });
    expect((await docker(m, 'secret', 'rm', 'db_pw')).err).toContain("secret 'db_pw' is in use by the following service: api");
    expect((await docker(m, 'network', 'rm', 'backend')).code).toBe(1);

    await ok(m, 'service', 'rm', 'api');
    await until('the secret removable once the service is gone', async () => (await docker(m, 'secret', 'rm', 'db_pw')).code === 0);
    expect((await docker(m, 'config', 'rm', 'app.conf')).code).toBe(0);
    await until(
      'the network removable once its tasks are gone',
      async () => (await docker(m, 'network', 'rm', 'backend')).code === 0,
      60_000,
    );
    expect(await ok(m, 'network', 'ls')).not.toMatch(/backend/);
    expect((await docker(m, 'network', 'inspect', 'backend')).err).toMatch(/network backend not found/);
  }, 300_000);

  it('docker stack deploy: three services with a network, a secret, a config, a published port and deploy sections; stack ls, services, ps; a redeploy; stack rm; the same file through tsswarm stack deploy, removed by docker stack rm', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tss-e2estack-'));
    try {
      writeFileSync(join(dir, 'dbpass.txt'), 'tss-stack-secret');
      writeFileSync(join(dir, 'app.conf'), 'tss-stack-config\n');
      writeFileSync(
        join(dir, 'compose.yml'),
        [
          'version: "3.8"',
          'services:',
          '  web:',
          `    image: ${SANDBOX_IMAGE}`,
          '    command: sleep 1d',
          '    ports: ["8081:80"]',
          '    deploy:',
          '      replicas: 2',
          '      update_config: { parallelism: 1, delay: 1s }',
          '      restart_policy: { condition: on-failure }',
          '      resources: { limits: { memory: 64M } }',
          '    networks: [back]',
          '    secrets: [dbpass]',
          '  api:',
          `    image: ${SANDBOX_IMAGE}`,
          '    command: sleep 1d',
          '    networks: [back]',
          '    configs: [{ source: appconf, target: /etc/app.conf }]',
          '    deploy:',
          '      placement: { constraints: [node.role == manager] }',
          '  agent:',
          `    image: ${SANDBOX_IMAGE}`,
          '    command: sleep 1d',
          '    deploy: { mode: global }',
          'networks:',
          '  back: {}',
          'secrets:',
          '  dbpass:',
          '    file: ./dbpass.txt',
          'configs:',
          '  appconf:',
          '    file: ./app.conf',
          '',
        ].join('\n'),
      );
      const file = join(dir, 'compose.yml');
      const deploy = () => docker(m, 'stack', 'deploy', '--resolve-image', 'never', '-c', file, 'demo');
      const running = async (stack: string) => {
        const out = await ok(m, 'stack', 'services', stack);
        return (
          new RegExp(`${stack}_web\\s+replicated\\s+2/2\\s+\\S+\\s+\\*:8081->80/tcp`).test(out) &&
          new RegExp(`${stack}_api\\s+replicated\\s+1/1`).test(out) &&
          new RegExp(`${stack}_agent\\s+global\\s+2/2`).test(out)
        );
      };
      const gone = (stack: string) =>
        until(
          `stack ${stack}: its services, network, secret and config gone`,
          async () => {
            const all = [
              await ok(m, 'stack', 'ls'),
              await ok(m, 'service', 'ls'),
              await ok(m, 'network', 'ls'),
              await ok(m, 'secret', 'ls'),
              await ok(m, 'config', 'ls'),
            ].join('\n');
            return !all.includes(`${stack}_`) && !new RegExp(`^${stack}\\s`, 'm').test(all);
          },
          60_000,
        );

      const first = await deploy();
      expect(first.code, first.err).toBe(0);
      expect(first.out).toMatch(/Creating network demo_back/);
      expect(first.out).toMatch(/Creating secret demo_dbpass/);
      expect(first.out).toMatch(/Creating config demo_appconf/);
      for (const s of ['web', 'api', 'agent']) expect(first.out).toMatch(new RegExp(`Creating service demo_${s}`));
      expect(await ok(m, 'stack', 'ls')).toMatch(/demo\s+3/);
      await until('every stack replica running', () => running('demo'), 90_000);
      const ps = (await ok(m, 'stack', 'ps', 'demo')).trim().split('\n').slice(1);
      expect(ps.filter((l) => /demo_web\.\d/.test(l))).toHaveLength(2);
      expect(ps.filter((l) => /demo_agent\.\w+/.test(l))).toHaveLength(2);
      const [web] = JSON.parse(await ok(m, 'service', 'inspect', 'demo_web'));
      expect(web.Spec.Labels).toMatchObject({ 'com.docker.stack.namespace': 'demo', 'com.docker.stack.image': SANDBOX_IMAGE });
      expect(web.Spec.TaskTemplate.Resources.Limits.MemoryBytes).toBe(64 * 1024 * 1024);
      expect(web.Spec.UpdateConfig).toMatchObject({ Parallelism: 1, Delay: 1_000_000_000 });
      const [api] = JSON.parse(await ok(m, 'service', 'inspect', 'demo_api'));
      expect(api.Spec.TaskTemplate.Placement.Constraints).toEqual(['node.role == manager']);
      expect(api.Spec.TaskTemplate.ContainerSpec.Configs[0]).toMatchObject({ ConfigName: 'demo_appconf', File: { Name: '/etc/app.conf' } });
      // A redeploy updates the secret's labels (the same value sent again) and the services.
      const again = await deploy();
      expect(again.code, again.err).toBe(0);
      expect(again.out).toMatch(/Updating service demo_web/);
      const rm = await docker(m, 'stack', 'rm', 'demo');
      expect(rm.code, rm.err).toBe(0);
      await gone('demo');

      // The same file through tsswarm's own stack deploy: the same objects and labels, so docker stack rm removes them.
      const ours = await sb.execCapture(m, ['tsswarm', 'stack', 'deploy', '--resolve-image', 'never', '-c', file, 'demo2'], {
        timeoutMs: 120_000,
      });
      expect(ours.code, ours.stderr).toBe(0);
      await until('every replica of the tsswarm-deployed stack running', () => running('demo2'), 90_000);
      expect(await ok(m, 'stack', 'ls')).toMatch(/demo2\s+3/);
      const rm2 = await docker(m, 'stack', 'rm', 'demo2');
      expect(rm2.code, rm2.err).toBe(0);
      expect(rm2.out).toMatch(/Removing service demo2_web/);
      expect(rm2.out).toMatch(/Removing config demo2_appconf/);
      await gone('demo2');

      // A typo'd key: the docker CLI's own validation and tsswarm's give the same error, and nothing is made.
      writeFileSync(join(dir, 'typo.yml'), ['version: "3.8"', 'services:', '  web:', `    imagee: ${SANDBOX_IMAGE}`, ''].join('\n'));
      const theirs = await docker(m, 'stack', 'deploy', '-c', join(dir, 'typo.yml'), 'typo');
      expect(theirs.code).toBe(1);
      expect(theirs.err).toContain('services.web Additional property imagee is not allowed');
      const mine = await sb.execCapture(m, ['tsswarm', 'stack', 'deploy', '-c', join(dir, 'typo.yml'), 'typo'], { timeoutMs: 60_000 });
      expect(mine.code).not.toBe(0);
      expect(mine.stderr).toContain('services.web Additional property imagee is not allowed');
      expect(await ok(m, 'stack', 'ls')).not.toMatch(/typo/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 420_000);
});
