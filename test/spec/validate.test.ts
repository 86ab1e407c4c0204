// Service spec validation and defaults: each rule family refuses a bad field
// with a message naming the field and the fix; absent parts get Swarm's defaults.
import { describe, expect, it } from 'vitest';
import { ServiceApi } from '../../manager/controlapi/index.js';
import {
  DEFAULT_RESTART,
  DEFAULT_UPDATE,
  parseConstraint,
  parseSpreadPreference,
  SPEC_LIMITS,
  validateNetworkSpec,
  validateServiceSpec,
} from '../../spec/index.js';
import { localStore } from '../../manager/store/index.js';
import { silentLogger } from '../../lib/log.js';
import {
  ContainerSpec,
  MountType,
  RestartCondition,
  ServiceSpec,
  TaskSpec,
  UpdateFailureAction,
  UpdateOrder,
} from '../../proto/gen/objects.js';

function spec(over: Partial<ServiceSpec> = {}, container: Partial<ContainerSpec> = {}, task: Partial<TaskSpec> = {}): ServiceSpec {
  return ServiceSpec.create({
    name: 'web',
    task: TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox', ...container }), ...task }),
    ...over,
  });
}

const fails = (s: ServiceSpec, ...parts: (string | RegExp)[]): void => {
  let msg = '';
  try {
    validateServiceSpec(s);
  } catch (e) {
    expect((e as { code?: string }).code).toBe('INVALID_ARGUMENT');
    msg = (e as Error).message;
  }
  expect(msg, 'the spec should have been refused').not.toBe('');
  for (const p of parts) expect(msg).toMatch(p);
};

