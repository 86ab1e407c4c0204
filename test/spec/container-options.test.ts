// The container options' checks (spec/container-options.ts), shared by the
// CLI, the Control API, the Engine API and compose: each refuses by naming
// the field and the value.
import { describe, expect, it } from 'vitest';
import {
  checkDnsConfig,
  checkGroup,
  checkHostEntry,
  checkOomScoreAdj,
  isNamespacedSysctl,
  parseExtraHost,
  parseGenericResource,
  parseSysctl,
  parseUlimit,
  removeHosts,
} from '../../spec/container-options.js';
import { ContainerSpec, ServiceSpec, TaskSpec } from '../../proto/gen/objects.js';
import { SPEC_LIMITS, validateServiceSpec } from '../../spec/index.js';

const msg = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
};

describe('sysctls', () => {
  it('takes the namespaced ones Docker allows', () => {
    for (const k of ['net.ipv4.ip_forward', 'net.core.somaxconn', 'kernel.shmmax', 'kernel.msgmnb', 'kernel.sem', 'fs.mqueue.msg_max'])
      expect(isNamespacedSysctl(k)).toBe(true);
    expect(parseSysctl('--sysctl', 'net.ipv4.ip_local_port_range=1024 65000')).toEqual(['net.ipv4.ip_local_port_range', '1024 65000']);
  });

  it('refuses the others, naming the key', () => {
    expect(msg(() => parseSysctl('--sysctl', 'kernel.hostname=x'))).toMatch(/^--sysctl: "kernel.hostname" is not namespaced/);
    expect(msg(() => parseSysctl('--sysctl', 'vm.swappiness=1'))).toMatch(/"vm.swappiness" is not namespaced/);
    expect(msg(() => parseSysctl('--sysctl', 'net.core.somaxconn'))).toMatch(/is not KEY=VALUE/);
    expect(msg(() => parseSysctl('--sysctl', 'net/ipv4/ip_forward=1'))).toMatch(/is not a sysctl name/);
    expect(msg(() => parseSysctl('--sysctl', 'net.a=1\n2'))).toMatch(/newline/);
    expect(msg(() => parseSysctl('--sysctl', 'net.ipv4.conf.eth0.rp_filter=2'))).toMatch(
      /names the interface eth0, which does not exist yet .* e.g. net.ipv4.conf.all.rp_filter/,
    );
    expect(parseSysctl('--sysctl', 'net.ipv6.conf.all.disable_ipv6=1')).toEqual(['net.ipv6.conf.all.disable_ipv6', '1']);
  });
});

describe('ulimits', () => {
  it("NAME=SOFT[:HARD] with Docker's names; HARD defaults to SOFT; -1 is unlimited", () => {
    expect(parseUlimit('--ulimit', 'nofile=1024:2048')).toEqual({ name: 'nofile', soft: 1024, hard: 2048 });
    expect(parseUlimit('--ulimit', 'nproc=50')).toEqual({ name: 'nproc', soft: 50, hard: 50 });
    expect(parseUlimit('--ulimit', 'memlock=-1:-1')).toEqual({ name: 'memlock', soft: -1, hard: -1 });
    expect(parseUlimit('--ulimit', 'core=0:-1')).toEqual({ name: 'core', soft: 0, hard: -1 });
  });

  it('refuses unknown names, soft above hard and bad numbers', () => {
    expect(msg(() => parseUlimit('--ulimit', 'files=1'))).toMatch(/"files" is not a ulimit name: use one of core, cpu/);
    expect(msg(() => parseUlimit('--ulimit', 'nofile=2048:1024'))).toMatch(
      /soft limit of nofile \(2048\) is above its hard limit \(1024\)/,
    );
    expect(msg(() => parseUlimit('--ulimit', 'nofile=-1:1024'))).toMatch(/above its hard limit/);
    expect(msg(() => parseUlimit('--ulimit', 'nofile=-2'))).toMatch(/-1 for unlimited/);
    expect(msg(() => parseUlimit('--ulimit', 'nofile'))).toMatch(/is not NAME=SOFT\[:HARD\]/);
  });
});

describe('hosts', () => {
  it("Docker's HOST:IP and HOST=IP, IPv6 bare or in brackets, stored as a hosts line", () => {
    expect(parseExtraHost('--host', 'db.local:10.0.0.5')).toBe('10.0.0.5 db.local');
    expect(parseExtraHost('--host', 'db=10.0.0.5')).toBe('10.0.0.5 db');
    expect(parseExtraHost('--host', 'v6:fd00::1')).toBe('fd00::1 v6');
    expect(parseExtraHost('--host', 'v6=[fd00::2]')).toBe('fd00::2 v6');
  });

  it('refuses a missing host or address, and host-gateway', () => {
    expect(msg(() => parseExtraHost('--host', 'db'))).toMatch(/is not HOST:IP/);
    expect(msg(() => parseExtraHost('--host', 'db:not-an-ip'))).toMatch(/"not-an-ip" in "db:not-an-ip" is not an IP address/);
    expect(msg(() => parseExtraHost('--host', 'gw:host-gateway'))).toMatch(/host-gateway is not supported/);
    expect(msg(() => checkHostEntry('hosts[0]', 'db 10.0.0.1'))).toMatch(/is not a hosts line/);
  });

  it('removes a host from every entry, or one mapping', () => {
    const hs = ['10.0.0.1 a b', '10.0.0.2 a', '10.0.0.3 c'];
    expect(removeHosts('--host-rm', hs, 'a')).toEqual(['10.0.0.1 b', '10.0.0.3 c']);
    expect(removeHosts('--host-rm', hs, 'a:10.0.0.2')).toEqual(['10.0.0.1 a b', '10.0.0.3 c']);
    expect(removeHosts('--host-rm', hs, 'zzz')).toEqual(hs);
  });
});

