// `service create|update` with --sysctl, --ulimit, --dns*, --host, --group,
// --oom-score-adj, --generic-resource, --health-start-interval and
// --env-file: command lines → specs, without a daemon.
import { describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../cli/env-file.js';
import { parseCreateArgv, parseUpdateArgv, prettyService } from '../../cli/service.js';
import { Meta, Service } from '../../proto/gen/objects.js';
import { validateServiceSpec } from '../../spec/index.js';

const msg = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error');
};
const noFiles = (): string => {
  throw new Error('no file expected');
};

const CREATE = [
  '--sysctl',
  'net.core.somaxconn=1024',
  '--sysctl',
  'kernel.shmmax=65536',
  '--ulimit',
  'nofile=1024:2048',
  '--ulimit',
  'nproc=64',
  '--dns',
  '192.0.2.53',
  '--dns-search',
  'example.com',
  '--dns-option',
  'ndots:2',
  '--host',
  'db.local:10.0.0.5',
  '--host',
  'cache=10.0.0.6',
  '--group',
  'video',
  '--group',
  '1001',
  '--oom-score-adj',
  '-500',
  '--generic-resource',
  'gpu=2',
  '--health-cmd',
  'true',
  '--health-start-period',
  '30s',
  '--health-start-interval',
  '2s',
  'busybox',
];

describe('service create', () => {
  it('puts every container option into the spec, which the Control API accepts', () => {
    const { spec } = parseCreateArgv(CREATE, {}, noFiles);
    const c = spec.task.container;
    expect(c.sysctls).toEqual({ 'net.core.somaxconn': '1024', 'kernel.shmmax': '65536' });
    expect(c.ulimits).toEqual([
      { name: 'nofile', soft: 1024, hard: 2048 },
      { name: 'nproc', soft: 64, hard: 64 },
    ]);
    expect(c.dnsConfig).toEqual({ nameservers: ['192.0.2.53'], search: ['example.com'], options: ['ndots:2'] });
    expect(c.hosts).toEqual(['10.0.0.5 db.local', '10.0.0.6 cache']);
    expect(c.groups).toEqual(['video', '1001']);
    expect(c.oomScoreAdj).toBe(-500);
    expect(spec.task.resources?.reservations?.generic).toEqual([{ kind: 'gpu', value: 2 }]);
    expect(c.healthcheck?.startIntervalMs).toBe(2000);
    expect(c.healthcheck?.startPeriodMs).toBe(30_000);
    expect(() => validateServiceSpec({ ...spec, name: 's' })).not.toThrow();
  });

  it('refuses bad values naming the flag', () => {
    const bad = (...a: string[]) => msg(() => parseCreateArgv([...a, 'busybox'], {}, noFiles));
    expect(bad('--sysctl', 'kernel.domainname=x')).toMatch(/^--sysctl: "kernel.domainname" is not namespaced/);
    expect(bad('--ulimit', 'nofile=3:2')).toMatch(/^--ulimit: the soft limit/);
    expect(bad('--dns', 'example.com')).toMatch(/^--dns: "example.com" is not an IP address/);
    expect(bad('--dns-search', 'a b')).toMatch(/^--dns-search:/);
    expect(bad('--dns-option', '')).toMatch(/^--dns-option:/);
    expect(bad('--host', 'nohost')).toMatch(/^--host: "nohost" is not HOST:IP/);
    expect(bad('--group', 'a b')).toMatch(/^--group:/);
    expect(bad('--oom-score-adj', '2000')).toMatch(/^--oom-score-adj: must be a whole number from -1000 to 1000/);
    expect(bad('--oom-score-adj', 'x')).toMatch(/^--oom-score-adj:/);
    expect(bad('--generic-resource', 'gpu=UUID-1')).toMatch(/^--generic-resource: .*named generic resources/);
    expect(bad('--health-start-interval', 'soon')).toMatch(/^--health-start-interval must be a duration/);
  });
});

describe('service inspect --pretty', () => {
  it('lists the container options and the generic reservation', () => {
    const { spec } = parseCreateArgv(['--name', 's', ...CREATE], {}, noFiles);
    const out = prettyService(Service.create({ meta: Meta.create({ id: 'x' }), spec }));
    for (const line of [
      ' Groups:\tvideo 1001',
      ' OomScoreAdj:\t-500',
      '  net.core.somaxconn=1024',
      '  nofile=1024:2048',
      '  10.0.0.5 db.local',
      '  Nameservers:\t192.0.2.53',
      '  Search:\texample.com',
      '  Options:\tndots:2',
      '  gpu:\t\t2',
    ])
      expect(out.split('\n')).toContain(line);
  });
});

