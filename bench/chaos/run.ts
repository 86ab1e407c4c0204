// Chaos on real processes: a sandbox of 3 managers and 2 workers, a seeded
// nemesis (nemesis.ts) and concurrent clients on the real Control API, then
// the checks of issue 14 §3: a linearizable history, converged services, one
// task per slot, data planes in sync, no container without its task.
import * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import { DAEMON_PORT, defaultDaemonCommand, Sandbox, SANDBOX_IMAGE } from '../../deploy/sandbox/index.js';
import { TsswarmError } from '../../lib/errors.js';
import { callUnary, grpcChannelOptions } from '../../lib/grpc.js';
import { plainSpec } from '../../spec/index.js';
import { ControlService } from '../../proto/gen/control.js';
import type {
  InspectDataplaneResponse,
  ListNetworksResponse,
  ListNodesResponse,
  ListServicesResponse,
  ListTasksResponse,
  GetNodeResponse,
  ServiceResponse,
} from '../../proto/gen/control.js';
import { NodeState, type Task, TaskState } from '../../proto/gen/objects.js';
import { vxlanName } from '../../agent/overlay/names.js';
import { checkLinearizable, kvModel, type KvInput, type KvOutput, type Operation } from '../../test/lib/linearizability.js';
import { Rng } from '../../test/lib/rng.js';
import { describeFault, planNemesis, type Fault, type Target } from './nemesis.js';

export interface ChaosOptions {
  minutes: number;
  seed: number;
  /** Sandbox directory; default /tmp/tss-chaos-PID. */
  root?: string;
  /** Namespace prefix; default tss-cNNN- (NNN from the pid). */
  prefix?: string;
  /** Concurrent register clients (default 4). */
  clients?: number;
  /** Leave the sandbox up at the end (then `tsswarm sandbox down`). */
  keep?: boolean;
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  minutes: number;
  /** Operations that returned (either way), by kind. */
  ops: Record<string, number>;
  /** Register operations whose outcome is unknown (timeouts, lost leaders). */
  unknown: number;
  faults: string[];
  violations: string[];
  root: string;
}

const MANAGERS = 3;
const WORKERS = 2;
const CALL_MS = 8000;
const REG_SERVICE = 'chaos-reg';
const NETWORK = 'chaos-net';
const KEYS_PER_NODE = 6;

type Op = Operation<KvInput, KvOutput>;

/** One Control API client per host socket, the API the CLI uses. */
class Api {
  private readonly clients = new Map<string, grpc.Client>();
  constructor(private readonly sb: Sandbox) {}

