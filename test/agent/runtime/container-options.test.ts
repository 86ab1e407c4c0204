// The container options in what the runtime writes: the OCI config's sysctls,
// rlimits, supplementary groups and OOM score; /etc/hosts with --host lines;
// resolv.conf with --dns, --dns-search and --dns-option applied.
// container-options.kernel.test.ts proves the effect in a real container.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostsFile, resolvConfWith } from '../../../agent/runtime/etc.js';
import { ociConfig, ociJson, resolveGroups } from '../../../agent/runtime/spec.js';
import type { ContainerConfig } from '../../../agent/runtime/index.js';

const img = { id: 'sha256:x', references: [], layers: [], entrypoint: [], cmd: ['sh'], env: [], workdir: '', user: '' };
const root = mkdtempSync(join(tmpdir(), 'tss-opts-'));
mkdirSync(join(root, 'etc'));
writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\nvideo:x:44:\naudio:x:29:app\n');
writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Spec = {
  process: { user: { uid: number; gid: number; additionalGids?: number[] }; rlimits?: unknown[]; oomScoreAdj?: number };
  linux: { sysctl?: Record<string, string> };
};
const spec = (c: Partial<ContainerConfig>): Spec =>
  ociConfig({ id: 'tss-o', image: 'x', ...c }, img, { rootfs: root, hostname: 'h', etcFiles: {}, volumesDir: '/v' }) as unknown as Spec;

describe('the OCI config', () => {
  it('carries sysctls, rlimits by their RLIMIT names, groups resolved in the image, and the OOM score adjustment', () => {
    const s = spec({
      sysctls: { 'net.ipv4.ip_forward': '1' },
      ulimits: [
        { name: 'nofile', soft: 1024, hard: 2048 },
        { name: 'memlock', soft: -1, hard: -1 },
      ],
      groups: ['video', '1001', 'audio'],
      oomScoreAdj: 500,
    });
    expect(s.linux.sysctl).toEqual({ 'net.ipv4.ip_forward': '1' });
    expect(s.process.rlimits?.[0]).toEqual({ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 });
    expect(s.process.user.additionalGids).toEqual([44, 1001, 29]);
    expect(s.process.oomScoreAdj).toBe(500);
    // Unlimited is RLIM_INFINITY, a uint64 written as such into config.json.
    expect(ociJson(s as unknown as Record<string, unknown>)).toContain(
      '{"type":"RLIMIT_MEMLOCK","soft":18446744073709551615,"hard":18446744073709551615}',
    );
  });

  it('leaves them out when the service sets none', () => {
    const s = spec({});
    expect(s.linux.sysctl).toBeUndefined();
    expect(s.process.rlimits).toBeUndefined();
    expect(s.process.user.additionalGids).toBeUndefined();
    expect(s.process.oomScoreAdj).toBeUndefined();
  });

  it("refuses a group the image's /etc/group does not have, naming the flag", () => {
    expect(() => resolveGroups(['nosuchgroup'], root)).toThrow('group "nosuchgroup" (--group) is not in the image\'s /etc/group');
    expect(resolveGroups(['7'], null)).toEqual([7]);
  });
});

describe('/etc/hosts', () => {
  it('has localhost, the hostname, then the --host lines in order', () => {
    expect(hostsFile('web.1', ['10.0.0.5 db.local', '10.0.0.6 cache c'])).toBe(
      '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tweb.1\n10.0.0.5\tdb.local\n10.0.0.6\tcache c\n',
    );
  });
});

describe('resolv.conf', () => {
  const embedded = 'nameserver 127.0.0.11\noptions ndots:0\n';
  const host = 'nameserver 10.1.1.1\nsearch corp.example\noptions edns0\n';

  it('is left as it is without DNS settings', () => {
    expect(resolvConfWith(host, undefined)).toBe(host);
    expect(resolvConfWith(host, { nameservers: [], search: [], options: [] })).toBe(host);
  });

  it('on the embedded server: it stays the only nameserver (the --dns servers are its upstreams); search and options are written', () => {
    const out = resolvConfWith(embedded, { nameservers: ['192.0.2.53'], search: ['example.com'], options: ['timeout:1'] });
    expect(out.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'nameserver 127.0.0.11',
      'search example.com',
      'options ndots:0 timeout:1',
      '',
    ]);
    expect(out).toMatch(/^# .*forwards the rest to 192.0.2.53 \(--dns\)/);
    // An ndots option given replaces our ndots:0.
    expect(resolvConfWith(embedded, { nameservers: [], search: [], options: ['ndots:3'] })).toContain('options ndots:3\n');
  });

  it("elsewhere: the --dns servers replace the node's; search and options replace its own; a search of . is none", () => {
    const out = resolvConfWith(host, { nameservers: ['192.0.2.53', '192.0.2.54'], search: ['.'], options: [] });
    expect(out.split('\n').filter((l) => !l.startsWith('#'))).toEqual([
      'nameserver 192.0.2.53',
      'nameserver 192.0.2.54',
      'options edns0',
      '',
    ]);
  });
});