describe('validateServiceSpec', () => {
  it('fills Swarm defaults for absent restart, update, rollback, stop grace and mode', () => {
    const { spec: s, warnings } = validateServiceSpec(spec());
    expect(warnings).toEqual([]);
    expect(s.replicated).toEqual({ replicas: 1 });
    expect(s.global ?? null).toBeNull();
    expect(s.task.restart).toEqual({ condition: RestartCondition.ANY, delayMs: 5000, maxAttempts: 0, windowMs: 0 });
    expect(s.update).toEqual({
      parallelism: 1,
      delayMs: 0,
      failureAction: UpdateFailureAction.PAUSE,
      monitorMs: 5000,
      maxFailureRatio: 0,
      order: UpdateOrder.STOP_FIRST,
    });
    expect(s.rollback).toEqual(DEFAULT_UPDATE);
    expect(s.task.container.stopGracePeriodMs).toBe(10_000);
  });

  it('keeps given sub-messages as they are, zeros included, and does not touch its input', () => {
    const input = spec(
      { replicated: { replicas: 0 }, update: { ...DEFAULT_UPDATE, parallelism: 0, monitorMs: 0 } },
      { stopGracePeriodMs: 3000 },
      { restart: { ...DEFAULT_RESTART, delayMs: 0, condition: RestartCondition.NONE } },
    );
    const copy = JSON.stringify(input);
    const { spec: s } = validateServiceSpec(input);
    expect(s.replicated).toEqual({ replicas: 0 });
    expect(s.update!.parallelism).toBe(0);
    expect(s.update!.monitorMs).toBe(0);
    expect(s.task.restart!.delayMs).toBe(0);
    expect(s.task.container.stopGracePeriodMs).toBe(3000);
    expect(JSON.stringify(input)).toBe(copy);
  });

  it('keeps global mode and works on a decoded message', () => {
    const { spec: s } = validateServiceSpec(ServiceSpec.decode(ServiceSpec.encode(spec({ global: {} }))));
    expect(s.global).toEqual({});
    expect(s.replicated ?? null).toBeNull();
    expect(s.name).toBe('web');
  });

  it('names: required, DNS-label-like, at most 63 characters', () => {
    fails(spec({ name: '' }), 'spec.name', /--name/);
    fails(spec({ name: '-web' }), 'spec.name', /letter or digit/);
    fails(spec({ name: 'we b' }), 'spec.name');
    fails(spec({ name: 'a'.repeat(64) }), 'spec.name', /63/);
    expect(validateServiceSpec(spec({ name: 'My_app.v2-x' })).spec.name).toBe('My_app.v2-x');
  });

  it('image is required', () => {
    fails(spec({}, { image: '' }), 'spec.task.container.image', /IMAGE/);
    fails(ServiceSpec.create({ name: 'x' }), 'spec.task.container.image');
  });

  it('mode: replicas are for replicated services only', () => {
    fails(spec({ global: {}, replicated: { replicas: 3 } }), 'spec.mode', /replicas/);
    fails(spec({ replicated: { replicas: -1 } }), 'spec.mode.replicated.replicas', /≥ 0/);
  });

  it('env entries are KEY=VALUE; a repeated key is a warning', () => {
    fails(spec({}, { env: ['A=1', 'NOEQUALS'] }), 'spec.task.container.env[1]', /KEY=VALUE/);
    fails(spec({}, { env: ['=x'] }), 'spec.task.container.env[0]');
    expect(validateServiceSpec(spec({}, { env: ['A=1', 'A=2', 'B='] })).warnings).toEqual([
      expect.stringMatching(/A is set more than once/),
    ]);
  });

  it('mounts: type, absolute target, absolute bind source, volume name, tmpfs without source', () => {
    const m = (o: object) =>
      spec(
        {},
        { mounts: [{ type: MountType.VOLUME, source: '', target: '/data', readOnly: false, volumeLabels: {}, volumeNocopy: false, ...o }] },
      );
    fails(m({ target: 'data' }), 'mounts[0].target', /absolute/);
    fails(m({ target: '' }), 'mounts[0].target', /required/);
    fails(m({ type: MountType.BIND, source: 'rel/path' }), 'mounts[0].source', /absolute/);
    fails(m({ type: MountType.BIND, source: '' }), 'mounts[0].source', /bind/);
    fails(m({ type: MountType.VOLUME, source: '/host/path' }), 'mounts[0].source', /type=bind/);
    fails(m({ type: MountType.TMPFS, source: 'x' }), 'mounts[0].source', /tmpfs/);
    fails(m({ type: 7 }), 'mounts[0].type', /bind, volume or tmpfs/);
    fails(m({ type: MountType.BIND, source: '/a', volumeLabels: { ns: 'x' } }), 'mounts[0].volumeLabels', /volume mounts only/);
    fails(
      spec(
        {},
        {
          mounts: [
            { type: MountType.TMPFS, source: '', target: '/t', readOnly: false, volumeLabels: {}, volumeNocopy: false },
            { type: MountType.TMPFS, source: '', target: '/t', readOnly: false, volumeLabels: {}, volumeNocopy: false },
          ],
        },
      ),
      'mounts[1].target',
      /mounts\[0\]/,
    );
    expect(() => validateServiceSpec(m({ source: 'pgdata' }))).not.toThrow();
    expect(() => validateServiceSpec(m({ type: MountType.BIND, source: '/srv', readOnly: true }))).not.toThrow();
  });

  it('constraints: known keys, == or !=, named in the error', () => {
    const c = (...constraints: string[]) => spec({}, {}, { placement: { constraints, preferences: [], maxReplicas: 0, platforms: [] } });
    fails(c('node.role==worker', 'node.colour==red'), 'node.colour==red', /unknown key/);
    fails(c('node.role=worker'), 'node.role=worker', /no operator/);
    fails(c('node.role==boss'), /manager or worker/);
    fails(c('node.labels.==x'), /names no label/);
    expect(() =>
      validateServiceSpec(
        c(
          'node.role==worker',
          'node.hostname!=n1',
          'node.labels.zone==east',
          'node.id==abc',
          'node.platform.os==linux',
          'node.platform.arch!=arm64',
        ),
      ),
    ).not.toThrow();
  });

  it('parseConstraint returns key, operator and value', () => {
    expect(parseConstraint('node.labels.Zone == east')).toEqual({ key: 'node.labels.Zone', op: '==', value: 'east' });
    expect(parseConstraint('Node.Role!=manager')).toEqual({ key: 'node.role', op: '!=', value: 'manager' });
    expect(parseSpreadPreference('spread=node.labels.zone')).toBe('zone');
  });

  it('placement preferences: spread over a node label only', () => {
    const p = (spread: string) =>
      spec({}, {}, { placement: { constraints: [], preferences: [{ spread }], maxReplicas: 0, platforms: [] } });
    fails(p('node.hostname'), 'preferences[0].spread', /spread=node.labels.KEY/);
    expect(() => validateServiceSpec(p('node.labels.zone'))).not.toThrow();
  });

  it('resources: non-negative, reservations within limits, no pids reservation', () => {
    const r = (limits: object | null, reservations: object | null) =>
      spec(
        {},
        {},
        {
          resources: {
            limits: limits && { nanoCpus: 0, memoryBytes: 0, pids: 0, generic: [], ...limits },
            reservations: reservations && { nanoCpus: 0, memoryBytes: 0, pids: 0, generic: [], ...reservations },
          },
        },
      );
    fails(r({ nanoCpus: 5e8 }, { nanoCpus: 1e9 }), 'reservations.nanoCpus', /more than the limit/);
    fails(r({ memoryBytes: 64 << 20 }, { memoryBytes: 128 << 20 }), 'reservations.memoryBytes', /lower the reservation/);
    fails(r({ memoryBytes: 1024 }, null), 'limits.memoryBytes', /6M/);
    fails(r(null, { nanoCpus: -1 }), 'reservations.nanoCpus', /≥ 0/);
    fails(r(null, { pids: 5 }), 'reservations.pids', /--limit-pids/);
    expect(() =>
      validateServiceSpec(r({ nanoCpus: 1e9, memoryBytes: 128 << 20, pids: 100 }, { nanoCpus: 5e8, memoryBytes: 64 << 20 })),
    ).not.toThrow();
  });

  it('restart policy: condition and durations', () => {
    const rp = (o: object) => spec({}, {}, { restart: { ...DEFAULT_RESTART, ...o } });
    fails(rp({ condition: 9 }), 'spec.task.restart.condition', /on-failure/);
    fails(rp({ delayMs: -5 }), 'spec.task.restart.delayMs', /≥ 0/);
    fails(rp({ windowMs: -1 }), 'spec.task.restart.windowMs');
  });

  it('update and rollback configs: ratio 0..1, parallelism and durations ≥ 0', () => {
    fails(spec({ update: { ...DEFAULT_UPDATE, maxFailureRatio: 1.5 } }), 'spec.update.maxFailureRatio', /from 0 to 1/);
    fails(spec({ rollback: { ...DEFAULT_UPDATE, parallelism: -1 } }), 'spec.rollback.parallelism');
    fails(spec({ update: { ...DEFAULT_UPDATE, delayMs: -1 } }), 'spec.update.delayMs');
    fails(spec({ rollback: { ...DEFAULT_UPDATE, monitorMs: -1 } }), 'spec.rollback.monitorMs');
    fails(spec({ update: { ...DEFAULT_UPDATE, failureAction: 5 as UpdateFailureAction } }), 'spec.update.failureAction', /rollback/);
  });

  it('health checks: CMD, CMD-SHELL or NONE, and durations', () => {
    const h = (test: string[], o: object = {}) =>
      spec({}, { healthcheck: { test, intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, startIntervalMs: 0, ...o } });
    fails(h(['curl', 'x']), 'healthcheck.test', /CMD, CMD-SHELL or NONE/);
    fails(h(['CMD']), 'healthcheck.test', /needs a command/);
    fails(h(['CMD-SHELL', 'a', 'b']), 'healthcheck.test', /one shell command/);
    fails(h(['NONE', 'x']), 'healthcheck.test');
    fails(h(['CMD', 'true'], { intervalMs: -1 }), 'healthcheck.intervalMs');
    for (const ok of [['CMD', 'true'], ['CMD-SHELL', 'curl -f localhost'], ['NONE'], []])
      expect(() => validateServiceSpec(h(ok))).not.toThrow();
  });

  it('container fields: stop grace, hostname, user, absolute workdir, stop signal', () => {
    fails(spec({}, { stopGracePeriodMs: -1 }), 'stopGracePeriodMs');
    fails(spec({}, { hostname: 'bad_host!' }), 'spec.task.container.hostname');
    fails(spec({}, { user: 'a b' }), 'spec.task.container.user', /UID:GID/);
    fails(spec({}, { dir: 'app' }), 'spec.task.container.dir', /absolute/);
    fails(spec({}, { stopSignal: 'sig term' }), 'spec.task.container.stopSignal', /SIGTERM/);
    expect(() =>
      validateServiceSpec(spec({}, { hostname: 'web-1.example', user: '1000:1000', dir: '/app', stopSignal: 'SIGQUIT' })),
    ).not.toThrow();
    expect(() => validateServiceSpec(spec({}, { hostname: '{{.Node.Hostname}}-web' }))).not.toThrow();
  });
});