describe('dns, groups, oom score, generic resources', () => {
  it('checks nameservers, search domains and options, and their counts', () => {
    expect(() =>
      checkDnsConfig('d', { nameservers: ['192.0.2.1', 'fd00::53'], search: ['example.com', '.'], options: ['ndots:2'] }),
    ).not.toThrow();
    expect(msg(() => checkDnsConfig('d', { nameservers: ['dns.example'], search: [], options: [] }))).toMatch(
      /"dns.example" is not an IP address/,
    );
    expect(msg(() => checkDnsConfig('d', { nameservers: ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4'], search: [], options: [] }))).toMatch(
      /at most 3 are allowed \(the resolver reads three\)/,
    );
    expect(msg(() => checkDnsConfig('d', { nameservers: [], search: ['-bad-'], options: [] }))).toMatch(/is not a domain name/);
    expect(msg(() => checkDnsConfig('d', { nameservers: [], search: [], options: ['two words'] }))).toMatch(/is not a resolver option/);
  });

  it('groups are names or gids; the OOM score adjustment is from -1000 to 1000', () => {
    expect(() => checkGroup('--group', 'video')).not.toThrow();
    expect(() => checkGroup('--group', '1001')).not.toThrow();
    expect(msg(() => checkGroup('--group', 'a:b'))).toMatch(/is not a group/);
    expect(() => checkOomScoreAdj('--oom-score-adj', -1000)).not.toThrow();
    expect(msg(() => checkOomScoreAdj('--oom-score-adj', 1001))).toMatch(/from -1000 to 1000 \(got 1001\)/);
  });

  it('generic resources are KIND=COUNT; named resources are refused', () => {
    expect(parseGenericResource('--generic-resource', 'gpu=2')).toEqual({ kind: 'gpu', value: 2 });
    expect(msg(() => parseGenericResource('--generic-resource', 'gpu=GPU-3f2a'))).toMatch(
      /named generic resources \(KIND=NAME\) are not supported/,
    );
    expect(msg(() => parseGenericResource('--generic-resource', 'gpu=0'))).toMatch(/from 1 to/);
    expect(msg(() => parseGenericResource('--generic-resource', 'gpu'))).toMatch(/is not KIND=COUNT/);
  });
});

describe('the Control API checks the options of a spec it receives', () => {
  const spec = (c: Partial<ContainerSpec>, rsv?: object) =>
    ServiceSpec.create({
      name: 's',
      task: TaskSpec.create({
        container: ContainerSpec.create({ image: 'busybox', ...c }),
        ...(rsv ? { resources: { limits: null, reservations: { nanoCpus: 0, memoryBytes: 0, pids: 0, generic: [], ...rsv } } } : {}),
      }),
    });

  it('accepts valid ones and keeps them', () => {
    const { spec: s } = validateServiceSpec(
      spec(
        {
          sysctls: { 'net.core.somaxconn': '1024' },
          ulimits: [{ name: 'nofile', soft: 1, hard: 2 }],
          dnsConfig: { nameservers: ['192.0.2.53'], search: ['example.com'], options: ['ndots:2'] },
          hosts: ['10.0.0.1 db'],
          groups: ['video'],
          oomScoreAdj: -500,
        },
        { generic: [{ kind: 'gpu', value: 2 }] },
      ),
    );
    expect(s.task.container.sysctls).toEqual({ 'net.core.somaxconn': '1024' });
    expect(s.task.resources?.reservations?.generic).toEqual([{ kind: 'gpu', value: 2 }]);
  });

  it('refuses each bad value naming the field and the flag', () => {
    expect(msg(() => validateServiceSpec(spec({ sysctls: { 'kernel.hostname': 'x' } })))).toMatch(
      /spec.task.container.sysctls \(--sysctl\).kernel.hostname: "kernel.hostname" is not namespaced/,
    );
    expect(msg(() => validateServiceSpec(spec({ ulimits: [{ name: 'nofile', soft: 2, hard: 1 }] })))).toMatch(
      /spec.task.container.ulimits \(--ulimit\)\[0\]: the soft limit/,
    );
    expect(
      msg(() =>
        validateServiceSpec(
          spec({
            ulimits: [
              { name: 'nofile', soft: 1, hard: 1 },
              { name: 'nofile', soft: 1, hard: 1 },
            ],
          }),
        ),
      ),
    ).toMatch(/nofile is given twice/);
    expect(msg(() => validateServiceSpec(spec({ hosts: ['db'] })))).toMatch(/spec.task.container.hosts\[0\] \(--host\)/);
    expect(msg(() => validateServiceSpec(spec({ oomScoreAdj: -1001 })))).toMatch(/oomScoreAdj \(--oom-score-adj\): must be a whole number/);
    expect(msg(() => validateServiceSpec(spec({ groups: Array.from({ length: SPEC_LIMITS.groups + 1 }, (_, i) => String(i)) })))).toMatch(
      /has 101 entries: at most 100/,
    );
    expect(msg(() => validateServiceSpec(spec({}, { generic: [{ kind: 'gpu', value: 0 }] })))).toMatch(
      /spec.task.resources.reservations.generic \(--generic-resource\)\[0\]: gpu must be a whole number from 1/,
    );
    expect(
      msg(() =>
        validateServiceSpec(
          ServiceSpec.create({
            name: 's',
            task: TaskSpec.create({
              container: ContainerSpec.create({ image: 'busybox' }),
              resources: { limits: { nanoCpus: 0, memoryBytes: 0, pids: 0, generic: [{ kind: 'gpu', value: 1 }] }, reservations: null },
            }),
          }),
        ),
      ),
    ).toMatch(/limits.generic is a reservation only/);
  });
});