describe('service update add/rm', () => {
  const current = () => parseCreateArgv(['--name', 's', ...CREATE], {}, noFiles).spec;

  it('removes first, then adds; a key given again replaces its value', () => {
    const spec = parseUpdateArgv(
      [
        '--sysctl-rm',
        'kernel.shmmax',
        '--sysctl-add',
        'net.core.somaxconn=4096',
        '--ulimit-rm',
        'nproc',
        '--ulimit-add',
        'nofile=10:20',
        '--dns-rm',
        '192.0.2.53',
        '--dns-add',
        '192.0.2.54',
        '--dns-search-rm',
        'example.com',
        '--dns-search-add',
        'svc.example',
        '--dns-option-add',
        'timeout:1',
        '--host-rm',
        'db.local',
        '--host-add',
        'db.local:10.0.0.9',
        '--group-rm',
        'video',
        '--group-add',
        'audio',
        '--oom-score-adj',
        '0',
        '--generic-resource-rm',
        'gpu',
        '--generic-resource-add',
        'fpga=1',
        's',
      ],
      current(),
      {},
      undefined,
      noFiles,
    );
    const c = spec.task.container;
    expect(c.sysctls).toEqual({ 'net.core.somaxconn': '4096' });
    expect(c.ulimits).toEqual([{ name: 'nofile', soft: 10, hard: 20 }]);
    expect(c.dnsConfig).toEqual({ nameservers: ['192.0.2.54'], search: ['svc.example'], options: ['ndots:2', 'timeout:1'] });
    expect(c.hosts).toEqual(['10.0.0.6 cache', '10.0.0.9 db.local']);
    expect(c.groups).toEqual(['1001', 'audio']);
    expect(c.oomScoreAdj).toBe(0);
    expect(spec.task.resources?.reservations?.generic).toEqual([{ kind: 'fpga', value: 1 }]);
  });

  it('removing the last DNS setting and generic resource leaves none; no flag changes nothing', () => {
    const spec = parseUpdateArgv(
      ['--dns-rm', '192.0.2.53', '--dns-search-rm', 'example.com', '--dns-option-rm', 'ndots:2', '--generic-resource-rm', 'gpu', 's'],
      current(),
      {},
      undefined,
      noFiles,
    );
    expect(spec.task.container.dnsConfig).toBeNull();
    expect(spec.task.resources?.reservations).toBeNull();
    expect(parseUpdateArgv(['s'], current(), {}, undefined, noFiles)).toEqual(parseUpdateArgv(['s'], current()));
    expect(parseUpdateArgv(['s'], current(), {}, undefined, noFiles).task.container.ulimits).toEqual(current().task.container.ulimits);
  });
});

describe('--env-file', () => {
  it("reads lines as the docker CLI: comments, blank lines, KEY=VALUE as written, bare KEY from the caller's environment", () => {
    const text = '\uFEFF# a comment\n\nA=1\n  B=two words \nC="quoted"\nHOME_DIR\nUNSET\nD=\r\n';
    expect(parseEnvFile('--env-file', 'f', text, { HOME_DIR: '/root' })).toEqual([
      'A=1',
      'B=two words ',
      'C="quoted"',
      'HOME_DIR=/root',
      'D=',
    ]);
    expect(msg(() => parseEnvFile('--env-file', 'f', 'A=1\n=x\n', {}))).toBe(
      '--env-file f line 2: no variable name before "=": write KEY=VALUE',
    );
    expect(msg(() => parseEnvFile('--env-file', 'f', 'MY VAR=1\n', {}))).toMatch(/line 1: variable name "MY VAR" contains white space/);
  });

  it('files are read in order before --env, which wins', () => {
    const files: Record<string, string> = { a: 'A=from-a\nB=from-a\n', b: 'B=from-b\nC=from-b\n' };
    const read = (_f: string, p: string): string => files[p]!;
    const { spec } = parseCreateArgv(['--env-file', 'a', '--env-file', 'b', '-e', 'C=flag', 'busybox'], {}, read);
    expect(spec.task.container.env).toEqual(['A=from-a', 'B=from-b', 'C=flag']);
    const up = parseUpdateArgv(['--env-file', 'a', 's'], { ...spec, name: 's' }, {}, undefined, read);
    expect(up.task.container.env).toEqual(['A=from-a', 'B=from-a', 'C=flag']);
  });

  it('a missing file is refused naming the flag', () => {
    expect(msg(() => parseCreateArgv(['--env-file', '/nonexistent/tss-env', 'busybox']))).toBe(
      '--env-file /nonexistent/tss-env cannot be read: no such file',
    );
  });
});