describe('validateServiceSpec: capabilities and security options', () => {
  it('capability names are stored normalized: CAP_ prefix, upper case, sorted, ALL alone', () => {
    const c = validateServiceSpec(
      spec({}, { capabilityAdd: ['sys_ptrace', 'CAP_NET_ADMIN', 'net_admin'], capabilityDrop: ['all', 'kill'] }),
    ).spec.task.container;
    expect(c.capabilityAdd).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_PTRACE']);
    expect(c.capabilityDrop).toEqual(['ALL']);
  });

  it('an unknown capability or seccomp mode is refused naming the field and the value', () => {
    fails(spec({}, { capabilityAdd: ['CAP_NET_WIZARD'] }), /^spec\.task\.container\.capabilityAdd: unknown capability "CAP_NET_WIZARD"/);
    fails(spec({}, { capabilityDrop: ['RESET'] }), /^spec\.task\.container\.capabilityDrop: unknown capability "RESET"/);
    fails(spec({}, { seccomp: 7 as never }), /^spec\.task\.container\.seccomp must be SECCOMP_DEFAULT or SECCOMP_UNCONFINED \(got 7\)/);
  });

  it('seccomp=unconfined and no-new-privileges pass through', () => {
    const c = validateServiceSpec(spec({}, { seccomp: 1, noNewPrivileges: true })).spec.task.container;
    expect([c.seccomp, c.noNewPrivileges]).toEqual([1, true]);
  });
});

