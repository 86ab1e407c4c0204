// Every `tsswarm service create|update` flag (cli/service.ts's
// SERVICE_FLAG_TABLES), with the two tests issue 18 asks of it: a round trip
// (the flag on a command line, the spec built without a daemon, encoded as the
// store keeps it, read back as `service inspect` prints it) and the test that
// sees its effect in a running container or on the scheduler. A flag missing
// here, or naming a test that does not exist, fails test/cli/service-flags.test.ts.
//
// Adding a flag is one row:
//   'my-flag': { roundTrip: { argv: ['--my-flag', 'x'], expect: { 'spec.task.container.myField': 'x' } },
//                effect: e2e('workload-effects', 'title of the test that sees it') },
// `expect` maps a dotted path of the inspect JSON to its exact value (an
// object lists every key inspect prints there, `{}` means empty); `base`
// (update only) is the create command line of the service the update starts from.

import { fileURLToPath } from 'node:url';

export interface EffectTest {
  /** Path from the repository root. */
  file: string;
  /** The start of the test's title (its `it(`/`test(` call), enough to name it alone. */
  test: string;
}

export interface RoundTrip {
  /** The flags (and for create, IMAGE and ARGS after them; `busybox` is added when no positional is given). */
  argv: string[];
  /** Present for `service update`: the create command line of the service it updates. */
  base?: string[];
  /** Dotted path into `service inspect`'s JSON (`spec.task.container.hostname`) → its expected value. */
  expect: Record<string, unknown>;
}

export type FlagRow =
  /** The flag sets the spec; its effect is seen by `effect`, or by the effect test of the flag `sameAs` names (the same spec field). */
  | { roundTrip: RoundTrip; effect: EffectTest | { sameAs: string } }
  /** Refused with the reason; `argv` must fail with `error`, and `effect` is the test that sees the refusal end to end. */
  | { refused: string; argv: string[]; error: RegExp; effect: EffectTest }
  /** Changes how the CLI behaves, not the spec: `why` says so; `effect` sees the behaviour. */
  | { cliOnly: string; effect: EffectTest };

/** `--env-file`'s round trip reads this file. */
const ENV_FILE = fileURLToPath(new URL('./fixtures/service.env', import.meta.url));

const at =
  (file: string) =>
  (test: string): EffectTest => ({ file, test });
const e2e = (name: string, test: string): EffectTest => at(`test/e2e/${name}.test.ts`)(test);
const sched = at('test/manager/scheduler/schedule.test.ts');
const restart = at('test/manager/orchestrator/restart.test.ts');
const upd = at('test/manager/orchestrator/update.test.ts');
const kernel = at('test/agent/runtime/runtime.kernel.test.ts');
const workerKernel = at('test/agent/worker/worker.kernel.test.ts');

const OPTS = 'container flags reach the container: workdir, user, entrypoint, env, limits, read-only, capabilities';
const TEMPLATES = 'hostname and env templates are expanded per task, as seen inside the container';
const ANON = 'an anonymous volume is one per task, filled from the image, listed on its node with its task, and removed with the task';
const VIP = 'a client reaches every replica through the service VIP by name, and tasks.web lists them all';
const MESH = 'a port published through the routing mesh answers on every host, from a task on one of them';
const SECRETS = 'create on a follower, read on another manager without the value';
const JOB = 'a replicated job of 4 completions, 2 at a time, completes; ls shows 4/4 completed; --force runs it again';
const HEALTH = 'health checks run in the container: a passing one marks the task healthy, a failing one fails and replaces it';
const MERGED_HEALTH = '--health-interval without --health-cmd runs the image';
const INIT = '--init and --container-label through docker: tini is PID 1, the labels are on the container';
const COPTS_E2E = 'reach the container, show in inspect with Docker names, and reserve generic resources';
const COPTS_KERNEL = at('test/agent/runtime/container-options.kernel.test.ts')(
  'sets sysctls, ulimits, groups, the OOM score and /etc/hosts lines',
);
const COPTS_DNS = at('test/agent/runtime/container-options.kernel.test.ts')(
  'on the embedded DNS server, it stays the nameserver; search domains and options are written',
);
const MANUAL_ROLLBACK = 'a manual rollback runs with the rollback config and completes';

