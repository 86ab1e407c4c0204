// Health-gated rollouts end to end (1 manager, 2 workers, real containers): a
// service on an overlay network whose health check fetches its own page is
// updated, start-first, to a version that serves another page and never
// passes its check. Its new tasks stay STARTING, fail as unhealthy containers
// and never become VIP backends; the update pauses (then, with
// --update-failure-action rollback, rolls back), and the old tasks serve
// throughout: a client task fetching the VIP in a loop the whole time sees
// every request answered by the old version, none failed.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { TaskState } from '../../proto/gen/objects.js';
import { have } from '../have.js';
import { canRunSandbox, joinByCli, tsswarmOn, until } from './helpers.js';

const root = `/tmp/tss-e2eh-${process.pid}`;
const prefix = `tss-h${process.pid % 1000}-`;
const canRun = canRunSandbox && have('conmon') && have('runc') && have('nft') && have('bridge', ['-V']);
if (!canRun) console.log('health rollout e2e skipped: needs root, nsenter, runc, conmon, nft and iproute2');

const sb = new Sandbox({
  root,
  prefix,
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    // As the other overlay e2e tests: a 15 s grace before DOWN on a loaded CI box.
    return { ...d, argv: [...d.argv, '--heartbeat-period', '5000'] };
  },
});
const { ts, ok } = tsswarmOn(sb, 90_000);

interface TaskJson {
  meta: { id: string };
  slot: number;
  desiredState: number;
  status: { state: number; err: string; health: string };
  spec: { container: { env: string[] } };
}
interface ServiceJson {
  spec: { task: { container: { env: string[] } } };
  updateStatus?: { state: string; message: string };
}

let M = '';

const tasks = async (service: string): Promise<TaskJson[]> =>
  JSON.parse(await ok(M, 'service', 'ps', '--format', 'json', service)) as TaskJson[];
const inspect = async (service: string): Promise<ServiceJson> => {
  const j = JSON.parse(await ok(M, 'service', 'inspect', service)) as ServiceJson | ServiceJson[];
  return Array.isArray(j) ? j[0]! : j;
};
const isV2 = (t: TaskJson): boolean => (t.spec.container.env ?? []).includes('VERSION=v2');
const serving = (t: TaskJson): boolean => t.desiredState === TaskState.RUNNING && t.status.state === TaskState.RUNNING;

/** The client's tally: requests answered by the old version, and the others (refused, timed out, or another page). */
async function tally(): Promise<{ ok: number; failed: number }> {
  const out = (await ok(M, 'service', 'exec', 'client', '--', 'cat', '/tmp/count')).trim();
  const [a, b] = out.split(/\s+/).map(Number);
  return { ok: a!, failed: b! };
}

/** What the client logged of its failed requests, to say why in a failing assertion. */
const failures = async (): Promise<string> =>
  ok(M, 'service', 'exec', 'client', '--', 'sh', '-c', 'tail -n 20 /tmp/fails 2>/dev/null || true');

/** Waits for the update state (and message) of `web`. */
const updateState = (state: string, message: RegExp, ms = 120_000): Promise<ServiceJson> =>
  until(
    `web's update ${state} (${message})`,
    async () => {
      const s = await inspect('web');
      return s.updateStatus?.state === state && message.test(s.updateStatus.message) ? s : false;
    },
    ms,
    500,
  );