describe('spec bounds', () => {
  const L = SPEC_LIMITS;
  const long = (n: number): string => 'x'.repeat(n);
  const many = (n: number, f: (i: number) => string): string[] => Array.from({ length: n }, (_, i) => f(i));
  const placement = (o: object) => ({ placement: { constraints: [], preferences: [], maxReplicas: 0, platforms: [], ...o } });
  const res = (k: 'limits' | 'reservations', o: object) => ({ resources: { [k]: { nanoCpus: 0, memoryBytes: 0, pids: 0, ...o } } });
  const health = (o: object) => ({
    healthcheck: { test: ['CMD', 'true'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, startIntervalMs: 0, ...o },
  });
  const nets = (networks: Array<{ target: string; aliases: string[] }>) => ({ networks });
  const port = (i: number) => ({ name: '', protocol: 0, targetPort: 1 + (i % 65535), publishedPort: 0, publishMode: 1 });

  // [what, spec at the limit (accepted), spec past it (refused), the field and words the error must carry]
  const cases: Array<[string, ServiceSpec | null, ServiceSpec, (string | RegExp)[]]> = [
    [
      'replicas',
      spec({ replicated: { replicas: L.replicas } }),
      spec({ replicated: { replicas: 1_000_000_000 } }),
      ['spec.mode.replicated.replicas', /at most 100000 \(got 1000000000\)/, /--replicas/],
    ],
    [
      'labels count',
      spec({ labels: Object.fromEntries(many(L.labels, (i) => `k${i}`).map((k) => [k, 'v'])) }),
      spec({ labels: Object.fromEntries(many(L.labels + 1, (i) => `k${i}`).map((k) => [k, 'v'])) }),
      ['spec.labels', /has 257 entries: at most 256/, /--label/],
    ],
    [
      'label key length',
      spec({ labels: { [long(L.labelKeyLength)]: 'v' } }),
      spec({ labels: { [long(L.labelKeyLength + 1)]: 'v' } }),
      ['spec.labels', /key of 1025 characters/],
    ],
    [
      'label value length',
      spec({ labels: { k: long(L.labelValueLength) } }),
      spec({ labels: { k: long(L.labelValueLength + 1) } }),
      ['spec.labels.k', /4097 characters/],
    ],
    [
      'container labels',
      null,
      spec({}, { labels: Object.fromEntries(many(L.labels + 1, (i) => `k${i}`).map((k) => [k, 'v'])) }),
      ['spec.task.container.labels', /--container-label/],
    ],
    [
      'env count',
      spec({}, { env: many(L.env, (i) => `K${i}=v`) }),
      spec({}, { env: many(5000, (i) => `K${i}=v`) }),
      ['spec.task.container.env', /has 5000 entries: at most 1000 are allowed \(--env\)/],
    ],
    [
      'env entry length',
      spec({}, { env: [`K=${long(L.argLength - 2)}`] }),
      spec({}, { env: [`K=${long(L.argLength)}`] }),
      ['spec.task.container.env[0]', /32770 characters long: at most 32768/],
    ],
    [
      'args count',
      spec({}, { args: many(L.args, () => 'a') }),
      spec({}, { args: many(L.args + 1, () => 'a') }),
      ['spec.task.container.args', /at most 1000/],
    ],
    ['command word length', null, spec({}, { command: ['sh', long(L.argLength + 1)] }), ['spec.task.container.command[1]', /--entrypoint/]],
    ['image length', null, spec({}, { image: `busybox:${long(L.imageLength)}` }), ['spec.task.container.image', /at most 1024/]],
    ['name length, not echoed', null, spec({ name: long(1_000_000) }), ['spec.name', /is 1000000 characters long: at most 63/]],
    [
      'hostname length',
      null,
      spec({}, { hostname: `${long(63)}.${long(63)}.${long(63)}.${long(63)}` }),
      ['spec.task.container.hostname', /255 characters long: at most 253/],
    ],
    ['workdir length', null, spec({}, { dir: `/${long(L.pathLength)}` }), ['spec.task.container.dir', /--workdir/]],
    [
      'mounts count',
      spec(
        {},
        {
          mounts: many(L.mounts, (i) => `/m${i}`).map((target) => ({
            type: 2,
            source: '',
            target,
            readOnly: false,
            volumeLabels: {},
            volumeNocopy: false,
          })),
        },
      ),
      spec(
        {},
        {
          mounts: many(L.mounts + 1, (i) => `/m${i}`).map((target) => ({
            type: 2,
            source: '',
            target,
            readOnly: false,
            volumeLabels: {},
            volumeNocopy: false,
          })),
        },
      ),
      ['spec.task.container.mounts', /101 entries: at most 100/, /--mount/],
    ],
    [
      'health test entries',
      null,
      spec({}, health({ test: ['CMD', ...many(L.healthTest, () => 'x')] })),
      ['healthcheck.test', /--health-cmd/],
    ],
    [
      'health retries',
      spec({}, health({ retries: L.healthRetries })),
      spec({}, health({ retries: L.healthRetries + 1 })),
      ['healthcheck.retries', /at most 10000/],
    ],
    [
      'health interval',
      spec({}, health({ intervalMs: L.durationMs })),
      spec({}, health({ intervalMs: L.durationMs + 1 })),
      ['healthcheck.intervalMs', /24 days/, /--health-interval/],
    ],
    ['health timeout', null, spec({}, health({ timeoutMs: 1e15 })), ['healthcheck.timeoutMs', /--health-timeout/]],
    ['health start period', null, spec({}, health({ startPeriodMs: 1e12 })), ['healthcheck.startPeriodMs']],
    [
      'stop grace',
      spec({}, { stopGracePeriodMs: L.durationMs }),
      spec({}, { stopGracePeriodMs: 1e12 }),
      ['stopGracePeriodMs', /--stop-grace-period/],
    ],
    [
      'cpu limit',
      spec({}, {}, res('limits', { nanoCpus: L.nanoCpus })),
      spec({}, {}, res('limits', { nanoCpus: L.nanoCpus + 1 })),
      ['spec.task.resources.limits.nanoCpus', /10000 CPUs/, /--limit-cpu/],
    ],
    [
      'cpu reservation',
      null,
      spec({}, {}, res('reservations', { nanoCpus: 1e20 })),
      ['spec.task.resources.reservations.nanoCpus', /--reserve-cpu/],
    ],
    [
      'memory limit',
      spec({}, {}, res('limits', { memoryBytes: 2 ** 50 })),
      spec({}, {}, res('limits', { memoryBytes: 2 ** 50 + 1 })),
      ['spec.task.resources.limits.memoryBytes', /2\^50/, /--limit-memory/],
    ],
    [
      'memory reservation',
      null,
      spec({}, {}, res('reservations', { memoryBytes: 2 ** 60 })),
      ['reservations.memoryBytes', /--reserve-memory/],
    ],
    [
      'pids',
      spec({}, {}, res('limits', { pids: L.pids })),
      spec({}, {}, res('limits', { pids: L.pids + 1 })),
      ['limits.pids', /--limit-pids/],
    ],
    ['fractional memory', null, spec({}, {}, res('limits', { memoryBytes: 64e6 + 0.5 })), ['limits.memoryBytes', /whole number/]],
    [
      'restart attempts',
      spec({}, {}, { restart: { ...DEFAULT_RESTART, maxAttempts: L.restartAttempts } }),
      spec({}, {}, { restart: { ...DEFAULT_RESTART, maxAttempts: L.restartAttempts + 1 } }),
      ['spec.task.restart.maxAttempts', /--restart-max-attempts/],
    ],
    [
      'restart delay',
      null,
      spec({}, {}, { restart: { ...DEFAULT_RESTART, delayMs: L.durationMs + 1 } }),
      ['spec.task.restart.delayMs', /--restart-delay/],
    ],
    [
      'restart window',
      null,
      spec({}, {}, { restart: { ...DEFAULT_RESTART, windowMs: 1e13 } }),
      ['spec.task.restart.windowMs', /--restart-window/],
    ],
    [
      'constraints count',
      null,
      spec({}, {}, placement({ constraints: many(L.constraints + 1, () => 'node.role==worker') })),
      ['spec.task.placement.constraints', /101 entries/, /--constraint/],
    ],
    [
      'constraint length',
      null,
      spec({}, {}, placement({ constraints: [`node.labels.a==${long(L.constraintLength)}`] })),
      ['spec.task.placement.constraints[0]', /at most 1024/],
    ],
    [
      'preferences count',
      null,
      spec({}, {}, placement({ preferences: many(L.preferences + 1, () => 'node.labels.zone').map((spread) => ({ spread })) })),
      ['spec.task.placement.preferences', /--placement-pref/],
    ],
    [
      'max replicas per node',
      spec({}, {}, placement({ maxReplicas: L.replicas })),
      spec({}, {}, placement({ maxReplicas: L.replicas + 1 })),
      ['spec.task.placement.maxReplicas', /--max-replicas/],
    ],
    [
      'networks count',
      null,
      spec({}, {}, nets(many(L.networks + 1, (i) => `n${i}`).map((target) => ({ target, aliases: [] })))),
      ['spec.task.networks', /33 entries: at most 32/, /--network/],
    ],
    [
      'aliases count',
      null,
      spec({}, {}, nets([{ target: 'n', aliases: many(L.aliases + 1, (i) => `a${i}`) }])),
      ['spec.task.networks[0].aliases', /at most 32/],
    ],
    [
      'update parallelism',
      spec({ update: { ...DEFAULT_UPDATE, parallelism: L.replicas } }),
      spec({ update: { ...DEFAULT_UPDATE, parallelism: L.replicas + 1 } }),
      ['spec.update.parallelism', /--update-parallelism/],
    ],
    [
      'rollback delay',
      null,
      spec({ rollback: { ...DEFAULT_UPDATE, delayMs: L.durationMs + 1 } }),
      ['spec.rollback.delayMs', /--rollback-delay/],
    ],
    ['update monitor', null, spec({ update: { ...DEFAULT_UPDATE, monitorMs: 1e14 } }), ['spec.update.monitorMs', /--update-monitor/]],
    [
      'published ports count',
      spec({ endpoint: { mode: 0, ports: many(L.ports, String).map((_, i) => port(i)) } }),
      spec({ endpoint: { mode: 0, ports: many(L.ports + 1, String).map((_, i) => port(i)) } }),
      ['spec.endpoint.ports', /1001 entries: at most 1000/, /--publish/],
    ],
    ['target port 0', null, spec({ endpoint: { mode: 0, ports: [{ ...port(0), targetPort: 0 }] } }), ['targetPort', /from 1 to 65535/]],
    [
      'target port 65536',
      null,
      spec({ endpoint: { mode: 0, ports: [{ ...port(0), targetPort: 65536 }] } }),
      ['targetPort', /from 1 to 65535/],
    ],
    [
      'published port 70000',
      null,
      spec({ endpoint: { mode: 0, ports: [{ ...port(0), publishedPort: 70000 }] } }),
      ['publishedPort', /from 1 to 65535/],
    ],
  ];

  for (const [what, atLimit, past, parts] of cases) {
    it(`${what}: the limit is accepted and one past it refused by name`, () => {
      if (atLimit) expect(() => validateServiceSpec(atLimit)).not.toThrow();
      fails(past, ...parts);
    });
  }

  it('an oversized value is not echoed in the error', () => {
    let msg = '';
    try {
      validateServiceSpec(spec({}, { env: [`K=${long(200_000)}`] }));
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/spec.task.container.env\[0\] is 200002 characters long/);
    expect(msg.length).toBeLessThan(200);
  });

  it('refuses --replicas 1000000000 at the API and stores nothing, on create and on update', async () => {
    const store = localStore();
    const api = new ServiceApi({ store, logger: silentLogger(), now: () => 1_000_000 });
    const before = store.appliedIndex;
    await expect(api.createService({ spec: spec({ replicated: { replicas: 1_000_000_000 } }) })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/replicas must be at most 100000 \(got 1000000000\)/),
    });
    expect(store.view((tx) => tx.services.count())).toBe(0);
    expect(store.appliedIndex).toBe(before);
    const created = (await api.createService({ spec: spec({ replicated: { replicas: 2 } }) })).service;
    const at = store.appliedIndex;
    await expect(
      api.updateService({ ref: 'web', version: 0, spec: spec({ replicated: { replicas: 1_000_000_000 } }), rollback: false } as never),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(store.appliedIndex).toBe(at);
    expect(store.view((tx) => tx.services.get(created.meta.id)!.spec.replicated!.replicas)).toBe(2);
  });
});

describe('network spec bounds', () => {
  const net = (o: object) => ({
    name: 'backend',
    labels: {},
    driver: '',
    subnet: '',
    gateway: '',
    attachable: false,
    internal: false,
    vni: 0,
    driverOpts: {},
    ingress: false,
    ...o,
  });
  const refused = (o: object, ...parts: RegExp[]): void => {
    let msg = '';
    try {
      validateNetworkSpec(net(o) as never);
    } catch (e) {
      msg = (e as Error).message;
    }
    for (const p of parts) expect(msg).toMatch(p);
  };

  it('labels, options, names and addresses are bounded by name', () => {
    expect(() => validateNetworkSpec(net({ labels: { a: 'b' } }) as never)).not.toThrow();
    refused(
      { labels: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, 'v'])) },
      /spec.labels has 300 entries: at most 256 are allowed \(--label\)/,
    );
    refused({ name: 'n'.repeat(100_000) }, /spec.name is 100000 characters long: at most 63/);
    refused({ subnet: '1'.repeat(1000) }, /spec.subnet is 1000 characters long/, /--subnet/);
    refused(
      { driverOpts: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`o${i}`, 'v'])) },
      /spec.driverOpts has 40 entries: at most 32/,
    );
  });
});
