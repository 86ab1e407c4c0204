// The pure half of deploy/sandbox: names, addresses and files of the hosts,
// host references, and the ip/nft programs, line by line. No kernel needed.
import { describe, expect, it } from 'vitest';
import { defaultDaemonCommand, findHost, layoutHosts, tsswarmBin } from '../../../deploy/sandbox/index.js';
import { checkPrefix, isSandboxNamespace, parseSubnet, resolveRoot } from '../../../deploy/sandbox/layout.js';
import {
  cutElementArgs,
  cutTableRuleset,
  deleteNamespacesProgram,
  hostProgram,
  namespacesProgram,
  parseCutSet,
  underlayProgram,
} from '../../../deploy/sandbox/plan.js';

const layout = (managers: number, workers: number, over: { root?: string; prefix?: string; subnet?: string } = {}) =>
  layoutHosts({ managers, workers, root: '/tmp/tss-sandbox', prefix: 'tss-', subnet: '10.77.0.0/24', ...over });

describe('sandbox layout', () => {
  it('managers come first, then workers; host N is tss-hN at 10.77.0.(10+N) with its files under the root', () => {
    const hosts = layout(3, 2);
    expect(hosts.map((h) => [h.name, h.index, h.role, h.addr])).toEqual([
      ['tss-h1', 1, 'manager', '10.77.0.11'],
      ['tss-h2', 2, 'manager', '10.77.0.12'],
      ['tss-h3', 3, 'manager', '10.77.0.13'],
      ['tss-h4', 4, 'worker', '10.77.0.14'],
      ['tss-h5', 5, 'worker', '10.77.0.15'],
    ]);
    expect(hosts[1]).toEqual({
      name: 'tss-h2',
      index: 2,
      role: 'manager',
      addr: '10.77.0.12',
      dir: '/tmp/tss-sandbox/tss-h2',
      stateDir: '/tmp/tss-sandbox/tss-h2/state',
      socketPath: '/tmp/tss-sandbox/tss-h2/tsswarm.sock',
      dockerSocketPath: '/tmp/tss-sandbox/tss-h2/docker.sock',
      logFile: '/tmp/tss-sandbox/tss-h2/daemon.log',
      netnsPath: '/run/netns/tss-h2',
      underlayPort: 'tss-ulh2',
    });
  });

  it('the subnet is an option, normalized to its network address', () => {
    expect(layout(1, 1, { subnet: '192.168.50.0/24' }).map((h) => h.addr)).toEqual(['192.168.50.11', '192.168.50.12']);
    expect(parseSubnet('10.1.2.3/16')).toEqual({ network: 0x0a010000, bits: 16, cidr: '10.1.0.0/16' });
  });

  it('bad counts, subnets, prefixes and over-long socket paths are refused with the fix', () => {
    expect(() => layout(-1, 2)).toThrow('--managers must be a whole number ≥ 0 (got "-1")');
    expect(() => layout(0, 0)).toThrow('a sandbox needs at least one host');
    expect(() => layout(1, 0, { subnet: '10.77.0.0' })).toThrow('--subnet must be an IPv4 network such as 10.77.0.0/24');
    expect(() => layout(1, 0, { subnet: '10.77.0.0/30' })).toThrow('--subnet must be');
    expect(() => layout(1, 5, { subnet: '10.77.0.0/28' })).toThrow(
      '6 hosts do not fit in 10.77.0.0/28 (room for 4): use fewer hosts or a larger --subnet',
    );
    expect(() => layout(1, 0, { prefix: 'tssdk-' })).toThrow('prefix must be');
    expect(() => layout(1, 0, { prefix: 'sb-' })).toThrow('prefix must be');
    expect(checkPrefix('tss-t1a2b-')).toBe('tss-t1a2b-');
    expect(() => layout(1, 0, { root: `/tmp/${'x'.repeat(90)}` })).toThrow(
      /over the 107 a unix socket allows: choose a shorter sandbox directory \(TSSWARM_SANDBOX_DIR\)/,
    );
  });

  it('the root comes from the option, else TSSWARM_SANDBOX_DIR, else /tmp/tss-sandbox', () => {
    expect(resolveRoot('/srv/sb/', {})).toBe('/srv/sb');
    expect(resolveRoot(undefined, { TSSWARM_SANDBOX_DIR: '/var/tmp/tss-x' })).toBe('/var/tmp/tss-x');
    expect(resolveRoot(undefined, {})).toBe('/tmp/tss-sandbox');
  });

  it('a host is named as h2, tss-h2 or 2; an unknown one is an error listing the hosts', () => {
    const hosts = layout(2, 1);
    for (const ref of ['h2', 'tss-h2', '2', ' h2 ']) expect(findHost(hosts, ref, 'tss-').name).toBe('tss-h2');
    expect(findHost(layout(1, 1, { prefix: 'tss-t9-' }), 'tss-t9-h2', 'tss-t9-').name).toBe('tss-t9-h2');
    expect(() => findHost(hosts, 'h4', 'tss-')).toThrow(
      'no sandbox host "h4": the sandbox has tss-h1, tss-h2, tss-h3 (name one as h2, tss-h2 or 2)',
    );
    expect(() => findHost(hosts, 'h02', 'tss-')).toThrow('no sandbox host "h02"');
  });

  it('only the namespaces of the prefix belong to the sandbox: never another prefix or tssdk-*', () => {
    expect(['tss-ul', 'tss-h1', 'tss-h12'].every((n) => isSandboxNamespace('tss-', n))).toBe(true);
    expect(
      ['tss-t1a2-h1', 'tss-t1a2-ul', 'tssdk-h1', 'tss-h0', 'tss-hx', 'tss-ulbr', 'tss-nt-1'].some((n) => isSandboxNamespace('tss-', n)),
    ).toBe(false);
    expect(isSandboxNamespace('tss-t1a2-', 'tss-t1a2-h1')).toBe(true);
  });

  it('the default daemon is tsswarm daemon with the host name, state dir and addresses', () => {
    const h = layout(1, 0)[0]!;
    expect(defaultDaemonCommand(h).argv).toEqual([
      process.execPath,
      tsswarmBin,
      'daemon',
      '--node-name',
      'tss-h1',
      '--state-dir',
      '/tmp/tss-sandbox/tss-h1/state',
      '--listen-addr',
      '10.77.0.11:4242',
      '--advertise-addr',
      '10.77.0.11',
      '--metrics-addr',
      '10.77.0.11:9323',
      '--docker-socket',
      '/tmp/tss-sandbox/tss-h1/docker.sock',
    ]);
    expect(tsswarmBin).toMatch(/\/bin\/tsswarm\.mjs$/);
  });
});

