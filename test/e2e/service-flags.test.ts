// Issue 18's "every flag is real or refused", end to end on one sandbox node:
// the real docker CLI (v28) and tsswarm's own CLI set --init and
// --container-label, the effect is read from inside the task's container
// (PID 1) and from `docker ps` (the labels), `--init=false` on update turns the
// init off again, and -t gives the task's PID 1 a terminal (`--tty=false` on
// update takes it away). Skipped, saying why, without the docker CLI.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { have } from '../have.js';
import { canRunSandbox, dockerOn, joinByCli, tsswarmOn, until } from './helpers.js';

const haveDocker = have('docker');
if (!haveDocker) console.warn('service-flags e2e: skipped, the docker CLI is not installed');

const sb = new Sandbox({ root: `/tmp/tss-e2eflags-${process.pid}`, prefix: `tss-f${process.pid % 1000}-` });
const { docker, ok } = dockerOn(sb, 120_000);
const { ts } = tsswarmOn(sb, 120_000);

describe.skipIf(!canRunSandbox || !haveDocker)('service flags reach the container', () => {
  let m = '';
  beforeAll(async () => {
    await sb.up({ managers: 1, workers: 0, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    m = sb.hosts()[0]!.name;
  }, 180_000);
  afterAll(async () => {
    await sb.down();
  }, 60_000);

  /** PID 1's command line in the service's running task, words joined by spaces ('' while there is none). */
  const pid1 = async (svc: string): Promise<string> => {
    const r = await ts(m, 'service', 'exec', svc, '--', 'sh', '-c', "tr '\\0' ' ' < /proc/1/cmdline");
    return r.code === 0 ? r.out.trim() : '';
  };

  it('--init and --container-label through docker: tini is PID 1, the labels are on the container; --init=false on update turns it off', async () => {
    const created = await docker(
      m,
      'service',
      'create',
      '-d',
      '--name',
      'tss-flags',
      '--init',
      '--container-label',
      'tss.team=blue',
      '--no-resolve-image',
      SANDBOX_IMAGE,
      'sleep',
      '1d',
    );
    expect(created.code, created.err).toBe(0);
    await until(
      'the task container listed with its label',
      async () =>
        /^tss-flags\.1\.\w+ blue$/.test(
          (await ok(m, 'ps', '--filter', 'label=tss.team=blue', '--format', '{{.Names}} {{.Label "tss.team"}}')).trim(),
        ),
      60_000,
    );
    await until('tini is PID 1', async () => (await pid1('tss-flags')).startsWith('/sbin/docker-init -- sleep 1d'), 60_000);

    const off = await docker(m, 'service', 'update', '-d', '--init=false', 'tss-flags');
    expect(off.code, off.err).toBe(0);
    await until('the command is PID 1 again', async () => (await pid1('tss-flags')) === 'sleep 1d', 60_000);

    // and back on through tsswarm's own CLI
    const on = await ts(m, 'service', 'update', '-d', '--init', 'tss-flags');
    expect(on.code, on.err).toBe(0);
    await until(
      'tini is PID 1 after tsswarm service update --init',
      async () => (await pid1('tss-flags')).startsWith('/sbin/docker-init'),
      60_000,
    );
    await ok(m, 'service', 'rm', 'tss-flags');
  }, 300_000);

  it("--tty through docker: the task's PID 1 has a terminal, docker service logs show its lines raw; --tty=false on update takes it away", async () => {
    const created = await docker(
      m,
      'service',
      'create',
      '-d',
      '-t',
      '--name',
      'tss-tty',
      '--no-resolve-image',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      'tty; exec sleep 1d',
    );
    expect(created.code, created.err).toBe(0);
    /** Where the running task's PID 1 has its stdin and stdout ('' while there is no task). */
    const stdio = async (): Promise<string> => {
      const r = await ts(m, 'service', 'exec', 'tss-tty', '--', 'sh', '-c', 'readlink /proc/1/fd/0; readlink /proc/1/fd/1');
      if (r.code !== 0) throw new Error(`service exec: ${r.err.trim()}`); // the timeout names the last one
      return r.out.trim().replace(/\n/g, ' ');
    };
    /** Waits until PID 1's stdio matches `re`; on timeout the error shows what it was. */
    const stdioMatches = (what: string, re: RegExp) =>
      until(
        what,
        async () => {
          const s = await stdio();
          if (!re.test(s)) throw new Error(`PID 1's stdin and stdout: ${s}`);
          return true;
        },
        60_000,
      );
    await stdioMatches('PID 1 runs on a terminal', /^\/dev\/pts\/(\d+) \/dev\/pts\/\1$/);
    expect((await ok(m, 'service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.TTY}}', 'tss-tty')).trim()).toBe('true');
    // A TTY's logs are one raw stream (the docker CLI reads them with --raw only): no frame header bytes in what it prints.
    await until(
      'tty printed its terminal in the logs',
      async () => /\/dev\/pts\/\d+\r?\n/.test(await ok(m, 'service', 'logs', '--raw', 'tss-tty')),
      60_000,
    );
    expect((await ok(m, 'service', 'logs', '--raw', 'tss-tty')).includes('\u0000')).toBe(false);

    const off = await docker(m, 'service', 'update', '-d', '--tty=false', 'tss-tty');
    expect(off.code, off.err).toBe(0);
    await stdioMatches('PID 1 writes to a pipe again', / pipe:\[\d+\]$/);
    await ok(m, 'service', 'rm', 'tss-tty');
  }, 300_000);
});
