// Issue 14 §1's liveness bug on real daemons: a leader cut off while nodes and
// tasks are changing loses its in-flight proposals. Once healed and leading
// again it must still write node READY/DOWN changes and task status reports,
// not sit forever on writes that can no longer commit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDaemonCommand, SANDBOX_IMAGE, Sandbox } from '../../deploy/sandbox/index.js';
import { TaskState } from '../../proto/gen/objects.js';
import { canRunSandbox, joinByCli, until, tsswarmOn } from './helpers.js';

const sb = new Sandbox({
  root: `/tmp/tss-e2ep-${process.pid}`,
  prefix: `tss-p${process.pid % 1000}-`,
  // 1 s beats: a node is DOWN 3 s after it goes silent, so the cut leader has node writes in flight within the cut.
  daemonCommand: (h) => {
    const d = defaultDaemonCommand(h);
    return { ...d, argv: [...d.argv, '--heartbeat-period', '1000'] };
  },
});

const { ok } = tsswarmOn(sb, 20_000);

interface NodeJson {
  Spec: { Name: string };
  Status: { State: string };
  ManagerStatus?: { Leader: boolean };
}
interface TaskJson {
  desiredState: number;
  status: { state: number };
}

const nodes = async (host: string): Promise<NodeJson[]> => JSON.parse(await ok(host, 'node', 'ls', '--format', 'json')) as NodeJson[];
const stateOf = async (via: string, name: string): Promise<string | undefined> =>
  (await nodes(via)).find((n) => n.Spec.Name === name)?.Status.State;
/** The leader as `via` sees it (its last known state when it cannot confirm it). */
async function leaderSeenFrom(via: string): Promise<string | undefined> {
  return (await nodes(via)).find((n) => n.ManagerStatus?.Leader)?.Spec.Name;
}
async function runningTasks(via: string, service: string): Promise<number> {
  const ts = JSON.parse(await ok(via, 'service', 'ps', '--format', 'json', service)) as TaskJson[];
  return ts.filter((t) => t.desiredState === TaskState.RUNNING && t.status.state === TaskState.RUNNING).length;
}

describe.skipIf(!canRunSandbox)('a leader partitioned while nodes and tasks change', () => {
  let managers: string[] = [];
  let workers: string[] = [];

  beforeAll(async () => {
    await sb.up({ managers: 3, workers: 2, preloadImages: true, bootstrap: (s) => joinByCli(s) });
    managers = sb
      .hosts()
      .filter((h) => h.role === 'manager')
      .map((h) => h.name);
    workers = sb
      .hosts()
      .filter((h) => h.role === 'worker')
      .map((h) => h.name);
    await until(
      '5 nodes READY',
      async () => {
        const ns = await nodes(managers[0]!);
        return ns.length === 5 && ns.every((n) => n.Status.State === 'ready');
      },
      90_000,
      500,
    );
    await ok(managers[0]!, 'service', 'create', '--detach', '--name', 'pweb', '--replicas', '2', SANDBOX_IMAGE, 'sleep', '1000000');
    await until('2 running pweb tasks', async () => (await runningTasks(managers[0]!, 'pweb')) === 2, 90_000, 500);
  }, 240_000);

  afterAll(async () => {
    await sb.down();
  }, 90_000);

  it('after healing and leading again, it still writes node READY/DOWN changes and task status reports', async () => {
    const old = await until('a leader', () => leaderSeenFrom(managers[0]!), 30_000, 500);
    const others = managers.filter((m) => m !== old);
    const [w1, w2] = workers as [string, string];

    // Changes in flight when the cut falls: a scale-up (tasks to create and report), a worker going silent.
    await ok(old, 'service', 'scale', '--detach', 'pweb=4');
    await sb.stop(w2, { kill: true });
    await sb.cut(old);
    try {
      const next = await until(
        'a new leader among the others',
        async () => {
          const l = await leaderSeenFrom(others[0]!);
          return l && l !== old ? l : undefined;
        },
        60_000,
        500,
      );
      await until(`${w2} DOWN, written by ${next}`, async () => (await stateOf(next, w2)) === 'down', 60_000, 500);
      // The cut leader has seen every node fall silent (and proposed their DOWN) and, without a quorum, stepped down.
      await until(`${old} no longer claims to lead`, async () => (await leaderSeenFrom(old)) !== old, 60_000, 500);
    } finally {
      await sb.heal(old);
    }

    // Leader transfer: ask (through another manager, which forwards to the leader) for the old leader to lead
    // again; refused until the leader has heard from it since the heal, so asked again until it is done.
    const said = await until(
      `leadership handed back to ${old}`,
      async () => {
        const r = await sb.execCapture(others[0]!, ['tsswarm', 'node', 'transfer-leader', old], { timeoutMs: 30_000 });
        return r.code === 0 ? r.stdout : undefined;
      },
      90_000,
      1000,
    );
    expect(said).toMatch(new RegExp(`^Leadership moved to ${old} \\(term \\d+\\)`));
    await until(`${old} leading again`, async () => (await leaderSeenFrom(old)) === old, 30_000, 500);

    // Node state: the stopped worker comes back READY, the other goes DOWN and comes back.
    await sb.start(w2);
    await until(`${w2} READY, written by ${old}`, async () => (await stateOf(old, w2)) === 'ready', 60_000, 500);
    await sb.stop(w1, { kill: true });
    await until(`${w1} DOWN, written by ${old}`, async () => (await stateOf(old, w1)) === 'down', 60_000, 500);
    await sb.start(w1);
    await until(`${w1} READY again`, async () => (await stateOf(old, w1)) === 'ready', 60_000, 500);

    // Task status reports: a scale the agents carry out shows RUNNING in the store.
    await ok(old, 'service', 'scale', '--detach', 'pweb=5');
    await until('5 running pweb tasks reported', async () => (await runningTasks(old, 'pweb')) === 5, 90_000, 500);
    expect(await leaderSeenFrom(old)).toBe(old);
    expect((await nodes(old)).every((n) => n.Status.State === 'ready')).toBe(true);
  }, 600_000);
});
