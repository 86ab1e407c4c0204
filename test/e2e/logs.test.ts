// Issue 18's logs, end to end on one sandbox node: a service's log driver set
// by tsswarm's CLI and read back through both CLIs' inspect; `service logs`
// with --since/--until (filtered on the agent), --raw, --no-task-ids,
// --no-resolve, --details and -t through tsswarm's CLI, and --since, --raw,
// --details through the real docker CLI (v28, the Engine API); the none
// driver refused for reading by both; an unsupported driver refused by name.
// Skipped, saying why, without the docker CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, tsswarmOn, until } from './helpers.js';

const haveDocker = have('docker');
if (!haveDocker) console.warn('logs e2e: skipped, the docker CLI is not installed');

const sb = new Sandbox({ root: `/tmp/tss-e2elogs-${process.pid}`, prefix: `tss-g${process.pid % 1000}-` });
const { docker } = dockerOn(sb, 120_000);
const { ts, ok } = tsswarmOn(sb, 120_000);

describe.skipIf(!canRunSandbox || !haveDocker)('service logs: drivers and the flags of both CLIs', () => {
  let m = '';
  beforeAll(async () => {
    await sb.up({ managers: 1, workers: 0, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    m = sb.hosts()[0]!.name;
  }, 180_000);
  afterAll(async () => {
    await sb.down();
  }, 60_000);

  it('json-file with options; --since/--until, --raw, --no-task-ids, --no-resolve, --details; none cannot be read', async () => {
    await ok(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'tss-lg',
      '--log-driver',
      'json-file',
      '--log-opt',
      'max-size=64k',
      '--log-opt',
      'max-file=2',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      'echo early; sleep 2; echo late; sleep 1d',
    );
    const d = JSON.parse(
      (await docker(m, 'service', 'inspect', '--format', '{{json .Spec.TaskTemplate.LogDriver}}', 'tss-lg')).out,
    ) as unknown;
    expect(d).toEqual({ Name: 'json-file', Options: { 'max-file': '2', 'max-size': '64k' } });

    // Both lines, each with its time (the prefix after it), read through tsswarm's CLI.
    const stamped = await until(
      'both lines in the logs',
      async () => {
        const out = await ok(m, 'service', 'logs', '-t', '--no-task-ids', 'tss-lg');
        const lines = out.trim().split('\n');
        return lines.length === 2 && /late$/.test(lines[1]!) ? lines : false;
      },
      60_000,
    );
    const [early, late] = stamped.map((l) => /^(\S+) tss-lg\.1@\S+ {4}\| (early|late)$/.exec(l));
    expect(early?.[2]).toBe('early');
    expect(late?.[2]).toBe('late');
    const lateAt = late![1]!;

    expect(await ok(m, 'service', 'logs', '--raw', '--since', lateAt, 'tss-lg')).toBe('late\n');
    expect(await ok(m, 'service', 'logs', '--raw', '--until', lateAt, 'tss-lg')).toBe('early\n');
    expect(await ok(m, 'service', 'logs', '--raw', '--since', '1h', '--until', lateAt, 'tss-lg')).toBe('early\n');
    const bad = await ts(m, 'service', 'logs', '--since', 'yesterday', 'tss-lg');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--since must be a duration back from now .*\(got "yesterday"\)/);

    const [task] = JSON.parse(await ok(m, 'service', 'ps', '--format', 'json', 'tss-lg')) as {
      meta: { id: string };
      nodeId: string;
      serviceId: string;
    }[];
    const svcId = JSON.parse(await ok(m, 'service', 'inspect', 'tss-lg'))[0].meta.id as string;
    expect(await ok(m, 'service', 'logs', '--no-resolve', '--no-trunc', '--since', lateAt, 'tss-lg')).toBe(
      `${svcId}.1.${task!.meta.id}@${task!.nodeId}    | late\n`,
    );
    expect(await ok(m, 'service', 'logs', '--details', '--raw', '--since', lateAt, 'tss-lg')).toBe(
      `com.docker.swarm.node.id=${task!.nodeId},com.docker.swarm.service.id=${svcId},com.docker.swarm.task.id=${task!.meta.id} late\n`,
    );

    // The docker CLI: its --since is sent as Unix seconds; --raw prints the stream as it comes, details included.
    const dSince = await docker(m, 'service', 'logs', '--raw', '--since', lateAt, 'tss-lg');
    expect(dSince.code, dSince.err).toBe(0);
    expect(dSince.out).toBe('late\n');
    const dDetails = await docker(m, 'service', 'logs', '--raw', '--details', '--since', lateAt, 'tss-lg');
    expect(dDetails.out).toBe(
      `com.docker.swarm.node.id=${task!.nodeId},com.docker.swarm.service.id=${svcId},com.docker.swarm.task.id=${task!.meta.id} late\n`,
    );
    const dTask = await docker(m, 'service', 'logs', '--no-task-ids', task!.meta.id);
    expect(dTask.out).toMatch(/^tss-lg\.1@\S+\s+\| early\ntss-lg\.1@\S+\s+\| late\n$/);

    // none: nothing kept. Each task is judged by its own driver: the task from before the update stays
    // readable and the task on none says so; that task read by its id is refused by both CLIs.
    await ok(m, 'service', 'update', '-d', '--log-driver', 'none', 'tss-lg');
    const noneId = await until(
      'the task on none running',
      async () => {
        const ps = await docker(
          m,
          'service',
          'ps',
          '--no-trunc',
          '--filter',
          'desired-state=running',
          '--format',
          '{{.ID}} {{.CurrentState}}',
          'tss-lg',
        );
        const [id, state] = ps.out.trim().split(/\s+/);
        return id && id !== task!.meta.id && state === 'Running' ? id : false;
      },
      60_000,
    );
    const tNone = await ts(m, 'service', 'logs', 'tss-lg');
    expect(tNone.code, tNone.err).toBe(0);
    expect(tNone.out).toMatch(/\| early\n(.*\n)*.*\| late\n/);
    expect(tNone.err).toContain(`configured logging driver does not support reading: task ${noneId} runs with --log-driver none`);
    const tOne = await ts(m, 'service', 'logs', noneId);
    expect(tOne.code).not.toBe(0);
    expect(tOne.err).toMatch(/configured logging driver does not support reading/);
    const dNone = await docker(m, 'service', 'logs', noneId);
    expect(dNone.code).not.toBe(0);
    expect(dNone.err).toMatch(/configured logging driver does not support reading/);

    // Another driver: refused by both, naming what there is.
    const dSys = await docker(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'tss-sys',
      '--log-driver',
      'syslog',
      '--no-resolve-image',
      SANDBOX_IMAGE,
    );
    expect(dSys.code).not.toBe(0);
    expect(dSys.err).toMatch(/TaskTemplate\.LogDriver\.Name is not valid: --log-driver syslog is not supported.*json-file, local, none/);
    const tSys = await ts(m, 'service', 'create', '-d', '--name', 'tss-sys', '--log-driver', 'syslog', SANDBOX_IMAGE);
    expect(tSys.code).not.toBe(0);
    expect(tSys.err).toMatch(/--log-driver syslog is not supported/);
    await ok(m, 'service', 'rm', 'tss-lg');
  }, 300_000);
});
