// Issue 18's container options end to end on one sandbox node: the real docker
// CLI (v28) creates a service with --sysctl, --ulimit, --host, --group,
// --dns, --dns-search, --dns-option and --generic-resource, tsswarm's CLI
// updates it with --oom-score-adj;
// `docker service inspect` shows them under Docker's field names; the effect is
// read from inside the task's container; a task reserving more gpus than the
// node advertises (daemon --node-generic-resource gpu=2) stays pending and
// `docker service ps` says why. Skipped, saying why, without the docker CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, tsswarmOn, until } from './helpers.js';

const haveDocker = have('docker');
if (!haveDocker) console.warn('container-options e2e: skipped, the docker CLI is not installed');

const sb = new Sandbox({
  root: `/tmp/tss-e2eopts-${process.pid}`,
  prefix: `tss-o${process.pid % 1000}-`,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--node-generic-resource', 'gpu=2'] };
  },
});
const { docker, ok } = dockerOn(sb, 120_000);
const { ts } = tsswarmOn(sb, 120_000);

describe.skipIf(!canRunSandbox || !haveDocker)('container options through the docker CLI', () => {
  let m = '';
  beforeAll(async () => {
    await sb.up({ managers: 1, workers: 0, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    m = sb.hosts()[0]!.name;
  }, 180_000);
  afterAll(async () => {
    await sb.down();
  }, 60_000);

  it('reach the container, show in inspect with Docker names, and reserve generic resources', async () => {
    const created = await docker(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'tss-opts',
      '--sysctl',
      'net.ipv4.ip_forward=1',
      '--ulimit',
      'nofile=1234:2345',
      '--host',
      'db.local:10.9.8.7',
      '--group',
      '4321',
      '--dns',
      '192.0.2.53',
      '--dns-search',
      'example.com',
      '--dns-option',
      'timeout:1',
      '--generic-resource',
      'gpu=1',
      '--no-resolve-image',
      SANDBOX_IMAGE,
      'sleep',
      '1d',
    );
    expect(created.code, created.err).toBe(0);

    const spec = JSON.parse(await ok(m, 'service', 'inspect', '--format', '{{json .Spec.TaskTemplate}}', 'tss-opts')) as {
      ContainerSpec: Record<string, unknown>;
      Resources: { Reservations: unknown };
    };
    expect(spec.ContainerSpec).toMatchObject({
      Sysctls: { 'net.ipv4.ip_forward': '1' },
      Ulimits: [{ Name: 'nofile', Soft: 1234, Hard: 2345 }],
      Hosts: ['10.9.8.7 db.local'],
      Groups: ['4321'],
      DNSConfig: { Nameservers: ['192.0.2.53'], Search: ['example.com'], Options: ['timeout:1'] },
    });
    expect(spec.Resources.Reservations).toEqual({ GenericResources: [{ DiscreteResourceSpec: { Kind: 'gpu', Value: 1 } }] });
    // The node's hello (with its description) may land a moment after the sandbox is up.
    await until(
      "the node's generic resources in its description",
      async () =>
        (await ok(m, 'node', 'inspect', '--format', '{{json .Description.Resources.GenericResources}}', 'self')).includes(
          '{"DiscreteResourceSpec":{"Kind":"gpu","Value":2}}',
        ),
      30_000,
    );

    // The docker CLI sends --oom-score-adj from API 1.46 only (the Engine API advertises 1.41): tsswarm's CLI sets it.
    const upd = await ts(m, 'service', 'update', '-d', '--oom-score-adj', '345', 'tss-opts');
    expect(upd.code, upd.err).toBe(0);
    expect(await ok(m, 'service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.OomScoreAdj}}', 'tss-opts')).toBe('345\n');

    const probe =
      'echo "fwd=$(cat /proc/sys/net/ipv4/ip_forward) nofile=$(ulimit -Sn):$(ulimit -Hn) groups=$(id -G) oom=$(cat /proc/self/oom_score_adj)"; grep -v "^#" /etc/resolv.conf; grep db.local /etc/hosts';
    let out = '';
    await until(
      'the updated task runs and answers the probe',
      async () => {
        const r = await ts(m, 'service', 'exec', 'tss-opts', '--', 'sh', '-c', probe);
        out = r.out;
        return r.code === 0 && out.includes('oom=345');
      },
      90_000,
    );
    expect(out).toContain('fwd=1 nofile=1234:2345 groups=0 4321 oom=345');
    expect(out).toContain('nameserver 192.0.2.53\nsearch example.com\noptions timeout:1');
    expect(out).toMatch(/^10\.9\.8\.7\tdb\.local$/m);

    // gpu=1 is held by tss-opts: a task wanting 2 finds no node, and says so.
    expect(
      (
        await docker(
          m,
          'service',
          'create',
          '-d',
          '--name',
          'tss-gpu',
          '--generic-resource',
          'gpu=2',
          '--no-resolve-image',
          SANDBOX_IMAGE,
          'sleep',
          '1d',
        )
      ).code,
    ).toBe(0);
    await until(
      'the task pending for lack of gpus',
      async () =>
        /insufficient generic resources gpu/.test(
          await ok(m, 'service', 'ps', '--no-trunc', '--format', '{{.CurrentState}} {{.Error}}', 'tss-gpu'),
        ),
      60_000,
    );
    // Freeing the gpu lets it run.
    await ok(m, 'service', 'rm', 'tss-opts');
    await until(
      'the gpu task running once the gpu is free',
      async () => /^Running/m.test(await ok(m, 'service', 'ps', '--format', '{{.CurrentState}}', 'tss-gpu')),
      90_000,
    );
    await ok(m, 'service', 'rm', 'tss-gpu');
  }, 400_000);
});
