import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { HealthMonitor, type Runtime } from '../../../agent/runtime/index.js';
import { containerConfig } from '../../../agent/worker/task.js';
import { parseCreateArgv } from '../../../cli/service.js';
import { Task, TaskState } from '../../../proto/gen/objects.js';
import { validateServiceSpec } from '../../../spec/index.js';
import { have, isRoot } from '../../have.js';
import { useBusyboxRuntime } from './busybox-runtime.js';
import { until } from '../../lib/wait.js';

const canRun = isRoot && have('runc') && have('conmon') && existsSync('/bin/busybox');
if (!canRun) console.log('container option tests on runc skipped: need root, runc, conmon and busybox-static');

const PROBE = [
  'echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"',
  'echo "somaxconn=$(cat /proc/sys/net/core/somaxconn)"',
  'echo "shmmax=$(cat /proc/sys/kernel/shmmax)"',
  'echo "nofile=$(ulimit -Sn):$(ulimit -Hn)"',
  'echo "memlock=$(ulimit -Sl):$(ulimit -Hl)"',
  'echo "fsize=$(ulimit -Sf):$(ulimit -Hf)"',
  'echo "groups=$(id -G)"',
  'echo "oom=$(cat /proc/self/oom_score_adj)"',
  'sed "s/^/hosts:/" /etc/hosts',
  'sed "s/^/resolv:/" /etc/resolv.conf',
].join('; ');

/** The task a `service create` command line makes, as the managers would hand it to this node. */
function taskOf(argv: string[]): Task {
  const { spec } = parseCreateArgv(argv);
  const valid = validateServiceSpec({ ...spec, name: 'tssopts' }).spec;
  return Task.create({
    meta: { id: 'optstask0000000000000000a', version: 1, createdAt: 0, updatedAt: 0 },
    serviceId: 'svc',
    serviceName: 'tssopts',
    slot: 1,
    nodeId: 'node1',
    desiredState: TaskState.RUNNING,
    spec: valid.task,
  });
}

describe.skipIf(!canRun)('container options in a running container', () => {
  const env = useBusyboxRuntime('/tmp/tss-opts-');
  const made = env.made;
  let rt: Runtime;

  beforeAll(() => {
    rt = env.rt;
  });

  /** Runs the probe in a container made from `argv` (with `resolvConf` as the base file) and returns its output lines. */
  async function probe(id: string, argv: string[], resolvConf?: string): Promise<string[]> {
    const cfg = { ...containerConfig(taskOf([...argv, 'tsswarm/busybox:latest', 'sh', '-c', PROBE]), 'node1'), id };
    if (resolvConf) cfg.resolvConf = resolvConf;
    const done = new Promise<number>((res) => {
      const off = rt.onExit((x, code) => {
        if (x === id) {
          off();
          res(code);
        }
      });
    });
    made.push(id);
    await rt.create(cfg);
    await rt.start(id);
    expect(await done).toBe(0);
    const out: string[] = [];
    for await (const l of rt.logs(id)) out.push(l.line.toString().replace(/\n$/, ''));
    return out;
  }

  it('sets sysctls, ulimits, groups, the OOM score and /etc/hosts lines; --dns replaces the nameservers of a plain resolv.conf', async () => {
    const out = await probe(
      'tss-opts-1',
      [
        '--sysctl',
        'net.ipv4.ip_forward=1',
        '--sysctl',
        'net.core.somaxconn=777',
        '--sysctl',
        'kernel.shmmax=123456789',
        '--ulimit',
        'nofile=1234:2345',
        // Below the node's own hard limit: raising one above it needs CAP_SYS_RESOURCE, which a daemon in a container may lack.
        '--ulimit',
        'memlock=32768:65536',
        // -1 is RLIM_INFINITY, a uint64 in config.json.
        '--ulimit',
        'fsize=-1:-1',
        '--group',
        'nogroup',
        '--group',
        '4321',
        '--oom-score-adj',
        '345',
        '--host',
        'db.local:10.9.8.7',
        '--host',
        'v6.local=[fd00::7]',
        '--dns',
        '192.0.2.53',
        '--dns-search',
        'example.com',
        '--dns-option',
        'timeout:1',
      ],
      'nameserver 10.1.1.1\nsearch corp.example\noptions edns0\n',
    );
    expect(out).toContain('ip_forward=1');
    expect(out).toContain('somaxconn=777');
    expect(out).toContain('shmmax=123456789');
    expect(out).toContain('nofile=1234:2345');
    expect(out).toContain('memlock=32:64');
    expect(out).toContain('fsize=unlimited:unlimited');
    // The primary gid, then the supplementary ones (nogroup resolved in the image's /etc/group).
    expect(out, out.join('\n')).toContain('groups=0 4321 65534');
    expect(out).toContain('oom=345');
    expect(out).toContain('hosts:10.9.8.7\tdb.local');
    expect(out).toContain('hosts:fd00::7\tv6.local');
    const resolv = out.filter((l) => l.startsWith('resolv:') && !l.startsWith('resolv:#'));
    expect(resolv).toEqual(['resolv:nameserver 192.0.2.53', 'resolv:search example.com', 'resolv:options timeout:1']);
  });

  it('on the embedded DNS server, it stays the nameserver; search domains and options are written', async () => {
    const out = await probe(
      'tss-opts-2',
      ['--dns', '192.0.2.53', '--dns-search', 'svc.example', '--dns-option', 'ndots:2'],
      'nameserver 127.0.0.11\noptions ndots:0\n',
    );
    const resolv = out.filter((l) => l.startsWith('resolv:') && !l.startsWith('resolv:#'));
    expect(resolv, out.join('\n')).toEqual(['resolv:nameserver 127.0.0.11', 'resolv:search svc.example', 'resolv:options ndots:2']);
    // Without the options: the defaults of a container (no extra groups, Docker's OOM score 0).
    expect(out, out.join('\n')).toContain('groups=0');
    expect(out).toContain('oom=0');
  });

  it('--health-start-interval: checks run at the start interval while starting, not at the (long) interval', async () => {
    const id = 'tss-opts-h';
    const t = taskOf([
      '--health-cmd',
      'echo run >> /tmp/runs; exit 1',
      '--health-interval',
      '10m',
      '--health-start-period',
      '10m',
      '--health-start-interval',
      '100ms',
      '--health-timeout',
      '30s',
      'tsswarm/busybox:latest',
      'sleep',
      '120',
    ]);
    made.push(id);
    await rt.create({ ...containerConfig(t, 'node1'), id });
    await rt.start(id);
    const m = new HealthMonitor(rt, id, t.spec!.container!.healthcheck!, () => undefined);
    const runs = async (): Promise<number> => {
      const h = rt.exec(id, { cmd: ['sh', '-c', 'cat /tmp/runs 2>/dev/null | wc -l'] });
      let out = '';
      h.stdout.on('data', (b: Buffer) => (out += b.toString()));
      await h.exit;
      return Number(out.trim());
    };
    try {
      m.start();
      // With the 10 minute interval alone the first check would not run yet: three runs show the start interval.
      await until('three health checks in the start period', async () => (await runs()) >= 3, { timeoutMs: 60_000, everyMs: 100 });
      expect(await runs()).toBeGreaterThanOrEqual(3);
    } finally {
      m.stop();
    }
  });
});
