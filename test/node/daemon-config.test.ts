// node/daemon-config.ts: the daemon's JSON config file, its checks (errors name
// the key and the file), and flags overriding it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { usageError } from '../errors.js';
import {
  dockerSocketPath,
  dockerTcpHostError,
  engineLabelMap,
  groupId,
  parseDaemonConfig,
  readDaemonConfig,
  resolveDaemonConfig,
} from '../../node/daemon-config.js';

const FILE = '/etc/tsswarm/daemon.json';

describe('parseDaemonConfig', () => {
  it('reads every key install.sh writes', () => {
    const written = {
      advertiseAddr: '192.168.56.11',
      listenAddr: '0.0.0.0:4242',
      stateDir: '/var/lib/tsswarm',
      socket: '/run/tsswarm/tsswarm.sock',
      socketGroup: 'tsswarm',
      nodeName: 'manager1',
      metricsAddr: '127.0.0.1:9323',
      heartbeatPeriodMs: 2000,
      logLevel: 'debug',
      lbBackend: 'nftables',
    };
    expect(parseDaemonConfig(JSON.stringify(written), FILE)).toEqual(written);
  });

  it('an empty object is a valid file, and null means "not set"', () => {
    expect(parseDaemonConfig('{}', FILE)).toEqual({});
    expect(parseDaemonConfig('{"advertiseAddr": null, "logLevel": "warn"}', FILE)).toEqual({ logLevel: 'warn' });
  });

  it('accepts a unix:// socket URL and an advertise address with a port or in IPv6', () => {
    expect(parseDaemonConfig('{"socket": "unix:///tmp/x.sock"}', FILE).socket).toBe('/tmp/x.sock');
    expect(parseDaemonConfig('{"advertiseAddr": "10.0.0.1:5000"}', FILE).advertiseAddr).toBe('10.0.0.1:5000');
    expect(parseDaemonConfig('{"advertiseAddr": "fd00::1"}', FILE).advertiseAddr).toBe('fd00::1');
    expect(parseDaemonConfig('{"listenAddr": "[::]:4242"}', FILE).listenAddr).toBe('[::]:4242');
  });

  it('an unknown key is an error naming the key and the file, with the near miss', () => {
    const e = usageError(() => parseDaemonConfig('{"advertiseAdr": "10.0.0.1"}', FILE));
    expect(e.message).toContain('unknown key "advertiseAdr" in /etc/tsswarm/daemon.json');
    expect(e.message).toContain('did you mean "advertiseAddr"?');
    expect(e.message).toContain('known keys: ');
    expect(e.field).toBe('advertiseAdr');
  });

  it('a bad value is an error naming the key, the file, what is expected and what was given', () => {
    expect(usageError(() => parseDaemonConfig('{"logLevel": "loud"}', FILE)).message).toBe(
      '"logLevel" in /etc/tsswarm/daemon.json must be one of trace, debug, info, warn, error, fatal, silent (got "loud")',
    );
    expect(usageError(() => parseDaemonConfig('{"lbBackend": "pf"}', FILE)).message).toMatch(
      /^"lbBackend" in \/etc\/tsswarm\/daemon.json must be one of auto, nftables, iptables, ipvs \(got "pf"\)$/,
    );
    expect(usageError(() => parseDaemonConfig('{"listenAddr": "0.0.0.0"}', FILE)).message).toMatch(/^"listenAddr" in .* must be HOST:PORT/);
    expect(usageError(() => parseDaemonConfig('{"listenAddr": "0.0.0.0:70000"}', FILE)).message).toContain('(got "0.0.0.0:70000")');
    expect(usageError(() => parseDaemonConfig('{"stateDir": "var/lib/x"}', FILE)).message).toContain(
      '"stateDir" in /etc/tsswarm/daemon.json must be an absolute path',
    );
    expect(usageError(() => parseDaemonConfig('{"nodeName": 7}', FILE)).message).toContain(
      '"nodeName" in /etc/tsswarm/daemon.json must be a non-empty string (got "7")',
    );
    expect(usageError(() => parseDaemonConfig('{"heartbeatPeriodMs": 50}', FILE)).message).toContain('≥ 100 (got "50")');
    expect(usageError(() => parseDaemonConfig('{"heartbeatPeriodMs": "1000"}', FILE)).message).toContain('"heartbeatPeriodMs"');
  });

  it('text that is not a JSON object is an error naming the file', () => {
    expect(usageError(() => parseDaemonConfig('{"a": ', FILE)).message).toMatch(/^\/etc\/tsswarm\/daemon.json is not valid JSON/);
    expect(usageError(() => parseDaemonConfig('[1]', FILE)).message).toContain('must hold a JSON object');
  });
});

