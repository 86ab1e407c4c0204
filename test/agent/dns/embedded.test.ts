// agent/dns/index.ts EmbeddedDns without namespaces: upstreams from the host's
// resolv.conf file, and a failed attach leaves nothing registered.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedDns } from '../../../agent/dns/index.js';
import { createLogger } from '../../../lib/log.js';

const log = createLogger({ level: 'silent' });

describe('EmbeddedDns', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('loadResolvConf takes the host nameservers but not 127.0.0.11, and keeps them when the file goes away', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tss-dns-'));
    dirs.push(dir);
    const path = join(dir, 'resolv.conf');
    writeFileSync(path, 'nameserver 127.0.0.11\nnameserver 10.255.255.53\n');
    const dns = new EmbeddedDns({ log, resolvConfPath: path });
    expect(await dns.loadResolvConf()).toEqual([{ address: '10.255.255.53', port: 53 }]);
    rmSync(path);
    expect(await dns.loadResolvConf()).toEqual([{ address: '10.255.255.53', port: 53 }]);
    await dns.close();
  });

  it('an attach that cannot open the namespace throws and registers neither server nor container', async () => {
    const dns = new EmbeddedDns({ log, upstreams: [] });
    const missing = '/run/netns/tss-dns-missing-namespace';
    await expect(dns.attach(missing, { hostname: 'c', endpoints: [] })).rejects.toThrow(/ENOENT|no such file/i);
    expect(dns.attached()).toEqual([]);
    expect(dns.table.container(missing)).toBeUndefined();
    await dns.close();
  });
});