/** An update's round trip: `base` creates the service, `argv` updates it. */
const update = (base: string[], argv: string[], expect: Record<string, unknown>): RoundTrip => ({ base, argv, expect });
const C = 'spec.task.container';

export const SERVICE_FLAGS: Record<string, FlagRow> = {
  // ---- identity and mode
  name: { roundTrip: { argv: ['--name', 'web'], expect: { 'spec.name': 'web' } }, effect: e2e('networking', VIP) },
  replicas: {
    roundTrip: { argv: ['--replicas', '3'], expect: { 'spec.replicated.replicas': 3 } },
    effect: e2e('services', 'service create spreads 3 replicas over 3 hosts'),
  },
  mode: {
    roundTrip: { argv: ['--mode', 'global'], expect: { 'spec.global': {} } },
    effect: e2e('services', 'a global service runs one task per node and follows a node that joins'),
  },
  'max-concurrent': {
    roundTrip: {
      argv: ['--mode', 'replicated-job', '--replicas', '4', '--max-concurrent', '2'],
      expect: { 'spec.replicatedJob': { maxConcurrent: 2, totalCompletions: 4 } },
    },
    effect: e2e('jobs', JOB),
  },
  label: {
    roundTrip: { argv: ['--label', 'a=b', '-l', 'c'], expect: { 'spec.labels': { a: 'b', c: '' } } },
    effect: e2e('workload-effects', OPTS),
  },
  // ---- the container
  env: {
    roundTrip: { argv: ['-e', 'A=1', '--env', 'B=2'], expect: { [`${C}.env`]: ['A=1', 'B=2'] } },
    effect: e2e('workload-effects', OPTS),
  },
  workdir: { roundTrip: { argv: ['-w', '/srv'], expect: { [`${C}.dir`]: '/srv' } }, effect: e2e('workload-effects', OPTS) },
  user: { roundTrip: { argv: ['-u', '1000:1000'], expect: { [`${C}.user`]: '1000:1000' } }, effect: e2e('workload-effects', OPTS) },
  hostname: {
    roundTrip: {
      argv: ['--hostname', '{{.Node.Hostname}}-{{.Task.Slot}}'],
      expect: { [`${C}.hostname`]: '{{.Node.Hostname}}-{{.Task.Slot}}' },
    },
    effect: e2e('workload-effects', TEMPLATES),
  },
  entrypoint: {
    roundTrip: {
      argv: ['--entrypoint', 'sh -c', 'busybox', 'echo hi'],
      expect: { [`${C}.command`]: ['sh', '-c'], [`${C}.args`]: ['echo hi'] },
    },
    effect: e2e('workload-effects', OPTS),
  },
  mount: {
    roundTrip: {
      argv: ['--mount', 'type=volume,target=/x,volume-nocopy'],
      expect: {
        [`${C}.mounts`]: [{ type: 'VOLUME', source: '', target: '/x', readOnly: false, volumeLabels: {}, volumeNocopy: true }],
      },
    },
    effect: e2e('workload-effects', ANON),
  },
  'container-label': {
    roundTrip: { argv: ['--container-label', 'team=blue'], expect: { [`${C}.labels`]: { team: 'blue' } } },
    effect: e2e('service-flags', INIT),
  },
  init: { roundTrip: { argv: ['--init'], expect: { [`${C}.init`]: true } }, effect: e2e('service-flags', INIT) },
  'read-only': { roundTrip: { argv: ['--read-only'], expect: { [`${C}.readOnly`]: true } }, effect: e2e('workload-effects', OPTS) },
  'cap-add': {
    roundTrip: { argv: ['--cap-add', 'net_admin'], expect: { [`${C}.capabilityAdd`]: ['CAP_NET_ADMIN'] } },
    effect: e2e('workload-effects', OPTS),
  },
  'cap-drop': {
    roundTrip: { argv: ['--cap-drop', 'ALL'], expect: { [`${C}.capabilityDrop`]: ['ALL'] } },
    effect: e2e('workload-effects', OPTS),
  },
  'security-opt': {
    roundTrip: { argv: ['--security-opt', 'no-new-privileges'], expect: { [`${C}.noNewPrivileges`]: true } },
    effect: e2e('workload-effects', OPTS),
  },
  tty: {
    roundTrip: { argv: ['--tty'], expect: { [`${C}.tty`]: true } },
    effect: kernel('--tty: stdin, stdout and stderr are a terminal (tty prints /dev/pts/…)'),
  },
  'stop-grace-period': {
    roundTrip: { argv: ['--stop-grace-period', '3s'], expect: { [`${C}.stopGracePeriodMs`]: 3000 } },
    effect: at('test/agent/worker/worker.test.ts')("desired SHUTDOWN stops the container with the task's grace period and signal"),
  },
  'stop-signal': {
    roundTrip: { argv: ['--stop-signal', 'SIGQUIT'], expect: { [`${C}.stopSignal`]: 'SIGQUIT' } },
    effect: kernel("the image's STOPSIGNAL is what stop sends when none is given; a given one wins"),
  },
  // ---- resources
  'limit-cpu': {
    roundTrip: { argv: ['--limit-cpu', '0.5'], expect: { 'spec.task.resources.limits.nanoCpus': 500000000 } },
    effect: e2e('workload-effects', OPTS),
  },
  'limit-memory': {
    roundTrip: { argv: ['--limit-memory', '96M'], expect: { 'spec.task.resources.limits.memoryBytes': 96 * 2 ** 20 } },
    effect: e2e('workload-effects', OPTS),
  },
  'limit-pids': {
    roundTrip: { argv: ['--limit-pids', '77'], expect: { 'spec.task.resources.limits.pids': 77 } },
    effect: e2e('workload-effects', OPTS),
  },
  'reserve-cpu': {
    roundTrip: { argv: ['--reserve-cpu', '0.25'], expect: { 'spec.task.resources.reservations.nanoCpus': 250000000 } },
    effect: sched('counts reservations of the tasks already on a node'),
  },
  'reserve-memory': {
    roundTrip: { argv: ['--reserve-memory', '8M'], expect: { 'spec.task.resources.reservations.memoryBytes': 8 * 2 ** 20 } },
    effect: sched('counts reservations of the tasks already on a node'),
  },
  // ---- placement
  constraint: {
    roundTrip: {
      argv: ['--constraint', 'engine.labels.disk==ssd'],
      expect: { 'spec.task.placement.constraints': ['engine.labels.disk==ssd'] },
    },
    effect: e2e('workload-effects', '--constraint engine.labels.tss.disk==ssd places the task on the node whose daemon has that --label'),
  },
  'placement-pref': {
    roundTrip: {
      argv: ['--placement-pref', 'spread=node.labels.zone'],
      expect: { 'spec.task.placement.preferences': [{ spread: 'node.labels.zone' }] },
    },
    effect: sched('spread=node.labels.zone balances over zones first, whatever their node counts'),
  },
  'max-replicas': {
    roundTrip: { argv: ['--max-replicas', '2'], expect: { 'spec.task.placement.maxReplicas': 2 } },
    effect: sched('places at most maxReplicas tasks of a service per node'),
  },
  'replicas-max-per-node': {
    roundTrip: { argv: ['--replicas-max-per-node', '1'], expect: { 'spec.task.placement.maxReplicas': 1 } },
    effect: { sameAs: 'max-replicas' },
  },
  // ---- networks, ports, secrets, configs
  network: {
    roundTrip: { argv: ['--network', 'name=front,alias=api'], expect: { 'spec.task.networks': [{ target: 'front', aliases: ['api'] }] } },
    effect: e2e('networking', VIP),
  },
  publish: {
    roundTrip: {
      argv: ['-p', '8080:80'],
      expect: { 'spec.endpoint.ports': [{ name: '', protocol: 'TCP', targetPort: 80, publishedPort: 8080, publishMode: 'INGRESS' }] },
    },
    effect: e2e('networking', MESH),
  },
  'endpoint-mode': {
    roundTrip: { argv: ['--endpoint-mode', 'dnsrr'], expect: { 'spec.endpoint.mode': 'DNSRR' } },
    effect: e2e('networking', VIP),
  },
  secret: {
    roundTrip: {
      argv: ['--secret', 'source=db_pw,target=pw,mode=0400'],
      expect: { [`${C}.secrets`]: [{ secretId: '', secretName: 'db_pw', target: { name: 'pw', uid: '', gid: '', mode: 0o400 } }] },
    },
    effect: e2e('secrets', SECRETS),
  },
  config: {
    roundTrip: {
      argv: ['--config', 'source=app,target=/etc/app.conf'],
      expect: { [`${C}.configs`]: [{ configId: '', configName: 'app', target: { name: '/etc/app.conf', uid: '', gid: '', mode: 0 } }] },
    },
    effect: e2e('secrets', SECRETS),
  },
  // ---- restart policy
  'restart-condition': {
    roundTrip: { argv: ['--restart-condition', 'on-failure'], expect: { 'spec.task.restart.condition': 'ON_FAILURE' } },
    effect: restart('condition on-failure: exit 1 is replaced, exit 0 is not'),
  },
  'restart-delay': {
    roundTrip: { argv: ['--restart-delay', '2s'], expect: { 'spec.task.restart.delayMs': 2000 } },
    effect: restart('a restart delay makes the replacement READY at once and RUNNING when the delay is over'),
  },
  'restart-max-attempts': {
    roundTrip: { argv: ['--restart-max-attempts', '3'], expect: { 'spec.task.restart.maxAttempts': 3 } },
    effect: restart('max attempts stops restarting a slot'),
  },
  'restart-window': {
    roundTrip: { argv: ['--restart-window', '1m'], expect: { 'spec.task.restart.windowMs': 60000 } },
    effect: restart('max attempts counts only the restarts within the window'),
  },
  // ---- rolling updates and rollbacks
  'update-parallelism': {
    roundTrip: { argv: ['--update-parallelism', '2'], expect: { 'spec.update.parallelism': 2 } },
    effect: upd('parallelism 2 updates 5 tasks in batches of 2, 2 and 1, waiting the delay between batches'),
  },
  'update-delay': {
    roundTrip: { argv: ['--update-delay', '10s'], expect: { 'spec.update.delayMs': 10000 } },
    effect: { sameAs: 'update-parallelism' },
  },
  'update-failure-action': {
    roundTrip: { argv: ['--update-failure-action', 'rollback'], expect: { 'spec.update.failureAction': 'ROLLBACK' } },
    effect: e2e('services', 'a rolling update whose new version fails rolls back'),
  },
  'update-monitor': {
    roundTrip: { argv: ['--update-monitor', '5s'], expect: { 'spec.update.monitorMs': 5000 } },
    effect: upd('a failure within the monitor window after the last task started still counts'),
  },
  'update-max-failure-ratio': {
    roundTrip: { argv: ['--update-max-failure-ratio', '0.5'], expect: { 'spec.update.maxFailureRatio': 0.5 } },
    effect: upd('max failure ratio: one failed task of 4 pauses the update at 0, and is tolerated at 0.5'),
  },
  'update-order': {
    roundTrip: { argv: ['--update-order', 'start-first'], expect: { 'spec.update.order': 'START_FIRST' } },
    effect: upd('start-first keeps the old task running until its successor runs'),
  },
  'rollback-parallelism': {
    roundTrip: { argv: ['--rollback-parallelism', '2'], expect: { 'spec.rollback.parallelism': 2 } },
    effect: upd(MANUAL_ROLLBACK),
  },
  'rollback-delay': {
    roundTrip: { argv: ['--rollback-delay', '1s'], expect: { 'spec.rollback.delayMs': 1000 } },
    effect: upd(MANUAL_ROLLBACK),
  },
  'rollback-failure-action': {
    roundTrip: { argv: ['--rollback-failure-action', 'continue'], expect: { 'spec.rollback.failureAction': 'CONTINUE' } },
    effect: upd(MANUAL_ROLLBACK),
  },
  'rollback-monitor': {
    roundTrip: { argv: ['--rollback-monitor', '3s'], expect: { 'spec.rollback.monitorMs': 3000 } },
    effect: upd(MANUAL_ROLLBACK),
  },
  'rollback-max-failure-ratio': {
    roundTrip: { argv: ['--rollback-max-failure-ratio', '0.25'], expect: { 'spec.rollback.maxFailureRatio': 0.25 } },
    effect: upd(MANUAL_ROLLBACK),
  },
  'rollback-order': {
    roundTrip: { argv: ['--rollback-order', 'start-first'], expect: { 'spec.rollback.order': 'START_FIRST' } },
    effect: upd(MANUAL_ROLLBACK),
  },
  // ---- health
  'health-cmd': {
    roundTrip: { argv: ['--health-cmd', 'true'], expect: { [`${C}.healthcheck.test`]: ['CMD-SHELL', 'true'] } },
    effect: e2e('services', HEALTH),
  },
  'health-interval': {
    roundTrip: { argv: ['--health-interval', '5s'], expect: { [`${C}.healthcheck.intervalMs`]: 5000 } },
    effect: workerKernel(MERGED_HEALTH),
  },
  'health-timeout': {
    roundTrip: { argv: ['--health-timeout', '2s'], expect: { [`${C}.healthcheck.timeoutMs`]: 2000 } },
    effect: workerKernel(MERGED_HEALTH),
  },
  'health-retries': {
    roundTrip: { argv: ['--health-retries', '4'], expect: { [`${C}.healthcheck.retries`]: 4 } },
    effect: workerKernel(MERGED_HEALTH),
  },
  'health-start-period': {
    roundTrip: { argv: ['--health-start-period', '30s'], expect: { [`${C}.healthcheck.startPeriodMs`]: 30000 } },
    effect: workerKernel(MERGED_HEALTH),
  },
  'no-healthcheck': {
    roundTrip: { argv: ['--no-healthcheck'], expect: { [`${C}.healthcheck.test`]: ['NONE'] } },
    effect: at('test/agent/runtime/health.test.ts')("NONE disables the check; defaults are docker's"),
  },
  // ---- container options (spec/container-options.ts)
  'env-file': {
    roundTrip: { argv: ['--env-file', ENV_FILE], expect: { [`${C}.env`]: ['FROM_FILE=1'] } },
    effect: at('test/e2e/container-options.test.ts')(COPTS_E2E),
  },
  sysctl: {
    roundTrip: { argv: ['--sysctl', 'net.ipv4.ip_forward=1'], expect: { [`${C}.sysctls`]: { 'net.ipv4.ip_forward': '1' } } },
    effect: COPTS_KERNEL,
  },
  ulimit: {
    roundTrip: { argv: ['--ulimit', 'nofile=1024:2048'], expect: { [`${C}.ulimits`]: [{ name: 'nofile', soft: 1024, hard: 2048 }] } },
    effect: COPTS_KERNEL,
  },
  dns: { roundTrip: { argv: ['--dns', '10.0.0.53'], expect: { [`${C}.dnsConfig.nameservers`]: ['10.0.0.53'] } }, effect: COPTS_KERNEL },
  'dns-option': {
    roundTrip: { argv: ['--dns-option', 'ndots:2'], expect: { [`${C}.dnsConfig.options`]: ['ndots:2'] } },
    effect: COPTS_DNS,
  },
  'dns-search': {
    roundTrip: { argv: ['--dns-search', 'example.test'], expect: { [`${C}.dnsConfig.search`]: ['example.test'] } },
    effect: COPTS_DNS,
  },
  host: { roundTrip: { argv: ['--host', 'db.test:10.0.0.9'], expect: { [`${C}.hosts`]: ['10.0.0.9 db.test'] } }, effect: COPTS_KERNEL },
  group: { roundTrip: { argv: ['--group', '1234'], expect: { [`${C}.groups`]: ['1234'] } }, effect: COPTS_KERNEL },
  'oom-score-adj': { roundTrip: { argv: ['--oom-score-adj', '500'], expect: { [`${C}.oomScoreAdj`]: 500 } }, effect: COPTS_KERNEL },
  'generic-resource': {
    roundTrip: {
      argv: ['--generic-resource', 'gpu=2'],
      expect: { 'spec.task.resources.reservations.generic': [{ kind: 'gpu', value: 2 }] },
    },
    effect: at('test/manager/scheduler/generic-resources.test.ts')('a task goes only to a node advertising enough of the kind'),
  },
  'health-start-interval': {
    roundTrip: { argv: ['--health-cmd', 'true', '--health-start-interval', '2s'], expect: { [`${C}.healthcheck.startIntervalMs`]: 2000 } },
    effect: at('test/agent/runtime/container-options.kernel.test.ts')('--health-start-interval: checks run at the start interval'),
  },
  // ---- logs
  'log-driver': {
    roundTrip: { argv: ['--log-driver', 'json-file'], expect: { 'spec.task.logDriver.name': 'json-file' } },
    effect: e2e('logs', 'json-file with options; --since/--until, --raw, --no-task-ids, --no-resolve, --details; none cannot be read'),
  },
  'log-opt': {
    roundTrip: {
      argv: ['--log-driver', 'local', '--log-opt', 'max-size=1m', '--log-opt', 'max-file=3'],
      expect: { 'spec.task.logDriver.options': { 'max-size': '1m', 'max-file': '3' } },
    },
    effect: at('test/agent/runtime/logs.kernel.test.ts')('a task writing as fast as it can stays within max-size × max-file'),
  },
  // ---- registries
  'with-registry-auth': {
    cliOnly: "sends the stored login's credentials with the spec (pullOptions), which inspect never shows",
    effect: e2e('registry-auth', 'tsswarm login, then --with-registry-auth: the digest is pinned, both nodes pull and run'),
  },
  'no-resolve-image': {
    cliOnly: 'the CLI does not ask the registry for the digest, so the image is stored as given',
    effect: at('test/cli/stack.test.ts')('create pins image:tag@digest with the login for its registry'),
  },
  // ---- the CLI's own behaviour
  detach: {
    cliOnly: 'returns once the spec is stored instead of following the tasks',
    effect: at('test/cli/service-api.test.ts')('create -d stores the spec'),
  },
  quiet: {
    cliOnly: 'suppresses the progress display',
    effect: at('test/cli/service-api.test.ts')('create without -d follows the tasks until the service converges'),
  },

  // ---- update only
  // ---- update only: container options
  'sysctl-add': {
    roundTrip: update(['--sysctl', 'net.ipv4.ip_forward=0', 'busybox'], ['--sysctl-add', 'net.ipv4.ip_forward=1'], {
      [`${C}.sysctls`]: { 'net.ipv4.ip_forward': '1' },
    }),
    effect: { sameAs: 'sysctl' },
  },
  'sysctl-rm': {
    roundTrip: update(['--sysctl', 'net.ipv4.ip_forward=0', 'busybox'], ['--sysctl-rm', 'net.ipv4.ip_forward'], { [`${C}.sysctls`]: {} }),
    effect: { sameAs: 'sysctl' },
  },
  'ulimit-add': {
    roundTrip: update(['busybox'], ['--ulimit-add', 'nproc=100'], { [`${C}.ulimits`]: [{ name: 'nproc', soft: 100, hard: 100 }] }),
    effect: { sameAs: 'ulimit' },
  },
  'ulimit-rm': {
    roundTrip: update(['--ulimit', 'nproc=100', 'busybox'], ['--ulimit-rm', 'nproc'], { [`${C}.ulimits`]: [] }),
    effect: { sameAs: 'ulimit' },
  },
  'dns-add': {
    roundTrip: update(['busybox'], ['--dns-add', '10.0.0.53'], { [`${C}.dnsConfig.nameservers`]: ['10.0.0.53'] }),
    effect: { sameAs: 'dns' },
  },
  'dns-rm': {
    roundTrip: update(['--dns', '10.0.0.53', '--dns', '10.0.0.54', 'busybox'], ['--dns-rm', '10.0.0.53'], {
      [`${C}.dnsConfig.nameservers`]: ['10.0.0.54'],
    }),
    effect: { sameAs: 'dns' },
  },
  'dns-option-add': {
    roundTrip: update(['busybox'], ['--dns-option-add', 'ndots:3'], { [`${C}.dnsConfig.options`]: ['ndots:3'] }),
    effect: { sameAs: 'dns-option' },
  },
  'dns-option-rm': {
    roundTrip: update(['--dns-option', 'ndots:3', '--dns-option', 'rotate', 'busybox'], ['--dns-option-rm', 'ndots:3'], {
      [`${C}.dnsConfig.options`]: ['rotate'],
    }),
    effect: { sameAs: 'dns-option' },
  },
  'dns-search-add': {
    roundTrip: update(['busybox'], ['--dns-search-add', 'a.test'], { [`${C}.dnsConfig.search`]: ['a.test'] }),
    effect: { sameAs: 'dns-search' },
  },
  'dns-search-rm': {
    roundTrip: update(['--dns-search', 'a.test', '--dns-search', 'b.test', 'busybox'], ['--dns-search-rm', 'a.test'], {
      [`${C}.dnsConfig.search`]: ['b.test'],
    }),
    effect: { sameAs: 'dns-search' },
  },
  'host-add': {
    roundTrip: update(['busybox'], ['--host-add', 'db.test:10.0.0.9'], { [`${C}.hosts`]: ['10.0.0.9 db.test'] }),
    effect: { sameAs: 'host' },
  },
  'host-rm': {
    roundTrip: update(['--host', 'db.test:10.0.0.9', '--host', 'c.test:10.0.0.8', 'busybox'], ['--host-rm', 'db.test'], {
      [`${C}.hosts`]: ['10.0.0.8 c.test'],
    }),
    effect: { sameAs: 'host' },
  },
  'group-add': {
    roundTrip: update(['busybox'], ['--group-add', '1234'], { [`${C}.groups`]: ['1234'] }),
    effect: { sameAs: 'group' },
  },
  'group-rm': {
    roundTrip: update(['--group', '1234', '--group', '5678', 'busybox'], ['--group-rm', '1234'], { [`${C}.groups`]: ['5678'] }),
    effect: { sameAs: 'group' },
  },
  'generic-resource-add': {
    roundTrip: update(['busybox'], ['--generic-resource-add', 'gpu=1'], {
      'spec.task.resources.reservations.generic': [{ kind: 'gpu', value: 1 }],
    }),
    effect: { sameAs: 'generic-resource' },
  },
  'generic-resource-rm': {
    roundTrip: update(['--generic-resource', 'gpu=1', '--generic-resource', 'fpga=1', 'busybox'], ['--generic-resource-rm', 'gpu'], {
      'spec.task.resources.reservations.generic': [{ kind: 'fpga', value: 1 }],
    }),
    effect: { sameAs: 'generic-resource' },
  },
  image: {
    roundTrip: update(['busybox'], ['--image', 'busybox:2'], { [`${C}.image`]: 'busybox:2' }),
    effect: e2e('services', 'a rolling update whose new version fails rolls back'),
  },
  args: {
    roundTrip: update(['busybox', 'sleep', '1'], ['--args', "sh -c 'echo hi'"], { [`${C}.args`]: ['sh', '-c', 'echo hi'] }),
    // The workload-effects test updates --args and sees them in the container.
    effect: e2e('workload-effects', OPTS),
  },
  'env-add': { roundTrip: update(['-e', 'A=1', 'busybox'], ['--env-add', 'A=2'], { [`${C}.env`]: ['A=2'] }), effect: { sameAs: 'env' } },
  'env-rm': {
    roundTrip: update(['-e', 'A=1', '-e', 'B=2', 'busybox'], ['--env-rm', 'A'], { [`${C}.env`]: ['B=2'] }),
    effect: { sameAs: 'env' },
  },
  'mount-add': {
    roundTrip: update(['busybox'], ['--mount-add', 'type=tmpfs,target=/t'], {
      [`${C}.mounts`]: [{ type: 'TMPFS', source: '', target: '/t', readOnly: false, volumeLabels: {}, volumeNocopy: false }],
    }),
    effect: { sameAs: 'mount' },
  },
  'mount-rm': {
    roundTrip: update(['--mount', 'type=tmpfs,target=/t', 'busybox'], ['--mount-rm', '/t'], { [`${C}.mounts`]: [] }),
    effect: { sameAs: 'mount' },
  },
  'constraint-add': {
    roundTrip: update(['busybox'], ['--constraint-add', 'node.role==worker'], { 'spec.task.placement.constraints': ['node.role==worker'] }),
    effect: { sameAs: 'constraint' },
  },
  'constraint-rm': {
    roundTrip: update(['--constraint', 'node.role==worker', 'busybox'], ['--constraint-rm', 'node.role==worker'], {
      'spec.task.placement.constraints': [],
    }),
    effect: { sameAs: 'constraint' },
  },
  'network-add': {
    roundTrip: update(['busybox'], ['--network-add', 'front'], { 'spec.task.networks': [{ target: 'front', aliases: [] }] }),
    effect: { sameAs: 'network' },
  },
  'network-rm': {
    roundTrip: update(['--network', 'front', 'busybox'], ['--network-rm', 'front'], { 'spec.task.networks': [] }),
    effect: { sameAs: 'network' },
  },
  'publish-add': {
    roundTrip: update(['busybox'], ['--publish-add', 'published=8081,target=81'], {
      'spec.endpoint.ports': [{ name: '', protocol: 'TCP', targetPort: 81, publishedPort: 8081, publishMode: 'INGRESS' }],
    }),
    effect: { sameAs: 'publish' },
  },
  'publish-rm': {
    roundTrip: update(['-p', '8080:80', 'busybox'], ['--publish-rm', '80'], { 'spec.endpoint.ports': [] }),
    effect: { sameAs: 'publish' },
  },
  'secret-add': {
    roundTrip: update(['busybox'], ['--secret-add', 'db_pw'], {
      [`${C}.secrets`]: [{ secretId: '', secretName: 'db_pw', target: { name: 'db_pw', uid: '', gid: '', mode: 0 } }],
    }),
    effect: { sameAs: 'secret' },
  },
  'secret-rm': {
    roundTrip: update(['--secret', 'db_pw', 'busybox'], ['--secret-rm', 'db_pw'], { [`${C}.secrets`]: [] }),
    effect: { sameAs: 'secret' },
  },
  'config-add': {
    roundTrip: update(['busybox'], ['--config-add', 'app'], {
      [`${C}.configs`]: [{ configId: '', configName: 'app', target: { name: '/app', uid: '', gid: '', mode: 0 } }],
    }),
    effect: { sameAs: 'config' },
  },
  'config-rm': {
    roundTrip: update(['--config', 'app', 'busybox'], ['--config-rm', 'app'], { [`${C}.configs`]: [] }),
    effect: { sameAs: 'config' },
  },
  'placement-pref-add': {
    roundTrip: update(['busybox'], ['--placement-pref-add', 'spread=node.labels.rack'], {
      'spec.task.placement.preferences': [{ spread: 'node.labels.rack' }],
    }),
    effect: { sameAs: 'placement-pref' },
  },
  'placement-pref-rm': {
    roundTrip: update(['--placement-pref', 'spread=node.labels.rack', 'busybox'], ['--placement-pref-rm', 'spread=node.labels.rack'], {
      'spec.task.placement.preferences': [],
    }),
    effect: { sameAs: 'placement-pref' },
  },
  'label-add': { roundTrip: update(['busybox'], ['--label-add', 'a=b'], { 'spec.labels': { a: 'b' } }), effect: { sameAs: 'label' } },
  'label-rm': { roundTrip: update(['-l', 'a=b', 'busybox'], ['--label-rm', 'a'], { 'spec.labels': {} }), effect: { sameAs: 'label' } },
  'container-label-add': {
    roundTrip: update(['busybox'], ['--container-label-add', 'team=red'], { [`${C}.labels`]: { team: 'red' } }),
    effect: { sameAs: 'container-label' },
  },
  'container-label-rm': {
    roundTrip: update(['--container-label', 'team=red', 'busybox'], ['--container-label-rm', 'team'], { [`${C}.labels`]: {} }),
    effect: { sameAs: 'container-label' },
  },
  force: { roundTrip: update(['busybox'], ['--force'], { 'spec.task.forceUpdate': 1 }), effect: e2e('jobs', JOB) },
  rollback: {
    cliOnly: 'asks the managers to go back to the previous spec (UpdateService with rollback); it sets no flag of the spec',
    effect: upd(MANUAL_ROLLBACK),
  },
};