describe('resolveDaemonConfig', () => {
  it('without a file or flags gives the defaults', () => {
    expect(resolveDaemonConfig({ flags: {} })).toEqual({ stateDir: '/var/lib/tsswarm', listenAddr: '0.0.0.0:4242' });
  });

  it('flags override the file, key by key, and the rest of the file stays', () => {
    const file = parseDaemonConfig(
      '{"advertiseAddr": "10.0.0.1", "logLevel": "debug", "stateDir": "/srv/tss", "lbBackend": "iptables"}',
      FILE,
    );
    const c = resolveDaemonConfig({ flags: { 'advertise-addr': '10.0.0.2', 'lb-backend': 'nftables' }, file });
    expect(c).toEqual({
      advertiseAddr: '10.0.0.2',
      logLevel: 'debug',
      stateDir: '/srv/tss',
      listenAddr: '0.0.0.0:4242',
      lbBackend: 'nftables',
    });
  });

  it('a bad flag value is an error naming the flag', () => {
    expect(usageError(() => resolveDaemonConfig({ flags: { 'heartbeat-period': 'soon' } })).message).toBe(
      '--heartbeat-period must be a whole number of milliseconds ≥ 100 (got "soon")',
    );
    expect(usageError(() => resolveDaemonConfig({ flags: { 'listen-addr': 'nowhere' } })).field).toBe('--listen-addr');
  });

  it('a relative --state-dir is taken from the current directory (a file must give an absolute one)', () => {
    expect(resolveDaemonConfig({ flags: { 'state-dir': 'st' } }).stateDir).toBe(join(process.cwd(), 'st'));
  });

  it('insecure registries: a list in the file, comma-separated on the command line, each checked', () => {
    expect(parseDaemonConfig('{"insecureRegistries": ["10.77.0.11:5000", "10.0.0.0/8"]}', FILE).insecureRegistries).toEqual([
      '10.77.0.11:5000',
      '10.0.0.0/8',
    ]);
    expect(resolveDaemonConfig({ flags: { 'insecure-registry': 'reg.lan:5000,10.1.0.0/16' } }).insecureRegistries).toEqual([
      'reg.lan:5000',
      '10.1.0.0/16',
    ]);
    expect(usageError(() => resolveDaemonConfig({ flags: { 'insecure-registry': 'a b' } })).message).toMatch(
      /^--insecure-registry "a b" is not a registry: give HOST, HOST:PORT or an IPv4 network/,
    );
    expect(usageError(() => parseDaemonConfig('{"insecureRegistries": "x:1"}', FILE)).message).toMatch(
      /"insecureRegistries" in .* must be a list/,
    );
  });

  it("engine labels as dockerd's: a KEY=VALUE list in the file (labels), --label repeated on the command line, each checked", () => {
    expect(parseDaemonConfig('{"labels": ["zone=east", "ssd=true"]}', FILE).labels).toEqual(['zone=east', 'ssd=true']);
    const cfg = resolveDaemonConfig({ flags: { label: ['gpu=a=b', 'empty='] }, file: { labels: ['zone=east'] } });
    expect(engineLabelMap(cfg.labels)).toEqual({ gpu: 'a=b', empty: '' });
    expect(usageError(() => resolveDaemonConfig({ flags: { label: ['novalue'] } })).message).toMatch(
      /^--label must be KEY=VALUE with a key of letters.* \(got "novalue"\)$/,
    );
    for (const bad of ['a.b=x\ny', 'bell=\u0007', 'k=\u009b', 'a\u0001b=c'])
      expect(usageError(() => resolveDaemonConfig({ flags: { label: [bad] } })).message).toMatch(
        /^--label must be KEY=VALUE .*none a control character/,
      );
    expect(usageError(() => resolveDaemonConfig({ flags: { label: ['a=1', 'a=2'] } })).message).toBe(
      '--label: the label "a" is given twice: keep one value',
    );
    expect(usageError(() => parseDaemonConfig('{"labels": {"a": "b"}}', FILE)).message).toMatch(
      /"labels" in .* must be a list of KEY=VALUE/,
    );
    const many = JSON.stringify({ labels: Array.from({ length: 65 }, (_, i) => `k${i}=v`) });
    expect(usageError(() => parseDaemonConfig(many, FILE)).message).toMatch(/at most 64/);
  });

  it('a socket chosen by --host or TSSWARM_HOST wins over the file', () => {
    const file = parseDaemonConfig('{"socket": "/run/a.sock"}', FILE);
    expect(resolveDaemonConfig({ flags: {}, file }).socket).toBe('/run/a.sock');
    expect(resolveDaemonConfig({ flags: {}, file, socketOverride: '/run/b.sock' }).socket).toBe('/run/b.sock');
  });
});

