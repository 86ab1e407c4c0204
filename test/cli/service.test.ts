// cli/service.ts without a daemon: command lines → specs, value parsers
// (durations, sizes, CPUs, mounts), and the ls/ps/logs output formats.
import { describe, expect, it } from 'vitest';
import {
  formatLogChunk,
  logWindow,
  parseCpus,
  parseCreateArgv,
  parseDuration,
  parseMount,
  psFilter,
  parseScaleArg,
  parseSize,
  parseUpdateArgv,
  prettyService,
  serviceCommand,
  serviceRows,
  shellSplit,
  taskRows,
} from '../../cli/service.js';
import { validateServiceSpec } from '../../spec/index.js';
import {
  ContainerSpec,
  Meta,
  MountType,
  RestartCondition,
  Service,
  ServiceSpec,
  Task,
  TaskSpec,
  TaskState,
  UpdateFailureAction,
  UpdateOrder,
} from '../../proto/gen/objects.js';
import { runCommand } from './run-command.js';
import { createCapabilities, parseSecurityOpt, serviceJson, updateCapabilities } from '../../cli/service.js';
import { SeccompMode } from '../../proto/gen/objects.js';

const msgOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
};

describe('value parsers', () => {
  it('durations like docker: 5s, 1m30s, 300ms, 1.5h, 0', () => {
    expect(parseDuration('--x', '5s')).toBe(5000);
    expect(parseDuration('--x', '1m30s')).toBe(90_000);
    expect(parseDuration('--x', '300ms')).toBe(300);
    expect(parseDuration('--x', '1.5h')).toBe(5_400_000);
    expect(parseDuration('--x', '0')).toBe(0);
    expect(parseDuration('--x', '2000us')).toBe(2);
    expect(msgOf(() => parseDuration('--restart-delay', '5'))).toBe(
      '--restart-delay must be a duration such as 5s, 1m30s or 300ms (got "5")',
    );
    expect(msgOf(() => parseDuration('--x', '-1s'))).toMatch(/--x/);
    expect(msgOf(() => parseDuration('--x', '1d'))).toMatch(/--x/);
  });

  it('sizes: 64M, 1g, 512k, 1.5GiB, plain bytes', () => {
    expect(parseSize('--x', '64M')).toBe(64 * 1024 * 1024);
    expect(parseSize('--x', '1g')).toBe(1024 ** 3);
    expect(parseSize('--x', '512k')).toBe(512 * 1024);
    expect(parseSize('--x', '1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('--x', '1048576')).toBe(1048576);
    expect(parseSize('--x', '10mb')).toBe(10 * 1024 * 1024);
    expect(msgOf(() => parseSize('--limit-memory', 'lots'))).toMatch(/^--limit-memory must be a size such as 64M/);
  });

  it('CPUs are decimal, > 0, in nano CPUs', () => {
    expect(parseCpus('--x', '0.5')).toBe(500_000_000);
    expect(parseCpus('--x', '2')).toBe(2e9);
    expect(parseCpus('--x', '.25')).toBe(250_000_000);
    expect(msgOf(() => parseCpus('--reserve-cpu', '0'))).toMatch(/^--reserve-cpu must be a number of CPUs > 0/);
    expect(msgOf(() => parseCpus('--reserve-cpu', 'x'))).toMatch(/got "x"/);
  });

  it('a volume mount without a source is anonymous; volume-nocopy is kept, for volume mounts only', () => {
    expect(parseMount('--mount', 'type=volume,target=/x,volume-nocopy')).toMatchObject({ source: '', target: '/x', volumeNocopy: true });
    expect(parseMount('--mount', 'dst=/x,volume-nocopy=false').volumeNocopy).toBe(false);
    expect(msgOf(() => parseMount('--mount', 'type=tmpfs,dst=/x,volume-nocopy'))).toMatch(/volume-nocopy is for type=volume mounts only/);
    expect(msgOf(() => parseMount('--mount', 'dst=/x,volume-nocopy=maybe'))).toMatch(/volume-nocopy must be true or false \(got "maybe"/);
  });

  it('mounts in docker csv syntax with aliases', () => {
    expect(parseMount('--mount', 'type=bind,source=/srv/data,target=/data,readonly')).toEqual({
      type: MountType.BIND,
      source: '/srv/data',
      target: '/data',
      readOnly: true,
      volumeLabels: {},
      volumeNocopy: false,
    });
    expect(parseMount('--mount', 'src=pg,dst=/var/lib/pg')).toEqual({
      type: MountType.VOLUME,
      source: 'pg',
      target: '/var/lib/pg',
      readOnly: false,
      volumeLabels: {},
      volumeNocopy: false,
    });
    expect(parseMount('--mount', 'type=tmpfs,destination=/tmp,ro=false')).toEqual({
      type: MountType.TMPFS,
      source: '',
      target: '/tmp',
      readOnly: false,
      volumeLabels: {},
      volumeNocopy: false,
    });
    expect(parseMount('--mount', 'type=bind,"source=/a,b",target=/x')).toEqual({
      type: MountType.BIND,
      source: '/a,b',
      target: '/x',
      readOnly: false,
      volumeLabels: {},
      volumeNocopy: false,
    });
    expect(msgOf(() => parseMount('--mount', 'type=nfs,target=/x'))).toMatch(/^--mount type must be bind, volume or tmpfs/);
    expect(msgOf(() => parseMount('--mount', 'source=x'))).toMatch(/^--mount needs target=PATH/);
    expect(msgOf(() => parseMount('--mount', 'target=/x,colour=red'))).toMatch(/unknown option "colour"/);
    expect(parseMount('--mount', 'src=pg,dst=/pg,volume-label=ns=demo,volume-label=tier').volumeLabels).toEqual({ ns: 'demo', tier: '' });
    expect(msgOf(() => parseMount('--mount', 'type=bind,src=/a,dst=/b,volume-label=x=1'))).toMatch(/volume-label is for type=volume/);
    expect(msgOf(() => parseMount('--mount', 'dst=/b,volume-label==1'))).toMatch(/volume-label needs KEY=VALUE/);
    expect(msgOf(() => parseMount('--mount-add', 'type=bind,target=/x'))).toMatch(/^--mount-add: a bind mount needs source/);
  });

  it('shell-like splitting for --args and --entrypoint', () => {
    expect(shellSplit('--args', `sh -c 'echo "hi there"' x\\ y`)).toEqual(['sh', '-c', 'echo "hi there"', 'x y']);
    expect(shellSplit('--args', '')).toEqual([]);
    expect(msgOf(() => shellSplit('--args', "echo 'x"))).toMatch(/^--args has an unterminated ' quote/);
  });

  it('scale specifiers and ps filters', () => {
    expect(parseScaleArg('web=5')).toEqual(['web', 5]);
    expect(msgOf(() => parseScaleArg('web'))).toMatch(/SERVICE=REPLICAS/);
    expect(msgOf(() => parseScaleArg('web=-1'))).toMatch(/whole number from 0 to 100000 \(got "-1"\)/);
    const keep = psFilter(['desired-state=running', 'node=n1'], new Map([['id-n1', 'n1']]));
    const task = (nodeId: string, desiredState: TaskState): Task => Task.create({ meta: Meta.create({ id: 't1' }), nodeId, desiredState });
    expect([
      keep(task('id-n1', TaskState.RUNNING)),
      keep(task('id-n2', TaskState.RUNNING)),
      keep(task('id-n1', TaskState.SHUTDOWN)),
    ]).toEqual([true, false, false]);
    expect(msgOf(() => psFilter(['colour=red'], new Map()))).toBe("invalid filter 'colour'");
    expect(msgOf(() => psFilter(['desired-state=sleeping'], new Map()))).toBe("Invalid desired-state filter: 'sleeping'");
  });
});

describe('service create command line → spec', () => {
  it('maps every flag family into the spec', () => {
    const { spec, detach, quiet } = parseCreateArgv(
      [
        '--name',
        'web',
        '--replicas',
        '3',
        '-e',
        'A=1',
        '--env',
        'FROM_SHELL',
        '--env',
        'UNSET',
        '-w',
        '/app',
        '-u',
        '1000:1000',
        '--hostname',
        'web-host',
        '--mount',
        'type=bind,src=/srv,dst=/data,ro',
        '--mount',
        'type=tmpfs,target=/tmp',
        '--constraint',
        'node.role==worker',
        '--constraint',
        'node.labels.zone!=east',
        '--placement-pref',
        'spread=node.labels.zone',
        '--reserve-cpu',
        '0.5',
        '--reserve-memory',
        '64M',
        '--limit-cpu',
        '1',
        '--limit-memory',
        '128m',
        '--limit-pids',
        '100',
        '--restart-condition',
        'on-failure',
        '--restart-max-attempts',
        '3',
        '--update-parallelism',
        '2',
        '--update-delay',
        '10s',
        '--update-failure-action',
        'rollback',
        '--update-order',
        'start-first',
        '--update-max-failure-ratio',
        '0.25',
        '--rollback-parallelism',
        '0',
        '--rollback-monitor',
        '1m30s',
        '--health-cmd',
        'curl -f http://localhost/',
        '--health-interval',
        '5s',
        '--health-retries',
        '2',
        '--stop-grace-period',
        '30s',
        '--stop-signal',
        'SIGQUIT',
        '--label',
        'team=a',
        '--container-label',
        'x=y',
        '-d',
        '-q',
        'nginx:1.25',
        'nginx',
        '-g',
        'daemon off;',
        '--not-a-flag',
      ],
      { FROM_SHELL: 'yes' },
    );
    expect(detach).toBe(true);
    expect(quiet).toBe(true);
    expect(spec.name).toBe('web');
    expect(spec.replicated).toEqual({ replicas: 3 });
    expect(spec.labels).toEqual({ team: 'a' });
    const c = spec.task.container;
    expect(c.image).toBe('nginx:1.25');
    expect(c.args).toEqual(['nginx', '-g', 'daemon off;', '--not-a-flag']);
    expect(c.env).toEqual(['A=1', 'FROM_SHELL=yes']);
    expect([c.dir, c.user, c.hostname, c.stopGracePeriodMs, c.stopSignal]).toEqual(['/app', '1000:1000', 'web-host', 30_000, 'SIGQUIT']);
    expect(c.labels).toEqual({ x: 'y' });
    expect(c.mounts).toEqual([
      { type: MountType.BIND, source: '/srv', target: '/data', readOnly: true, volumeLabels: {}, volumeNocopy: false },
      { type: MountType.TMPFS, source: '', target: '/tmp', readOnly: false, volumeLabels: {}, volumeNocopy: false },
    ]);
    expect(c.healthcheck).toEqual({
      test: ['CMD-SHELL', 'curl -f http://localhost/'],
      intervalMs: 5000,
      timeoutMs: 0,
      retries: 2,
      startPeriodMs: 0,
      startIntervalMs: 0,
    });
    expect(spec.task.placement).toMatchObject({
      constraints: ['node.role==worker', 'node.labels.zone!=east'],
      preferences: [{ spread: 'node.labels.zone' }],
    });
    expect(spec.task.resources).toEqual({
      reservations: { nanoCpus: 5e8, memoryBytes: 64 << 20, pids: 0, generic: [] },
      limits: { nanoCpus: 1e9, memoryBytes: 128 << 20, pids: 100, generic: [] },
    });
    expect(spec.task.restart).toEqual({ condition: RestartCondition.ON_FAILURE, delayMs: 5000, maxAttempts: 3, windowMs: 0 });
    expect(spec.update).toEqual({
      parallelism: 2,
      delayMs: 10_000,
      failureAction: UpdateFailureAction.ROLLBACK,
      monitorMs: 5000,
      maxFailureRatio: 0.25,
      order: UpdateOrder.START_FIRST,
    });
    expect(spec.rollback).toMatchObject({ parallelism: 0, monitorMs: 90_000, failureAction: UpdateFailureAction.PAUSE });
    // And the API accepts it as it is.
    expect(() => validateServiceSpec(spec)).not.toThrow();
  });

  it('leaves absent parts absent so the API fills its defaults; mode default replicated 1', () => {
    const { spec, detach } = parseCreateArgv(['busybox']);
    expect(detach).toBe(false);
    expect(spec.replicated).toEqual({ replicas: 1 });
    expect(spec.task.restart ?? null).toBeNull();
    expect(spec.update ?? null).toBeNull();
    expect(spec.task.container.args).toEqual([]);
    expect(parseCreateArgv(['--mode', 'global', 'busybox']).spec.global).toEqual({});
    expect(parseCreateArgv(['--replicas', '0', 'busybox']).spec.replicated).toEqual({ replicas: 0 });
    expect(parseCreateArgv(['--no-healthcheck', 'busybox']).spec.task.container.healthcheck!.test).toEqual(['NONE']);
    expect(parseCreateArgv(['--name', 'x', '--', 'busybox', 'ls', '-l']).spec.task.container.args).toEqual(['ls', '-l']);
  });

  it('errors name the flag', () => {
    expect(msgOf(() => parseCreateArgv(['--replicas', '-1', 'busybox']))).toBe(
      '--replicas must be a whole number from 0 to 100000 (got "-1")',
    );
    expect(msgOf(() => parseCreateArgv(['--mode', 'global', '--replicas', '2', 'busybox']))).toMatch(
      /^--replicas can only be used with replicated or replicated-job mode \(--mode global\)/,
    );
    expect(msgOf(() => parseCreateArgv(['--mode', 'both', 'busybox']))).toMatch(/^--mode must be one of replicated, global/);
    expect(msgOf(() => parseCreateArgv(['--constraint', 'node.colour==red', 'busybox']))).toMatch(
      /^--constraint: constraint "node.colour==red" has an unknown key/,
    );
    expect(msgOf(() => parseCreateArgv(['--constraint', 'node.role', 'busybox']))).toMatch(/no operator/);
    expect(msgOf(() => parseCreateArgv(['--placement-pref', 'spread=node.id', 'busybox']))).toMatch(
      /^--placement-pref: placement preference/,
    );
    expect(msgOf(() => parseCreateArgv(['--reserve-cpu', '2', '--limit-cpu', '1', 'busybox']))).toMatch(
      /^--reserve-cpu \(2\) must not be more than --limit-cpu/,
    );
    expect(msgOf(() => parseCreateArgv(['--restart-condition', 'sometimes', 'busybox']))).toMatch(
      /^--restart-condition must be one of none, on-failure, any/,
    );
    expect(msgOf(() => parseCreateArgv(['--update-max-failure-ratio', '2', 'busybox']))).toMatch(
      /^--update-max-failure-ratio must be a number from 0 to 1/,
    );
    expect(msgOf(() => parseCreateArgv(['--rollback-failure-action', 'rollback', 'busybox']))).toMatch(
      /^--rollback-failure-action must be one of pause, continue/,
    );
    expect(msgOf(() => parseCreateArgv(['--no-healthcheck', '--health-cmd', 'true', 'busybox']))).toMatch(
      /^--no-healthcheck conflicts with --health-cmd/,
    );
    expect(msgOf(() => parseCreateArgv(['--workdir', 'app', 'busybox']))).toMatch(/^--workdir must be an absolute path/);
    expect(msgOf(() => parseCreateArgv(['-e', '=x', 'busybox']))).toMatch(/^--env must be KEY=VALUE or KEY/);
    expect(msgOf(() => parseCreateArgv(['--name', 'web']))).toMatch(/give the image/);
  });
});

describe('service update command line → spec', () => {
  const current = validateServiceSpec(
    ServiceSpec.create({
      name: 'web',
      labels: { team: 'a', old: '1' },
      replicated: { replicas: 2 },
      task: TaskSpec.create({
        container: ContainerSpec.create({
          image: 'nginx:1.24',
          env: ['A=1', 'B=2'],
          mounts: [{ type: MountType.VOLUME, source: 'vol', target: '/v', readOnly: false, volumeLabels: {}, volumeNocopy: false }],
        }),
        placement: { constraints: ['node.role==worker'], preferences: [], maxReplicas: 0, platforms: [] },
      }),
    }),
  ).spec;

  it('changes only what the flags say', () => {
    const s = parseUpdateArgv(
      [
        '--image',
        'nginx:1.25',
        '--env-add',
        'B=3',
        '--env-add',
        'C=4',
        '--env-rm',
        'A',
        '--mount-rm',
        '/v',
        '--mount-add',
        'type=tmpfs,target=/t',
        '--constraint-rm',
        'node.role == worker',
        '--constraint-add',
        'node.labels.ssd==true',
        '--label-rm',
        'old',
        '--label-add',
        'v=2',
        '--replicas',
        '4',
        '--update-parallelism',
        '3',
        '--args',
        'nginx -g "daemon off;"',
        'web',
      ],
      current,
    );
    const c = s.task.container;
    expect(c.image).toBe('nginx:1.25');
    expect(c.env).toEqual(['B=3', 'C=4']);
    expect(c.mounts).toEqual([{ type: MountType.TMPFS, source: '', target: '/t', readOnly: false, volumeLabels: {}, volumeNocopy: false }]);
    expect(c.args).toEqual(['nginx', '-g', 'daemon off;']);
    expect(s.task.placement!.constraints).toEqual(['node.labels.ssd==true']);
    expect(s.labels).toEqual({ team: 'a', v: '2' });
    expect(s.replicated).toEqual({ replicas: 4 });
    expect(s.update!.parallelism).toBe(3);
    expect(s.update!.monitorMs).toBe(current.update!.monitorMs);
    expect(s.task.restart).toEqual(current.task.restart);
    expect(current.task.container.image).toBe('nginx:1.24');
  });

  it('--force bumps force_update; no flags changes nothing', () => {
    expect(parseUpdateArgv(['--force', 'web'], current).task.forceUpdate).toBe(1);
    expect(JSON.stringify(parseUpdateArgv(['web'], current))).toBe(JSON.stringify(current));
  });

  it('refuses removing a mount that is not there, and replicas on a global service', () => {
    expect(msgOf(() => parseUpdateArgv(['--mount-rm', '/nope', 'web'], current))).toMatch(
      /^--mount-rm \/nope: the service has no mount at \/nope \(its targets: \/v\)/,
    );
    const global = validateServiceSpec(
      ServiceSpec.create({ name: 'g', global: {}, task: TaskSpec.create({ container: ContainerSpec.create({ image: 'x' }) }) }),
    ).spec;
    expect(msgOf(() => parseUpdateArgv(['--replicas', '2', 'g'], global))).toMatch(
      /^--replicas can only be used with replicated or replicated-job mode \(service g is global\)/,
    );
  });
});

describe('service create/update --log-driver and --log-opt', () => {
  it('create keeps the driver and its options as given; update replaces both, as docker', () => {
    const { spec } = parseCreateArgv([
      '--name',
      'web',
      '--log-driver',
      'json-file',
      '--log-opt',
      'max-size=10m',
      '--log-opt',
      'max-file=3',
      'busybox',
    ]);
    expect(spec.task.logDriver).toEqual({ name: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } });
    expect(parseCreateArgv(['busybox']).spec.task.logDriver ?? null).toBeNull();
    const current = validateServiceSpec(spec).spec;
    expect(parseUpdateArgv(['--log-driver', 'none', 'web'], current).task.logDriver).toEqual({ name: 'none', options: {} });
    expect(parseUpdateArgv(['--log-driver', 'local', '--log-opt', 'max-file=2', 'web'], current).task.logDriver).toEqual({
      name: 'local',
      options: { 'max-file': '2' },
    });
    expect(parseUpdateArgv(['--replicas', '2', 'web'], current).task.logDriver).toEqual(current.task.logDriver);
  });

  it('refuses what it cannot honour, naming the flag', () => {
    expect(msgOf(() => parseCreateArgv(['--log-driver', 'syslog', 'busybox']))).toBe(
      '--log-driver syslog is not supported: tsswarm keeps logs on the node, give json-file, local, none (got "syslog")',
    );
    expect(msgOf(() => parseCreateArgv(['--log-driver', 'local', '--log-opt', 'compress=true', 'busybox']))).toMatch(
      /^--log-opt compress=true: tsswarm does not compress/,
    );
    expect(msgOf(() => parseCreateArgv(['--log-driver', 'local', '--log-opt', 'tag={{.Name}}', 'busybox']))).toMatch(
      /^--log-opt tag is not supported by the local log driver/,
    );
    // docker drops options given without a driver; we say so instead.
    expect(msgOf(() => parseCreateArgv(['--log-opt', 'max-size=10m', 'busybox']))).toMatch(/^--log-opt needs --log-driver beside it/);
  });
});

describe('output', () => {
  const svc = Service.create({
    meta: Meta.create({ id: 'abcdefghijklmnopqrstuvwxy' }),
    spec: validateServiceSpec(
      ServiceSpec.create({
        name: 'web',
        replicated: { replicas: 3 },
        task: TaskSpec.create({ container: ContainerSpec.create({ image: 'nginx:1.25@sha256:abcd' }) }),
      }),
    ).spec,
  });

  it('ls shows ID NAME MODE REPLICAS IMAGE with running/desired', () => {
    expect(serviceRows({ services: [{ service: svc, running: 2, desired: 3, completed: 0 }], stale: false })).toEqual([
      ['abcdefghijkl', 'web', 'replicated', '2/3', 'nginx:1.25'],
    ]);
  });

  it('ps groups tasks by slot, newest first, older ones as \\_ web.1', () => {
    const t = (id: string, slot: number, created: number, desired: TaskState, state: TaskState, err = ''): Task =>
      ({
        meta: Meta.create({ id, createdAt: created }),
        serviceId: 's',
        serviceName: 'web',
        slot,
        nodeId: 'node1id',
        desiredState: desired,
        status: {
          state,
          timestamp: 95_000,
          message: '',
          err,
          exitCode: 0,
          containerId: '',
          health: '',
          pid: 0,
          startedAt: 0,
          runningAt: 0,
          portStatus: [],
        },
        spec: svc.spec.task,
        serviceVersion: 1,
        networks: [],
        restartAttempt: 0,
        jobIteration: 0,
        hostPorts: [],
        serviceLabels: {},
      }) as Task;
    const rows = taskRows(
      [
        t('old1aaaaaaaaaaaa', 1, 1, TaskState.SHUTDOWN, TaskState.FAILED, 'task: non-zero exit (1): the process ended badly'),
        t('new1aaaaaaaaaaaa', 1, 2, TaskState.RUNNING, TaskState.RUNNING),
        t('new2aaaaaaaaaaaa', 2, 2, TaskState.RUNNING, TaskState.PENDING),
      ],
      { now: 100_000, nodes: new Map([['node1id', 'host1']]) },
    );
    expect(rows).toEqual([
      ['new1aaaaaaaa', 'web.1', 'nginx:1.25', 'host1', 'Running', 'Running 5 seconds ago', '', ''],
      ['old1aaaaaaaa', ' \\_ web.1', 'nginx:1.25', 'host1', 'Shutdown', 'Failed 5 seconds ago', '"task: non-zero exit (1): the …"', ''],
      ['new2aaaaaaaa', 'web.2', 'nginx:1.25', 'host1', 'Running', 'Pending 5 seconds ago', '', ''],
    ]);
    expect(
      taskRows([t('old1aaaaaaaaaaaa', 1, 1, TaskState.SHUTDOWN, TaskState.FAILED, 'a long error that goes on and on and on')], {
        noTrunc: true,
        now: 100_000,
      })[0]![6],
    ).toBe('"a long error that goes on and on and on"');
    const withPorts = t('new3aaaaaaaaaaaa', 3, 2, TaskState.RUNNING, TaskState.RUNNING);
    withPorts.status.portStatus = [
      { name: '', protocol: 0, targetPort: 80, publishedPort: 40001, publishMode: 1 },
      { name: '', protocol: 1, targetPort: 53, publishedPort: 5353, publishMode: 1 },
    ] as never;
    expect(taskRows([withPorts], { now: 100_000 })[0]![7]).toBe('*:40001->80/tcp,*:5353->53/udp');
  });

  it('logs lines are prefixed with service.slot.task@node', () => {
    const chunk = {
      taskId: 'k6s0zwl9ivuzqqqqqqqqqqqqq',
      nodeId: 'n1',
      slot: 1,
      stream: 'stdout',
      data: new TextEncoder().encode('hello\nworld\n'),
      time: 0,
      serviceName: 'web',
      serviceId: 's1',
    };
    expect(formatLogChunk(chunk, { nodes: new Map([['n1', 'node1']]) })).toBe(
      'web.1.k6s0zwl9ivuz@node1    | hello\nweb.1.k6s0zwl9ivuz@node1    | world\n',
    );
    expect(formatLogChunk({ ...chunk, time: Date.UTC(2026, 0, 2, 3, 4, 5) }, { timestamps: true, noTaskIds: true })).toBe(
      '2026-01-02T03:04:05.000Z web.1@n1    | hello\n2026-01-02T03:04:05.000Z web.1@n1    | world\n',
    );
  });

  it('logs --raw, --no-resolve and --details shape the prefix as the docker CLI does', () => {
    const chunk = {
      taskId: 'k6s0zwl9ivuzqqqqqqqqqqqqq',
      nodeId: 'n1',
      slot: 2,
      stream: 'stdout',
      data: new TextEncoder().encode('hello\n'),
      time: Date.UTC(2026, 0, 2, 3, 4, 5),
      serviceName: 'web',
      serviceId: 's1',
    };
    const nodes = new Map([['n1', 'node1']]);
    expect(formatLogChunk(chunk, { nodes, raw: true })).toBe('hello\n');
    expect(formatLogChunk(chunk, { nodes, raw: true, timestamps: true })).toBe('2026-01-02T03:04:05.000Z hello\n');
    expect(formatLogChunk(chunk, { nodes, noResolve: true })).toBe('s1.2.k6s0zwl9ivuz@n1    | hello\n');
    expect(formatLogChunk(chunk, { nodes, noResolve: true, noTrunc: true, timestamps: true })).toBe(
      '2026-01-02T03:04:05.000Z s1.2.k6s0zwl9ivuzqqqqqqqqqqqqq@n1    | hello\n',
    );
    expect(formatLogChunk(chunk, { nodes, noTaskIds: true, details: true })).toBe(
      'web.2@node1    | com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=k6s0zwl9ivuzqqqqqqqqqqqqq hello\n',
    );
    expect(formatLogChunk(chunk, { nodes, timestamps: true, details: true, raw: true })).toBe(
      '2026-01-02T03:04:05.000Z com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=k6s0zwl9ivuzqqqqqqqqqqqqq hello\n',
    );
  });

  it('logs --since and --until take durations, RFC 3339 times and Unix seconds', () => {
    const now = Date.UTC(2026, 11, 7, 12, 0, 0);
    expect(logWindow('10m', undefined, now)).toEqual({ sinceMs: now - 600_000, untilMs: 0 });
    expect(logWindow('2026-12-07T11:00:00Z', '1m30s', now)).toEqual({ sinceMs: now - 3_600_000, untilMs: now - 90_000 });
    expect(logWindow('2026-12-07', '1.5h', now)).toEqual({ sinceMs: Date.UTC(2026, 11, 7), untilMs: now - 5_400_000 });
    expect(logWindow('1765100000.5', '2026-12-07T11:30:00.123456789+01:00', Date.UTC(2026, 0, 1))).toEqual({
      sinceMs: 1_765_100_000_500,
      untilMs: Date.UTC(2026, 11, 7, 10, 30, 0, 123),
    });
    expect(() => logWindow('yesterday', undefined, now)).toThrow(/--since must be a duration back from now .*\(got "yesterday"\)/);
    expect(() => logWindow('5m', '10m', now)).toThrow(/--until must be later than --since/);
    expect(logWindow(undefined, undefined, now)).toEqual({ sinceMs: 0, untilMs: 0 });
  });

  it('inspect --pretty shows the spec in docker terms', () => {
    const out = prettyService(svc);
    expect(out).toMatch(/^ID:\t\tabcdefghijklmnopqrstuvwxy\nName:\t\tweb\nService Mode:\tReplicated\n Replicas:\t3\n/);
    expect(out).toMatch(/RestartPolicy:\n Condition:\tany\n Delay:\t\t5s/);
    expect(out).toMatch(/ Update order: {6}stop-first/);
  });
});

describe('tsswarm service (no daemon needed)', () => {
  const run = async (...argv: string[]): Promise<{ code: number; out: string; err: string }> => {
    const host = argv[0] === '-H' ? argv[1] : undefined;
    return runCommand({ service: serviceCommand }, host, host ? argv.slice(2) : argv);
  };

  it('a bad flag value fails before any call, naming the flag', async () => {
    const r = await run('-H', 'unix:///nonexistent/tsswarm.sock', 'service', 'create', '--replicas', '-1', 'busybox');
    expect(r).toEqual({ code: 1, out: '', err: 'tsswarm: --replicas must be a whole number from 0 to 100000 (got "-1")\n' });
  });

  it('lists its subcommands', async () => {
    const r = await run('service', '--help');
    for (const c of ['create', 'ls', 'ps', 'inspect', 'update', 'scale', 'rollback', 'rm', 'logs', 'exec'])
      expect(r.out).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it('exec needs a command', async () => {
    const r = await run('-H', 'unix:///nonexistent/tsswarm.sock', 'service', 'exec', 'web', '--');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/give the command to run/);
  });
});

describe('--cap-add, --cap-drop and --security-opt', () => {
  const container = (argv: string[]): ContainerSpec => parseCreateArgv([...argv, 'busybox']).spec.task.container;

  it('create stores normalized capability lists: CAP_ prefix, upper case, sorted, adding wins, ALL alone', () => {
    const c = container(['--cap-add', 'net_admin', '--cap-add', 'CAP_SYS_PTRACE', '--cap-drop', 'mknod', '--cap-drop', 'NET_ADMIN']);
    expect(c.capabilityAdd).toEqual(['CAP_NET_ADMIN', 'CAP_SYS_PTRACE']);
    expect(c.capabilityDrop).toEqual(['CAP_MKNOD']);
    const d = container(['--cap-drop', 'all', '--cap-drop', 'chown', '--cap-add', 'net_bind_service']);
    expect([d.capabilityAdd, d.capabilityDrop]).toEqual([['CAP_NET_BIND_SERVICE'], ['ALL']]);
    expect(container([]).capabilityAdd).toEqual([]);
  });

  it('an unknown capability is refused naming the flag and the value; RESET only on update', () => {
    expect(msgOf(() => parseCreateArgv(['--cap-add', 'NET_WIZARD', 'busybox']))).toMatch(/^--cap-add: unknown capability "NET_WIZARD"/);
    expect(msgOf(() => parseCreateArgv(['--cap-drop', 'cap_', 'busybox']))).toMatch(/^--cap-drop: unknown capability "cap_"/);
    expect(msgOf(() => createCapabilities(['RESET'], []))).toMatch(/service update only/);
  });

  it("update follows docker's tri-state: a drop cancels an earlier add, an add cancels an earlier drop, else it joins its list", () => {
    expect(updateCapabilities([], ['CAP_CHOWN'], ['chown'], [])).toEqual({ add: [], drop: [] });
    expect(updateCapabilities([], [], ['chown'], [])).toEqual({ add: ['CAP_CHOWN'], drop: [] });
    expect(updateCapabilities(['CAP_NET_ADMIN'], [], [], ['net_admin'])).toEqual({ add: [], drop: [] });
    expect(updateCapabilities(['CAP_NET_ADMIN'], [], [], ['kill'])).toEqual({ add: ['CAP_NET_ADMIN'], drop: ['CAP_KILL'] });
    expect(updateCapabilities([], [], ['kill'], ['kill'])).toEqual({ add: ['CAP_KILL'], drop: [] });
    expect(updateCapabilities(['CAP_KILL'], ['CAP_CHOWN'], ['RESET', 'SYS_TIME'], [])).toEqual({
      add: ['CAP_SYS_TIME'],
      drop: ['CAP_CHOWN'],
    });
    expect(updateCapabilities(['CAP_KILL'], [], [], ['ALL'])).toEqual({ add: ['CAP_KILL'], drop: ['ALL'] });
  });

  it('service update applies --cap-add/--cap-drop/--security-opt to the current spec, leaving what is not named', () => {
    const current = validateServiceSpec(
      ServiceSpec.create({
        name: 'web',
        task: TaskSpec.create({
          container: ContainerSpec.create({
            image: 'busybox',
            capabilityAdd: ['CAP_NET_ADMIN'],
            seccomp: SeccompMode.SECCOMP_UNCONFINED,
            noNewPrivileges: true,
          }),
        }),
      }),
    ).spec;
    const c = parseUpdateArgv(['--cap-drop', 'net_admin', '--cap-drop', 'mknod', '--security-opt', 'seccomp=builtin', 'web'], current).task
      .container;
    expect([c.capabilityAdd, c.capabilityDrop, c.seccomp, c.noNewPrivileges]).toEqual([
      [],
      ['CAP_MKNOD'],
      SeccompMode.SECCOMP_DEFAULT,
      true,
    ]);
    const c2 = parseUpdateArgv(['--security-opt', 'no-new-privileges=false', 'web'], current).task.container;
    expect([c2.capabilityAdd, c2.seccomp, c2.noNewPrivileges]).toEqual([['CAP_NET_ADMIN'], SeccompMode.SECCOMP_UNCONFINED, false]);
  });

  it('--security-opt takes seccomp=unconfined|builtin and no-new-privileges[=bool]; anything else is refused saying what is supported', () => {
    expect(container(['--security-opt', 'seccomp=unconfined']).seccomp).toBe(SeccompMode.SECCOMP_UNCONFINED);
    expect(container(['--security-opt', 'no-new-privileges']).noNewPrivileges).toBe(true);
    expect(parseSecurityOpt('--security-opt', 'no-new-privileges=true')).toEqual({ noNewPrivileges: true });
    expect(parseSecurityOpt('--security-opt', 'no-new-privileges=false')).toEqual({ noNewPrivileges: false });
    expect(container([]).seccomp).toBe(SeccompMode.SECCOMP_DEFAULT);
    expect(msgOf(() => parseSecurityOpt('--security-opt', 'no-new-privileges=maybe'))).toMatch(/no-new-privileges takes true or false/);
    expect(msgOf(() => parseCreateArgv(['--security-opt', 'seccomp=/etc/profile.json', 'busybox']))).toMatch(
      /^--security-opt "seccomp=\/etc\/profile.json": custom seccomp profiles are not supported; tsswarm supports seccomp=unconfined/,
    );
    for (const bad of ['apparmor=unconfined', 'label=disable', 'systempaths=unconfined']) {
      expect(msgOf(() => parseCreateArgv(['--security-opt', bad, 'busybox']))).toMatch(
        new RegExp(`^--security-opt "${bad}" is not supported: tsswarm supports seccomp=unconfined, seccomp=builtin`),
      );
    }
  });

  it('service inspect shows the capability lists and security options', () => {
    const svc = Service.create({
      meta: Meta.create({ id: 'x' }),
      spec: parseCreateArgv([
        '--name',
        'web',
        '--cap-add',
        'NET_ADMIN',
        '--security-opt',
        'seccomp=unconfined',
        '--security-opt',
        'no-new-privileges',
        'busybox',
      ]).spec,
    });
    const shown = JSON.parse(JSON.stringify(serviceJson(svc))) as { spec: { task: { container: Record<string, unknown> } } };
    expect(shown.spec.task.container).toMatchObject({
      capabilityAdd: ['CAP_NET_ADMIN'],
      capabilityDrop: [],
      seccomp: 'SECCOMP_UNCONFINED',
      noNewPrivileges: true,
    });
  });
});

describe('numeric flag bounds', () => {
  // [argv before the image, the error the flag must give]
  const refused: Array<[string[], string | RegExp]> = [
    [['--replicas', '1000000000'], '--replicas must be a whole number from 0 to 100000 (got "1000000000")'],
    [['--replicas', '1e9'], /^--replicas must be a whole number from 0 to 100000/],
    [['--max-replicas', '100001'], /^--max-replicas must be a whole number from 0 to 100000/],
    [['--update-parallelism', '200000'], /^--update-parallelism must be a whole number from 0 to 100000/],
    [['--rollback-parallelism', '99999999999999999999'], /^--rollback-parallelism must be a whole number from 0 to 100000/],
    [['--limit-pids', '5000000'], /^--limit-pids must be a whole number from 0 to 4194304/],
    [['--restart-max-attempts', '1000001'], /^--restart-max-attempts must be a whole number from 0 to 1000000/],
    [['--health-retries', '10001'], /^--health-retries must be a whole number from 0 to 10000/],
    [['--limit-memory', '2P'], '--limit-memory must be a size of at most 1P (2^50 bytes) (got "2P")'],
    [['--reserve-memory', '99999999999999999999'], /^--reserve-memory must be a size of at most 1P/],
    [['--limit-cpu', '10001'], '--limit-cpu must be a number of CPUs from 0 to 10000 (got "10001")'],
    [['--reserve-cpu', '1e400'], /^--reserve-cpu must be a number of CPUs/],
    [['--stop-grace-period', '25d'], /^--stop-grace-period must be a duration such as/],
    [['--stop-grace-period', '600h'], /^--stop-grace-period must be a duration of at most 2147483647ms \(about 24 days\)/],
    [['--restart-delay', '1000000h'], /^--restart-delay must be a duration of at most/],
    [['--restart-window', '9999999999999s'], /^--restart-window must be a duration of at most/],
    [['--health-interval', '700h'], /^--health-interval must be a duration of at most/],
    [['--health-timeout', '700h'], /^--health-timeout must be a duration of at most/],
    [['--health-start-period', '700h'], /^--health-start-period must be a duration of at most/],
    [['--update-delay', '700h'], /^--update-delay must be a duration of at most/],
    [['--rollback-monitor', '700h'], /^--rollback-monitor must be a duration of at most/],
    [['--publish', '70000:80'], /^--publish published port must be a port from 1 to 65535/],
    [['--publish', '8080:0'], /^--publish target port must be a port from 1 to 65535/],
    [['--publish', 'published=1,target=65536'], /^--publish target must be a port from 1 to 65535/],
  ];
  for (const [argv, err] of refused) {
    it(`${argv.join(' ')} is refused naming the flag and the limit`, () => {
      const m = msgOf(() => parseCreateArgv([...argv, 'busybox']));
      if (typeof err === 'string') expect(m).toBe(err);
      else expect(m).toMatch(err);
    });
  }

  it('values at the limits pass, and the server accepts what the CLI builds from them', () => {
    const { spec } = parseCreateArgv([
      '--replicas',
      '100000',
      '--max-replicas',
      '100000',
      '--limit-pids',
      '4194304',
      '--limit-memory',
      '1P',
      '--limit-cpu',
      '10000',
      '--stop-grace-period',
      '596h',
      '--health-retries',
      '10000',
      '--health-cmd',
      'true',
      '--restart-max-attempts',
      '1000000',
      '--publish',
      '65535:65535',
      '--name',
      'web',
      'busybox',
    ]);
    expect(spec.replicated!.replicas).toBe(100_000);
    expect(spec.task.resources!.limits!.memoryBytes).toBe(2 ** 50);
    expect(spec.task.container.stopGracePeriodMs).toBe(596 * 3_600_000);
    expect(() => validateServiceSpec(spec)).not.toThrow();
  });

  it('service scale refuses more replicas than the limit', () => {
    expect(msgOf(() => parseScaleArg('web=1000000000'))).toBe(
      'replicas for web must be a whole number from 0 to 100000 (got "1000000000")',
    );
    expect(parseScaleArg('web=100000')).toEqual(['web', 100_000]);
  });
});

describe('--init, --read-only, --tty, --container-label and Docker spellings (issue 18)', () => {
  const created = (argv: string[]) => validateServiceSpec(parseCreateArgv(argv).spec).spec;

  it('--init=false and --read-only=false on update turn the settings off; no flag leaves them on', () => {
    const cur = created(['--init', '--read-only', '--name', 'web', 'busybox']);
    expect(cur.task.container).toMatchObject({ init: true, readOnly: true });
    expect(parseUpdateArgv(['web'], cur).task.container).toMatchObject({ init: true, readOnly: true });
    expect(parseUpdateArgv(['--init=false', 'web'], cur).task.container).toMatchObject({ init: false, readOnly: true });
    expect(parseUpdateArgv(['--read-only=false', '--init=0', 'web'], cur).task.container).toMatchObject({ init: false, readOnly: false });
    expect(parseUpdateArgv(['--init=true', 'web'], created(['--name', 'web', 'busybox'])).task.container.init).toBe(true);
  });

  it('-t and --tty give the containers a terminal; --tty=false on update takes it away, no flag keeps it', () => {
    expect(created(['-t', '--name', 'a', 'busybox']).task.container.tty).toBe(true);
    const cur = created(['--tty', '--name', 'web', 'busybox']);
    expect(cur.task.container.tty).toBe(true);
    expect(parseUpdateArgv(['web'], cur).task.container.tty).toBe(true);
    expect(parseUpdateArgv(['--tty=false', 'web'], cur).task.container.tty).toBe(false);
    expect(parseUpdateArgv(['-t', 'web'], created(['--name', 'web', 'busybox'])).task.container.tty).toBe(true);
    expect(created(['--tty=false', '--name', 'a', 'busybox']).task.container.tty).toBe(false);
  });

  it('--container-label sets, --container-label-add adds and --container-label-rm removes container labels', () => {
    const cur = created(['--container-label', 'team=a', '--container-label', 'tier=web', '--name', 'web', 'busybox']);
    expect(cur.task.container.labels).toEqual({ team: 'a', tier: 'web' });
    const up = parseUpdateArgv(['--container-label-add', 'team=b', '--container-label-rm', 'tier', 'web'], cur);
    expect(up.task.container.labels).toEqual({ team: 'b' });
  });

  it("Docker's spellings: --replicas-max-per-node for --max-replicas, -l for --label", () => {
    const s = parseCreateArgv(['--replicas-max-per-node', '2', '-l', 'a=1', '-l', 'b=2', 'busybox']).spec;
    expect(s.task!.placement!.maxReplicas).toBe(2);
    expect(s.labels).toEqual({ a: '1', b: '2' });
    expect(parseCreateArgv(['--max-replicas', '3', 'busybox']).spec.task!.placement!.maxReplicas).toBe(3);
    expect(msgOf(() => parseCreateArgv(['--max-replicas', '3', '--replicas-max-per-node', '2', 'busybox']))).toMatch(
      /^--max-replicas and --replicas-max-per-node are the same setting/,
    );
    expect(msgOf(() => parseCreateArgv(['--replicas-max-per-node', '-1', 'busybox']))).toMatch(/^--replicas-max-per-node/);
    const cur = created(['--replicas-max-per-node', '2', '--name', 'web', 'busybox']);
    expect(parseUpdateArgv(['--replicas-max-per-node', '5', 'web'], cur).task.placement!.maxReplicas).toBe(5);
  });

  it("--health-interval etc. without --health-cmd keep no test of their own (the agent merges in the image's)", () => {
    const s = created(['--health-interval', '200ms', '--health-retries', '2', '--name', 'web', 'busybox']);
    expect(s.task.container.healthcheck).toMatchObject({ test: [], intervalMs: 200, retries: 2 });
  });
});