describe('sandbox kernel programs', () => {
  const hosts = layout(1, 1);

  it('namespaces are added in the root namespace and nothing else is', () => {
    expect(namespacesProgram(['tss-ul', 'tss-h1'])).toEqual(['netns add tss-ul', 'netns add tss-h1']);
    expect(deleteNamespacesProgram(['tss-ul'])).toEqual(['netns del tss-ul']);
  });

  it('the underlay program makes the bridge and each veth inside the underlay, the peer born as eth0 in the host', () => {
    expect(underlayProgram(hosts)).toEqual([
      'link set lo up',
      'link add tss-ulbr type bridge',
      'link set tss-ulbr mtu 1500 up',
      'link add tss-ulh1 mtu 1500 type veth peer name eth0 netns tss-h1',
      'link set tss-ulh1 master tss-ulbr up',
      'link add tss-ulh2 mtu 1500 type veth peer name eth0 netns tss-h2',
      'link set tss-ulh2 master tss-ulbr up',
    ]);
  });

  it('a host program brings up lo and eth0 with its address', () => {
    expect(hostProgram(hosts[0]!, 24)).toEqual(['link set lo up', 'addr add 10.77.0.11/24 dev eth0', 'link set eth0 up']);
  });

  it('cutting drops frames to and from the port at the bridge; heal takes the port out of the set', () => {
    const rules = cutTableRuleset();
    expect(rules).toContain('table bridge tss-sandbox {');
    expect(rules).toContain('type filter hook forward priority 0; policy accept;');
    expect(rules).toContain('iifname @cut drop');
    expect(rules).toContain('oifname @cut drop');
    expect(cutElementArgs('tss-ulh3', true)).toEqual(['add', 'element', 'bridge', 'tss-sandbox', 'cut', '{ "tss-ulh3" }']);
    expect(cutElementArgs('tss-ulh3', false)).toEqual(['delete', 'element', 'bridge', 'tss-sandbox', 'cut', '{ "tss-ulh3" }']);
  });

  it('the cut set is read from nft -j output, empty or not', () => {
    const meta = { metainfo: { version: '1.0.6', json_schema_version: 1 } };
    const set = (elem?: string[]) =>
      JSON.stringify({
        nftables: [meta, { set: { family: 'bridge', name: 'cut', table: 'tss-sandbox', type: 'ifname', ...(elem ? { elem } : {}) } }],
      });
    expect(parseCutSet(set())).toEqual([]);
    expect(parseCutSet(set(['tss-ulh2', 'tss-ulh3']))).toEqual(['tss-ulh2', 'tss-ulh3']);
  });
});