describe('the docker socket', () => {
  it('defaults to docker.sock beside the CLI socket; a path, unix:// URL, empty or none is taken', () => {
    expect(dockerSocketPath(undefined, '/run/tsswarm/tsswarm.sock')).toBe('/run/tsswarm/docker.sock');
    expect(dockerSocketPath(undefined, '/tmp/x/a.sock')).toBe('/tmp/x/a-docker.sock');
    expect(parseDaemonConfig('{"dockerSocket":"unix:///run/d.sock"}', 'f').dockerSocket).toBe('/run/d.sock');
    expect(parseDaemonConfig('{"dockerSocket":""}', 'f').dockerSocket).toBe('');
    expect(resolveDaemonConfig({ flags: { 'docker-socket': 'none' } }).dockerSocket).toBe('');
    expect(resolveDaemonConfig({ flags: { 'docker-socket': '/run/e.sock' }, file: { dockerSocket: '/run/d.sock' } }).dockerSocket).toBe(
      '/run/e.sock',
    );
    expect(dockerSocketPath('', '/run/tsswarm/tsswarm.sock')).toBe('');
  });

  it('a TCP address is refused, pointing to dockerTcp; so is a relative path', () => {
    expect(() => resolveDaemonConfig({ flags: { 'docker-socket': 'tcp://0.0.0.0:2376' } })).toThrow(
      /--docker-socket tcp:\/\/0\.0\.0\.0:2376: this setting is the unix socket only.*--docker-tcp IP:PORT, "dockerTcp" in daemon\.json/,
    );
    expect(() => parseDaemonConfig('{"dockerSocket":"docker.sock"}', 'f')).toThrow(/must be an absolute path/);
  });
});