describe.skipIf(!canRun)('health-gated rolling updates through the VIP (1 manager, 2 workers)', () => {
  /** The two tasks of the first version, serving before, during and after each failed update. */
  let old: string[] = [];

  beforeAll(async () => {
    await sb.up({ managers: 1, workers: 2, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    M = sb.hosts()[0]!.name;
    await until(
      '3 ready nodes',
      async () => {
        const ns = JSON.parse(await ok(M, 'node', 'ls', '--format', 'json')) as { Status: { State: string } }[];
        return ns.length === 3 && ns.every((n) => n.Status.State === 'ready');
      },
      90_000,
    );
    await ok(M, 'network', 'create', '-d', 'overlay', 'front');
    // v1 serves "v1" and is ready; v2 (VERSION=v2) serves "v2" and never is: its check, which
    // needs /www/ready and an answer from its own server, never passes.
    await ok(
      M,
      'service',
      'create',
      '--detach',
      '--name',
      'web',
      '--replicas',
      '2',
      '--network',
      'front',
      '--health-cmd',
      'test -f /www/ready && wget -q -O /dev/null http://127.0.0.1/',
      '--health-interval',
      '300ms',
      '--health-retries',
      '2',
      '--restart-delay',
      '1s',
      '--update-order',
      'start-first',
      '--update-parallelism',
      '1',
      '--update-failure-action',
      'pause',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      'mkdir -p /www && echo "$VERSION" | grep . > /www/index.html || echo v1 > /www/index.html; [ "$VERSION" = v2 ] || touch /www/ready; exec httpd -f -p 80 -h /www',
    );
    const web = await until(
      'both web tasks RUNNING (healthy)',
      async () => {
        const r = (await tasks('web')).filter(serving);
        return r.length === 2 && r.every((t) => t.status.health === 'healthy') ? r : false;
      },
      120_000,
      500,
    );
    old = web.map((t) => t.meta.id).sort();
    // Counts from its first answer on (the VIP is there before, but the loop must not count its own
    // start-up). `timeout`, not wget's -T: Debian's busybox-static wget crashes (SIGSEGV) with -T.
    await ok(
      M,
      'service',
      'create',
      '--detach',
      '--name',
      'client',
      '--network',
      'front',
      SANDBOX_IMAGE,
      'sh',
      '-c',
      [
        'until timeout 5 wget -q -O /dev/null http://web/; do sleep 0.2; done',
        'ok=0; failed=0',
        'while :; do',
        '  if body=$(timeout 5 wget -q -O - http://web/ 2>/tmp/err) && [ "$body" = v1 ]; then ok=$((ok+1));',
        '  else failed=$((failed+1)); echo "$(date +%T) [$body] $(cat /tmp/err)" >> /tmp/fails; fi',
        '  echo "$ok $failed" > /tmp/count.new && mv /tmp/count.new /tmp/count',
        '  sleep 0.05',
        'done',
      ].join('\n'),
    );
    await until('the client loop answered', async () => (await tally()).ok > 0, 120_000, 500).catch(async (e: Error) => {
      const why = await ts(M, 'service', 'exec', 'client', '--', 'sh', '-c', 'cat /tmp/err; nslookup web; timeout 5 wget -O - http://web/');
      const ps = await ts(M, 'service', 'ps', 'client', 'web');
      throw new Error(`${e.message}\n${why.out}${why.err}\n${ps.out}`);
    });
  }, 400_000);

  afterAll(async () => {
    await sb.down();
    const left = execFileSync('sh', ['-c', `ip netns list | grep -c -- '-${prefix.replace(/^tss-/, '')}' || true`], {
      encoding: 'utf8',
    }).trim();
    expect(left).toBe('0');
  }, 120_000);

  it('start-first to a version that never passes its check: the update pauses, the old tasks serve, the client saw no failed request', async () => {
    const before = await tally();
    await ok(M, 'service', 'update', '--detach', '--env-add', 'VERSION=v2', 'web');
    const paused = await updateState('PAUSED', /^update paused due to failure or early termination of task \w+ \(.*unhealthy container/);
    expect(paused.spec.task.container.env).toContain('VERSION=v2');
    // The restart policy keeps replacing the sick task; wait for a second one to fail too, the loop going on.
    const sick = await until(
      'two v2 tasks failed as unhealthy containers',
      async () => {
        const f = (await tasks('web')).filter((t) => isV2(t) && t.status.state === TaskState.FAILED);
        return f.length >= 2 ? f : false;
      },
      120_000,
      500,
    );
    for (const t of sick)
      expect(t.status.err).toMatch(/^task: non-zero exit \(\d+\): unhealthy container before it ever passed its health check/);
    const all = await tasks('web');
    expect(
      all
        .filter(serving)
        .map((t) => t.meta.id)
        .sort(),
    ).toEqual(old);
    expect(all.filter((t) => isV2(t) && t.status.state === TaskState.RUNNING)).toEqual([]);
    const after = await tally();
    expect(after.ok, 'the client loop ran during the update').toBeGreaterThan(before.ok);
    expect(after.failed, await failures()).toBe(0);

    // Back to v1 by hand: the sick slot's task goes, the old tasks stay.
    await ok(M, 'service', 'rollback', '--detach', 'web');
    await updateState('ROLLBACK_COMPLETED', /manually requested rollback/);
    await until(
      'no v2 task left wanting to run',
      async () => (await tasks('web')).every((t) => !isV2(t) || t.desiredState > TaskState.RUNNING),
      60_000,
      500,
    );
  }, 300_000);

  it('with --update-failure-action rollback, the same update rolls back; the old tasks serve throughout, no failed request', async () => {
    const before = await tally();
    await ok(M, 'service', 'update', '--detach', '--env-add', 'VERSION=v2', '--update-failure-action', 'rollback', 'web');
    const back = await updateState(
      'ROLLBACK_COMPLETED',
      /^update rolled back due to failure or early termination of task \w+ \(.*unhealthy container/,
    );
    expect(back.spec.task.container.env).not.toContain('VERSION=v2');
    await until(
      'no v2 task left wanting to run',
      async () => (await tasks('web')).every((t) => !isV2(t) || t.desiredState > TaskState.RUNNING),
      60_000,
      500,
    );
    const all = await tasks('web');
    expect(
      all
        .filter(serving)
        .map((t) => t.meta.id)
        .sort(),
    ).toEqual(old);
    const after = await tally();
    expect(after.ok, 'the client loop ran during the update').toBeGreaterThan(before.ok);
    expect(after.failed, await failures()).toBe(0);
    await ok(M, 'service', 'rm', 'client', 'web');
  }, 300_000);
});