  call<Res>(host: string, method: string, req: object, timeoutMs = CALL_MS): Promise<Res> {
    let c = this.clients.get(host);
    if (!c) {
      const Ctor = grpc.makeGenericClientConstructor(ControlService, 'Control');
      c = new Ctor(`unix://${this.sb.host(host).socketPath}`, grpc.credentials.createInsecure(), grpcChannelOptions());
      this.clients.set(host, c);
    }
    return callUnary<object, Res>(c, method, req, timeoutMs, `${method} on ${host}`);
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

const codeOf = (e: unknown): string => (e instanceof TsswarmError ? e.code : 'UNKNOWN');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  if (!(o.minutes > 0)) throw new TsswarmError('INVALID_ARGUMENT', `--minutes must be a number > 0 (got ${o.minutes})`);
  if (!Number.isInteger(o.seed) || o.seed < 0)
    throw new TsswarmError('INVALID_ARGUMENT', `--seed must be a whole number ≥ 0 (got ${o.seed})`);
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const root = o.root ?? `/tmp/tss-chaos-${process.pid}`;
  const sb = new Sandbox({
    root,
    prefix: o.prefix ?? `tss-c${process.pid % 1000}-`,
    daemonCommand: (h) => {
      const d = defaultDaemonCommand(h);
      // 2 s beats: a node goes DOWN 6 s into a fault, so most faults move tasks.
      return { ...d, argv: [...d.argv, '--heartbeat-period', '2000'] };
    },
    progress: (l) => log(`sandbox: ${l}`),
  });
  const report: ChaosReport = { seed: o.seed, minutes: o.minutes, ops: {}, unknown: 0, faults: [], violations: [], root };
  const api = new Api(sb);
  try {
    await sb.up({
      managers: MANAGERS,
      workers: WORKERS,
      // Our daemon command is the default one plus a flag: the hosts still need the busybox image.
      preloadImages: true,
      bootstrap: async (s) => {
        const [first, ...rest] = s.hosts();
        const cli = async (h: string, ...args: string[]): Promise<string> => {
          const r = await s.execCapture(h, ['tsswarm', ...args], { timeoutMs: 60_000 });
          if (r.code !== 0) throw new TsswarmError('INTERNAL', `${h}: tsswarm ${args.join(' ')}: ${r.stderr}`);
          return r.stdout.trim();
        };
        await cli(first!.name, 'init', '--advertise-addr', first!.addr);
        const mt = await cli(first!.name, 'join-token', '-q', 'manager');
        const wt = await cli(first!.name, 'join-token', '-q', 'worker');
        for (const h of rest) await cli(h.name, 'join', '--token', h.role === 'manager' ? mt : wt, `${first!.addr}:${DAEMON_PORT}`);
      },
    });
    await runOnSandbox(sb, api, o, report, log);
  } finally {
    api.close();
    if (!o.keep) await sb.down().catch((e: unknown) => log(`sandbox down failed: ${(e as Error).message}`));
  }
  return report;
}

async function runOnSandbox(sb: Sandbox, api: Api, o: ChaosOptions, report: ChaosReport, log: (l: string) => void): Promise<void> {
  const hosts = sb.hosts();
  const managers = hosts.filter((h) => h.role === 'manager').map((h) => h.name);
  const workers = hosts.filter((h) => h.role === 'worker').map((h) => h.name);
  const cli = async (h: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> => {
    const r = await sb.execCapture(h, ['tsswarm', ...args], { timeoutMs: 30_000 });
    return { code: r.code, out: r.stdout, err: r.stderr };
  };
  const must = async (h: string, ...args: string[]): Promise<string> => {
    const r = await cli(h, ...args);
    if (r.code !== 0) throw new TsswarmError('INTERNAL', `${h}: tsswarm ${args.join(' ')}: ${r.err || r.out}`);
    return r.out.trim();
  };
  await waitFor('5 nodes READY', 120_000, async () => allReady(api, managers));
  await must(managers[0]!, 'network', 'create', '-d', 'overlay', NETWORK);
  await must(managers[0]!, 'service', 'create', '--detach', '--name', REG_SERVICE, '--replicas', '0', SANDBOX_IMAGE, 'sleep', '1000000');
  await must(
    managers[0]!,
    'service',
    'create',
    '--detach',
    '--name',
    'chaos-s0',
    '--replicas',
    '2',
    '--network',
    NETWORK,
    SANDBOX_IMAGE,
    'sleep',
    '1000000',
  );
  log(`chaos: seed ${o.seed}, ${o.minutes} min, sandbox ${sb.root}`);

  const history: Op[] = [];
  const t0 = performance.now();
  const now = (): number => performance.now() - t0;
  const count = (k: string): void => void (report.ops[k] = (report.ops[k] ?? 0) + 1);
  let stopping = false;
  const master = new Rng(o.seed);
  const nemesisSeed = master.uint32();

  // ---- the register clients
  const registers: Array<{ node: string; label: string }> = workers.flatMap((w) =>
    Array.from({ length: KEYS_PER_NODE }, (_, i) => ({ node: w, label: `r${i}` })),
  );
  const keyOf = (r: { node: string; label: string }): string => `node/${r.node}/${r.label}`;
  const clientLoop = async (id: number, rng: Rng): Promise<void> => {
    let seq = 0;
    while (!stopping) {
      const host = managers[rng.int(managers.length)]!;
      const p = rng.next();
      if (p < 0.45) {
        const reg = registers[rng.int(registers.length)]!;
        const value = `c${id}.${++seq}`;
        const op: Op = { clientId: id, input: { op: 'put', key: keyOf(reg), value }, call: now(), output: { ok: true }, ret: Infinity };
        history.push(op);
        try {
          await api.call(host, 'updateNode', { ref: reg.node, version: 0, labelAdd: { [reg.label]: value }, labelRm: [] });
          op.ret = now();
          count('label-write');
        } catch (e) {
          // A version conflict is decided before or at apply, the same on every replica: it did not take effect.
          if (codeOf(e) === 'CONFLICT') {
            op.output = { ok: false };
            op.ret = now();
            count('label-write-conflict');
          } else count('label-write-unknown');
        }
      } else if (p < 0.85) {
        const reg = registers[rng.int(registers.length)]!;
        const call = now();
        try {
          const r = await api.call<GetNodeResponse>(host, 'getNode', { ref: reg.node });
          const ret = now();
          // A stale answer says it is not linearizable; it is left out of the history.
          if (r.stale) count('label-read-stale');
          else {
            history.push({
              clientId: id,
              input: { op: 'get', key: keyOf(reg) },
              call,
              output: { value: r.node?.spec?.labels?.[reg.label] ?? null },
              ret,
            });
            count('label-read');
          }
        } catch {
          count('label-read-failed');
        }
      } else {
        // A service as a register: read its label and version, write against that version.
        const key = `service/${REG_SERVICE}/reg`;
        const call = now();
        let svc: ServiceResponse;
        try {
          svc = await api.call<ServiceResponse>(host, 'getService', { ref: REG_SERVICE });
        } catch {
          count('service-read-failed');
          continue;
        }
        const expected = svc.service?.spec?.labels?.reg ?? null;
        if ((svc as { stale?: boolean }).stale) count('service-read-stale');
        else {
          history.push({ clientId: id, input: { op: 'get', key }, call, output: { value: expected }, ret: now() });
          count('service-read');
        }
        const value = `c${id}.${++seq}`;
        const spec = plainSpec(svc.service.spec);
        spec.labels = { ...spec.labels, reg: value };
        const op: Op = { clientId: id, input: { op: 'cas', key, expected, value }, call: now(), output: { ok: true }, ret: Infinity };
        history.push(op);
        try {
          await api.call(host, 'updateService', { ref: svc.service.meta.id, version: svc.service.meta.version, spec, rollback: false });
          op.ret = now();
          count('service-cas');
        } catch (e) {
          // Refused for its version: it did not apply. The label may still have been `expected` (another field changed), so this says nothing about the register.
          if (codeOf(e) === 'CONFLICT') {
            history.splice(history.indexOf(op), 1);
            count('service-cas-conflict');
          } else count('service-cas-unknown');
        }
      }
      await sleep(20 + rng.int(80));
    }
  };

  // ---- service lifecycle through the real CLI (one at a time: each CLI run costs a node start)
  const lifecycle = async (rng: Rng): Promise<void> => {
    let n = 0;
    const live: string[] = ['chaos-s0'];
    while (!stopping) {
      await sleep(3000 + rng.int(4000));
      if (stopping) break;
      const host = managers[rng.int(managers.length)]!;
      const p = rng.next();
      let r: { code: number };
      if ((p < 0.35 && live.length < 3) || live.length === 0) {
        const name = `chaos-s${++n}`;
        r = await cli(
          host,
          'service',
          'create',
          '--detach',
          '--name',
          name,
          '--replicas',
          String(1 + rng.int(2)),
          '--network',
          NETWORK,
          SANDBOX_IMAGE,
          'sleep',
          '1000000',
        );
        // Created or maybe created: either way it is removed later or checked at the end.
        live.push(name);
        count(r.code === 0 ? 'service-create' : 'service-create-failed');
      } else if (p < 0.8) {
        const name = live[rng.int(live.length)]!;
        r = await cli(host, 'service', 'scale', '--detach', `${name}=${rng.int(4)}`);
        count(r.code === 0 ? 'service-scale' : 'service-scale-failed');
      } else {
        const i = rng.int(live.length);
        r = await cli(host, 'service', 'rm', live[i]!);
        if (r.code === 0) live.splice(i, 1);
        count(r.code === 0 ? 'service-rm' : 'service-rm-failed');
      }
    }
  };

  // ---- the slot sampler: in any committed state a slot has at most one running task
  const seenDouble = new Set<string>();
  const sampler = async (): Promise<void> => {
    let i = 0;
    while (!stopping) {
      await sleep(2000);
      try {
        const r = await api.call<ListTasksResponse>(
          managers[i++ % managers.length]!,
          'listTasks',
          { services: [], nodes: [], desiredRunning: false },
          5000,
        );
        count('slot-sample');
        for (const v of doubleSlots(r)) {
          if (!seenDouble.has(v)) report.violations.push(`slot ran on two nodes at once: ${v}`);
          seenDouble.add(v);
        }
      } catch {
        count('slot-sample-failed');
      }
    }
  };

  // ---- the nemesis
  const leaderNow = async (rng: Rng): Promise<string> => {
    try {
      return await waitFor('a leader', 15_000, async () => leaderOf(api, managers));
    } catch {
      return managers[rng.int(managers.length)]!;
    }
  };
  const nemesis = async (): Promise<void> => {
    const deadline = t0 + o.minutes * 60_000;
    const plan = planNemesis(nemesisSeed, o.minutes * 60_000, { managers, workers });
    const rng = new Rng(nemesisSeed ^ 0x9e3779b9);
    for (const step of plan) {
      if (performance.now() >= deadline) break;
      const resolve = async (t: Target): Promise<string> => ('leader' in t ? leaderNow(rng) : t.host);
      const heal = await inject(sb, step.fault, resolve, managers);
      report.faults.push(`${(now() / 1000).toFixed(1)}s ${describeFault(step.fault)} (${heal.what}) for ${step.holdMs} ms`);
      log(`nemesis: ${report.faults.at(-1)}`);
      await sleep(Math.max(0, Math.min(step.holdMs, deadline - performance.now())));
      await heal.undo();
      await sleep(Math.max(0, Math.min(step.gapMs, deadline - performance.now())));
    }
  };

  const workload = [
    ...Array.from({ length: o.clients ?? 4 }, (_, i) => clientLoop(i + 1, master.fork())),
    lifecycle(master.fork()),
    sampler(),
  ];
  try {
    await nemesis();
  } finally {
    stopping = true;
    await Promise.allSettled(workload);
    await healAll(sb, log);
  }
  const done = Object.entries(report.ops).reduce((k, [, v]) => k + v, 0);
  log(`chaos: nemesis done after ${(now() / 1000).toFixed(0)} s, ${done} operations; checking`);
  report.unknown = history.filter((op) => op.ret === Infinity).length;

  // ---- the checks after the last heal
  const check = async (what: string, ms: number, f: () => Promise<true | string>): Promise<void> => {
    let last = '';
    try {
      await waitFor(what, ms, async () => {
        const r = await f();
        if (r === true) return true;
        last = r;
        return false;
      });
      log(`check: ${what}: ok`);
    } catch (e) {
      report.violations.push(`${what}: ${last || (e as Error).message}`);
      log(`check: ${what}: FAILED: ${last || (e as Error).message}`);
    }
  };
  await check('every node READY after the last heal', 180_000, () => allReady(api, managers).then((ok) => ok || 'not every node is READY'));
  await check('every service converged', 180_000, () => converged(api, managers[0]!));
  await check(`the data plane of ${NETWORK} in sync on every node`, 120_000, () => dataplaneInSync(sb, api, managers[0]!));
  await check('no container without its task, at most one per slot', 120_000, () => containersMatchTasks(sb, api, managers[0]!));
  const lin = checkLinearizable(kvModel, history, { maxSteps: 2_000_000 });
  if (lin.ok === false) report.violations.push(`history not linearizable:\n${lin.explanation}`);
  else if (lin.ok === 'unknown') report.violations.push(`linearizability undecided: ${lin.reason}`);
  log(
    `check: linearizability of ${history.length} register operations (${report.unknown} with unknown outcome): ${lin.ok === true ? 'ok' : 'FAILED'}`,
  );
}

export function summary(r: ChaosReport): string {
  const ops = Object.entries(r.ops).sort(([a], [b]) => a.localeCompare(b));
  const total = ops.reduce((k, [, v]) => k + v, 0);
  return [
    `ops done: ${total} (${ops.map(([k, v]) => `${k} ${v}`).join(', ')}); ${r.unknown} register operations with unknown outcome`,
    `faults injected: ${r.faults.length}`,
    ...r.faults.map((f) => `  ${f}`),
    `violations found: ${r.violations.length}`,
    ...r.violations.map((v) => `  ${v.split('\n').join('\n    ')}`),
    `seed: ${r.seed} (replay: npm run chaos -- --minutes ${r.minutes} --seed ${r.seed})`,
  ].join('\n');
}

async function waitFor<T>(what: string, ms: number, f: () => Promise<T | false | undefined>): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new TsswarmError(
        'DEADLINE_EXCEEDED',
        `timed out after ${ms / 1000} s waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      );
    await sleep(500);
  }
}

async function firstAnswer<T>(hosts: readonly string[], f: (h: string) => Promise<T>): Promise<T> {
  let last: unknown;
  for (const h of hosts) {
    try {
      return await f(h);
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

async function allReady(api: Api, managers: readonly string[]): Promise<boolean> {
  const r = await firstAnswer(managers, (h) => api.call<ListNodesResponse>(h, 'listNodes', {}, 5000));
  return !r.stale && r.nodes.length === MANAGERS + WORKERS && r.nodes.every((n) => n.status?.state === NodeState.READY);
}

async function leaderOf(api: Api, managers: readonly string[]): Promise<string | undefined> {
  const r = await firstAnswer(managers, (h) => api.call<ListNodesResponse>(h, 'listNodes', {}, 3000));
  if (r.stale) return undefined;
  return r.nodes.find((n) => n.managerStatus?.leader)?.spec?.name ?? undefined;
}

/** `service/slot` pairs with running tasks (desired and observed) on more than one node. */
export function doubleSlots(r: Pick<ListTasksResponse, 'tasks'>): string[] {
  const bySlot = new Map<string, Set<string>>();
  for (const t of r.tasks) {
    if (!t.slot || t.desiredState !== TaskState.RUNNING || t.status?.state !== TaskState.RUNNING) continue;
    const k = `${t.serviceName || t.serviceId}/${t.slot}`;
    bySlot.set(k, (bySlot.get(k) ?? new Set()).add(t.nodeId));
  }
  return [...bySlot].filter(([, nodes]) => nodes.size > 1).map(([k, nodes]) => `${k} on ${[...nodes].join(', ')}`);
}

async function converged(api: Api, host: string): Promise<true | string> {
  const r = await api.call<ListServicesResponse>(host, 'listServices', {});
  const t = await api.call<ListTasksResponse>(host, 'listTasks', { services: [], nodes: [], desiredRunning: true });
  const off: string[] = [];
  for (const s of r.services) {
    const want = s.service?.spec?.replicated?.replicas ?? 0;
    const tasks = t.tasks.filter((x) => x.serviceId === s.service?.meta?.id);
    const running = tasks.filter((x) => x.status?.state === TaskState.RUNNING).length;
    if (running !== want || tasks.length !== want)
      off.push(`${s.service?.spec?.name}: ${running} running, ${tasks.length} wanted running, ${want} replicas`);
  }
  return off.length ? off.join('; ') : true;
}

async function dataplaneInSync(sb: Sandbox, api: Api, host: string): Promise<true | string> {
  const nets = await api.call<ListNetworksResponse>(host, 'listNetworks', {});
  const off: string[] = [];
  for (const n of nets.networks.filter((x) => x.spec?.name?.startsWith('chaos'))) {
    let r: InspectDataplaneResponse;
    try {
      r = await api.call<InspectDataplaneResponse>(host, 'inspectDataplane', { ref: n.meta.id, node: '' }, 20_000);
    } catch (err) {
      // The workload may end with every service of the network removed: then no node should hold it at all.
      if (!(err instanceof TsswarmError && err.code === 'FAILED_PRECONDITION' && /no node holds network/.test(err.message))) throw err;
      const left = await leftoverDevices(sb, vxlanName(n.status?.vni ?? 0));
      if (left.length) off.push(`${n.spec?.name} has no task, but its VXLAN device is still on ${left.join(', ')}`);
      continue;
    }
    for (const node of r.nodes) {
      if (node.error || !node.reportJson) off.push(`${node.hostname}: not read (${node.error || 'no report'})`);
      else {
        const rep = JSON.parse(node.reportJson) as { differences: number };
        if (rep.differences) off.push(`${node.hostname}: ${rep.differences} differences`);
      }
    }
  }
  return off.length ? off.join('; ') : true;
}

/** The hosts that still have the device `dev` in their network namespace. */
async function leftoverDevices(sb: Sandbox, dev: string): Promise<string[]> {
  const left: string[] = [];
  for (const h of sb.hosts()) {
    const r = await sb.execCapture(h.name, ['ip', '-o', 'link', 'show', 'dev', dev]);
    if (r.code === 0) left.push(h.name);
  }
  return left;
}

/** How a task looks in a finding: desired and observed state, its node, and when its node last reported it. */
export function describeTask(t: Task, nodeNames: ReadonlyMap<string, string>, nowMs: number): string {
  const st = t.status;
  const ago = st?.timestamp ? `${((nowMs - Number(st.timestamp)) / 1000).toFixed(1)} s ago` : 'never';
  const node = nodeNames.get(t.nodeId) ?? (t.nodeId ? t.nodeId.slice(0, 12) : 'no node');
  return `task ${t.meta?.id} (${t.serviceName || t.serviceId}.${t.slot}, desired ${TaskState[t.desiredState] ?? t.desiredState}, observed ${TaskState[st?.state ?? 0] ?? st?.state}${st?.message ? ` "${st.message}"` : ''}, on ${node}, status last written ${ago}, task updated ${t.meta?.updatedAt ? `${((nowMs - Number(t.meta.updatedAt)) / 1000).toFixed(1)} s ago` : 'never'})`;
}

/** A container as `runc list -f json` shows it. */
export interface ListedContainer {
  id: string;
  status: string;
  created?: string;
}

/**
 * What is wrong with one host's containers: one without a task, one of another node's task,
 * a live one whose task should not run. A stopped container of an ended task is its history
 * (kept for `service logs` until the task is reaped, as Swarm keeps it) and is fine. `slots`
 * collects the service/slot keys of live containers, for the one-per-slot check across hosts.
 */
export function containerFindings(
  host: string,
  nodeId: string | undefined,
  listed: readonly ListedContainer[],
  tasks: ReadonlyMap<string, Task>,
  nodeNames: ReadonlyMap<string, string>,
  nowMs: number,
  slots: Map<string, string[]>,
): string[] {
  const off: string[] = [];
  for (const c of listed) {
    if (!c.id.startsWith('tss-')) continue;
    const t = tasks.get(c.id.slice(c.id.lastIndexOf('.') + 1));
    const where = `${host}: ${c.status} container ${c.id} (created ${c.created ?? '?'})`;
    const live = c.status !== 'stopped';
    if (!t) off.push(`${where} has no task`);
    else if (t.nodeId !== nodeId) off.push(`${where} belongs to a task of another node: ${describeTask(t, nodeNames, nowMs)}`);
    else if (live && t.desiredState !== TaskState.RUNNING)
      off.push(`${where} runs a task that should not run: ${describeTask(t, nodeNames, nowMs)}`);
    else if (live && t.slot) {
      const k = `${t.serviceName}/${t.slot}`;
      slots.set(k, [...(slots.get(k) ?? []), host]);
    }
  }
  return off;
}

/** Every runc container on every host belongs to a task of that host, every live one to a task that should run; no slot runs twice. */
async function containersMatchTasks(sb: Sandbox, api: Api, host: string): Promise<true | string> {
  const nodes = await api.call<ListNodesResponse>(host, 'listNodes', {});
  const tasks = await api.call<ListTasksResponse>(host, 'listTasks', { services: [], nodes: [], desiredRunning: false });
  const byId = new Map(tasks.tasks.map((t) => [t.meta.id, t]));
  const names = new Map(nodes.nodes.map((n) => [n.meta.id, n.spec?.name ?? n.meta.id]));
  const off: string[] = [];
  const slots = new Map<string, string[]>();
  for (const h of sb.hosts()) {
    const nodeId = nodes.nodes.find((n) => n.spec?.name === h.name)?.meta?.id;
    const r = await sb.execCapture(h.name, ['runc', '--root', `${h.stateDir}/runtime/runc`, 'list', '-f', 'json']);
    if (r.code !== 0) return `${h.name}: runc list failed: ${r.stderr.trim()}`;
    const listed = (JSON.parse(r.stdout.trim() || 'null') ?? []) as ListedContainer[];
    off.push(...containerFindings(h.name, nodeId, listed, byId, names, Date.now(), slots));
  }
  for (const [k, hs] of slots) if (hs.length > 1) off.push(`slot ${k} has containers on ${hs.join(', ')}`);
  return off.length ? off.join('; ') : true;
}

interface Heal {
  what: string;
  undo: () => Promise<void>;
}

async function inject(sb: Sandbox, f: Fault, resolve: (t: Target) => Promise<string>, managers: readonly string[]): Promise<Heal> {
  switch (f.kind) {
    case 'transfer': {
      // Asked through the CLI of a manager that runs (it forwards to the leader); refused or timed out is a result too.
      const to = f.to ? await resolve(f.to) : '';
      const running = new Set((await sb.ls()).filter((h) => h.running).map((h) => h.name));
      const via = managers.find((m) => running.has(m)) ?? managers[0]!;
      const r = await sb.execCapture(via, ['tsswarm', 'node', 'transfer-leader', ...(to ? [to] : [])], { timeoutMs: 30_000 });
      const said = (r.code === 0 ? r.stdout : r.stderr || r.stdout).trim().split('\n')[0];
      return { what: `via ${via}: ${said}`, undo: async () => undefined };
    }
    case 'cut': {
      const hs = [...new Set(await Promise.all(f.targets.map(resolve)))];
      for (const h of hs) await sb.cut(h);
      return { what: `cut ${hs.join(', ')}`, undo: async () => void (await Promise.all(hs.map((h) => sb.heal(h)))) };
    }
    case 'oneway': {
      const from = await resolve(f.from);
      let to = await resolve(f.to);
      if (to === from) to = sb.hosts().find((h) => h.name !== from && h.role === 'manager')!.name;
      await sb.cutOneWay(from, to);
      return { what: `${from} -/-> ${to}`, undo: async () => void (await sb.healOneWay(from, to)) };
    }
    case 'kill': {
      const hs = [...new Set(await Promise.all(f.targets.map(resolve)))];
      for (const h of hs) await sb.stop(h, { kill: true });
      return { what: `SIGKILL ${hs.join(', ')}`, undo: async () => void (await Promise.all(hs.map((h) => sb.start(h)))) };
    }
    case 'pause': {
      const hs = [...new Set(await Promise.all(f.targets.map(resolve)))];
      for (const h of hs) sb.pause(h);
      return { what: `SIGSTOP ${hs.join(', ')}`, undo: async () => hs.forEach((h) => sb.resume(h)) };
    }
    case 'restart': {
      const hs = [...new Set(await Promise.all(f.targets.map(resolve)))];
      for (const h of hs) await sb.stop(h);
      return { what: `stop ${hs.join(', ')}`, undo: async () => void (await Promise.all(hs.map((h) => sb.start(h)))) };
    }
  }
}

/** Whatever a fault left (an interrupted run, a failed heal): every host connected, running and resumed. */
async function healAll(sb: Sandbox, log: (l: string) => void): Promise<void> {
  for (const [from, to] of await sb.oneWayCuts()) await sb.healOneWay(from, to);
  for (const h of await sb.ls()) {
    if (h.cut) await sb.heal(h.name);
    sb.resume(h.name);
    if (!h.running) {
      log(`heal: starting ${h.name} again`);
      await sb.start(h.name);
    }
  }
}