describe('the Engine API over TCP (dockerTcp, --docker-tcp)', () => {
  it("is off unless set; IP:PORT and dockerd's tcp://IP:PORT are taken, flag over file", () => {
    expect(resolveDaemonConfig({ flags: {} }).dockerTcp).toBeUndefined();
    expect(parseDaemonConfig('{"dockerTcp":"0.0.0.0:2376"}', FILE).dockerTcp).toBe('0.0.0.0:2376');
    expect(parseDaemonConfig('{"dockerTcp":"tcp://10.0.0.5:2376"}', FILE).dockerTcp).toBe('10.0.0.5:2376');
    expect(parseDaemonConfig('{"dockerTcp":""}', FILE).dockerTcp).toBe('');
    expect(resolveDaemonConfig({ flags: { 'docker-tcp': 'none' }, file: { dockerTcp: '0.0.0.0:2376' } }).dockerTcp).toBe('');
    expect(resolveDaemonConfig({ flags: { 'docker-tcp': '127.0.0.1:12376' }, file: { dockerTcp: '0.0.0.0:2376' } }).dockerTcp).toBe(
      '127.0.0.1:12376',
    );
  });

  it('refuses port 2375 (plain TCP): there is no insecure mode', () => {
    const e = usageError(() => resolveDaemonConfig({ flags: { 'docker-tcp': '0.0.0.0:2375' } }));
    expect(e.field).toBe('--docker-tcp');
    expect(e.message).toMatch(/--docker-tcp 0\.0\.0\.0:2375: port 2375 is Docker's port for the API without TLS.*use 2376/);
    expect(() => parseDaemonConfig('{"dockerTcp":"tcp://0.0.0.0:2375"}', FILE)).toThrow(
      /"dockerTcp" in \/etc\/tsswarm\/daemon\.json tcp:\/\/0\.0\.0\.0:2375: port 2375/,
    );
  });

  it('listens on 0.0.0.0, loopback or the advertised address only: what the server certificate names', () => {
    for (const ok of ['0.0.0.0:2376', '127.0.0.1:2376', '10.0.0.5:2376'])
      expect(dockerTcpHostError(ok, '10.0.0.5:4242'), ok).toBeUndefined();
    // Not known yet (before init or join): checked again once it is.
    expect(dockerTcpHostError('10.0.0.6:2376', '')).toBeUndefined();
    expect(dockerTcpHostError('10.0.0.6:2376', '10.0.0.5')).toMatch(
      /--docker-tcp 10\.0\.0\.6:2376: the Engine API's server certificate names this node's advertised address \(10\.0\.0\.5\) and 127\.0\.0\.1 only.*listen on 0\.0\.0\.0:PORT, 10\.0\.0\.5:PORT or 127\.0\.0\.1:PORT/,
    );
  });

  it('refuses a host name, a missing or bad port, a unix socket or an https URL, naming the field', () => {
    for (const bad of [
      'localhost:2376',
      'node1:2376',
      '0.0.0.0',
      '0.0.0.0:0',
      '0.0.0.0:70000',
      '300.1.1.1:2376',
      '[::]:2376',
      '01.2.3.4:2376',
    ]) {
      const e = usageError(() => resolveDaemonConfig({ flags: { 'docker-tcp': bad } }));
      expect(e.field, bad).toBe('--docker-tcp');
      expect(e.message, bad).toMatch(/IP:PORT with an IPv4 address/);
    }
    expect(() => resolveDaemonConfig({ flags: { 'docker-tcp': 'unix:///run/d.sock' } })).toThrow(/the unix socket is --docker-socket/);
    expect(() => resolveDaemonConfig({ flags: { 'docker-tcp': 'https://0.0.0.0:2376' } })).toThrow(/TLS is always on/);
    expect(() => parseDaemonConfig('{"dockerTcp":2376}', FILE)).toThrow(/"dockerTcp" in \/etc\/tsswarm\/daemon\.json/);
  });
});

describe('groupId', () => {
  const etcGroup = 'root:x:0:\nvagrant:x:1000:\ntsswarm:x:998:vagrant,ubuntu\n';

  it('finds a group by name in /etc/group text, or takes a number as the gid', () => {
    expect(groupId('tsswarm', etcGroup)).toBe(998);
    expect(groupId('0', etcGroup)).toBe(0);
    expect(parseDaemonConfig('{"socketGroup": 998}', FILE).socketGroup).toBe('998');
  });

  it('a missing group is an error that says how to create it', () => {
    expect(usageError(() => groupId('docker', etcGroup, '"socketGroup" in /etc/tsswarm/daemon.json')).message).toBe(
      '"socketGroup" in /etc/tsswarm/daemon.json names the group "docker", which /etc/group does not have: create it (groupadd --system docker), or drop the setting to keep the socket root\'s',
    );
  });

  it('a group name with a space or colon is refused in the file', () => {
    expect(usageError(() => parseDaemonConfig('{"socketGroup": "a:b"}', FILE)).message).toContain(
      '"socketGroup" in /etc/tsswarm/daemon.json must be a group name or a numeric gid',
    );
  });
});

describe('readDaemonConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tss-dcfg-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a file from disk', () => {
    const f = join(dir, 'daemon.json');
    writeFileSync(f, '{"nodeName": "h1"}\n');
    expect(readDaemonConfig(f)).toEqual({ nodeName: 'h1' });
  });

  it('a missing file is an error naming it and --config', () => {
    const e = usageError(() => readDaemonConfig(join(dir, 'nope.json')));
    expect(e.message).toContain(`--config ${join(dir, 'nope.json')}: cannot read it (no such file)`);
  });
});
