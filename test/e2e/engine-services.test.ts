// Services through the Docker Engine API, end to end: the real docker CLI
// (v28) on a sandbox manager creates a service and waits for convergence with
// its own progress display (which reads _up-to-date tasks, UpdateStatus and
// the nodes every 200 ms), lists it (REPLICAS from ServiceStatus), lists its
// tasks, inspects it, updates, scales and rolls it back, reads its logs (the
// multiplexed stream with details), refuses a field tsswarm cannot honour by
// its Docker name, and removes it; then networks, secrets and configs made,
// used by a service and removed. Skipped, saying why, without docker.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { have } from '../have.js';
import { canRunSandbox, joinByCli, until } from './helpers.js';

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

async function docker(host: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await sb.execCapture(host, ['docker', ...args], { timeoutMs: 120_000 });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

async function ok(host: string, ...args: string[]): Promise<string> {
  const r = await docker(host, ...args);
  if (r.code !== 0) throw new Error(`${host}: docker ${args.join(' ')} failed (${r.code}): ${r.err || r.out}`);
  return r.out;
}

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
      '--sysctl',
      'net.core.somaxconn=1024',
      '--no-resolve-image',
      SANDBOX_IMAGE,
    );
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/Error response from daemon: .*TaskTemplate\.ContainerSpec\.Sysctls/);
    expect(await ok(m, 'service', 'ls')).not.toMatch(/\bsys\b/);
    expect((await docker(m, 'service', 'inspect', 'nope')).err).toMatch(/no such service: nope|service nope not found/i);

    expect(await docker(m, 'service', 'rm', 'web')).toMatchObject({ code: 0 });
    expect((await ok(m, 'service', 'ls')).trim().split('\n')).toHaveLength(1);
  }, 300_000);

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

  it('docker stack deploy: a compose file with a network and a secret; stack ls, services, ps; a redeploy; stack rm', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tss-e2estack-'));
    try {
      writeFileSync(join(dir, 'dbpass.txt'), 'tss-stack-secret');
      writeFileSync(
        join(dir, 'compose.yml'),
        [
          'version: "3.8"',
          'services:',
          '  web:',
          `    image: ${SANDBOX_IMAGE}`,
          '    command: sleep 1d',
          '    deploy:',
          '      replicas: 2',
          '    networks: [back]',
          '    secrets: [dbpass]',
          'networks:',
          '  back: {}',
          'secrets:',
          '  dbpass:',
          '    file: ./dbpass.txt',
          '',
        ].join('\n'),
      );
      const deploy = () => docker(m, 'stack', 'deploy', '--resolve-image', 'never', '-c', join(dir, 'compose.yml'), 'demo');
      const first = await deploy();
      expect(first.code, first.err).toBe(0);
      expect(first.out).toMatch(/Creating network demo_back/);
      expect(first.out).toMatch(/Creating secret demo_dbpass/);
      expect(first.out).toMatch(/Creating service demo_web/);
      expect(await ok(m, 'stack', 'ls')).toMatch(/demo\s+1/);
      await until(
        'both stack tasks running',
        async () => /demo_web\s+replicated\s+2\/2/.test(await ok(m, 'stack', 'services', 'demo')),
        60_000,
      );
      const ps = (await ok(m, 'stack', 'ps', 'demo')).trim().split('\n').slice(1);
      expect(ps.filter((l) => /demo_web\.\d/.test(l))).toHaveLength(2);
      const [svc] = JSON.parse(await ok(m, 'service', 'inspect', 'demo_web'));
      expect(svc.Spec.Labels).toMatchObject({ 'com.docker.stack.namespace': 'demo', 'com.docker.stack.image': SANDBOX_IMAGE });
      // A redeploy updates the secret's labels (the same value sent again) and the service.
      const again = await deploy();
      expect(again.code, again.err).toBe(0);
      expect(again.out).toMatch(/Updating service demo_web/);
      const rm = await docker(m, 'stack', 'rm', 'demo');
      expect(rm.code, rm.err).toBe(0);
      await until('the stack gone', async () => (await ok(m, 'stack', 'ls')).trim().split('\n').length === 1);
      await until(
        'its network and secret gone',
        async () => {
          const nets = await ok(m, 'network', 'ls');
          const secs = await ok(m, 'secret', 'ls');
          return !nets.includes('demo_back') && !secs.includes('demo_dbpass');
        },
        60_000,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
