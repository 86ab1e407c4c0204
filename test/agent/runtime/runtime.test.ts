// The container runtime's pure logic: references normalize as Docker names
// them, process args, the OCI config (limits, mounts, users) and health states.
// The runtime on runc and conmon is in runtime.kernel.test.ts.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  HealthState,
  canonicalRef,
  healthCommand,
  mergeEnv,
  normalizeRef,
  ociConfig,
  parsePullRef,
  repoDigestOf,
  processArgs,
  resolveUser,
} from '../../../agent/runtime/index.js';

describe('runtime logic', () => {
  it('references normalize as docker names them', () => {
    expect(normalizeRef('busybox')).toBe('busybox:latest');
    expect(normalizeRef('docker.io/library/busybox:1')).toBe('busybox:1');
    expect(normalizeRef('localhost:5000/app')).toBe('localhost:5000/app:latest');
    expect(normalizeRef('library/busybox')).toBe('busybox:latest');
    expect(normalizeRef('docker.io/user/app:2')).toBe('user/app:2');
    expect(canonicalRef('busybox')).toBe('docker.io/library/busybox:latest');
    expect(canonicalRef('localhost:5000/x:t')).toBe('localhost:5000/x:t');
    expect(() => normalizeRef('Bad Name')).toThrow(/not valid/);
    expect(parsePullRef('docker.io/library/busybox:1')).toEqual({ registry: 'registry-1.docker.io', repo: 'library/busybox', tag: '1' });
    expect(parsePullRef('localhost:5000/app:2')).toEqual({ registry: 'localhost:5000', repo: 'app', tag: '2' });
    expect(parsePullRef('busybox')).toEqual({ registry: 'registry-1.docker.io', repo: 'library/busybox', tag: 'latest' });
  });

  it('a reference with a tag and a digest pulls the digest, and is stored under repo@digest', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parsePullRef(`10.0.0.1:5000/tss/bb:v1@${d}`)).toEqual({ registry: '10.0.0.1:5000', repo: 'tss/bb', tag: d });
    expect(parsePullRef(`busybox@${d}`)).toEqual({ registry: 'registry-1.docker.io', repo: 'library/busybox', tag: d });
    expect(normalizeRef(`docker.io/library/busybox:1@${d}`)).toBe(`busybox:1@${d}`);
    expect(canonicalRef(`busybox:1@${d}`)).toBe(`docker.io/library/busybox:1@${d}`);
    expect(canonicalRef(`localhost:5000/x@${d}`)).toBe(`localhost:5000/x@${d}`);
    expect(repoDigestOf(`localhost:5000/x:v2@${d}`)).toBe(`localhost:5000/x@${d}`);
    expect(repoDigestOf(`docker.io/library/busybox:1@${d}`)).toBe(`busybox@${d}`);
    expect(repoDigestOf('busybox:1')).toBeUndefined();
    expect(() => normalizeRef('busybox@sha256:abc')).toThrow(/not valid/);
  });

  it('a service command replaces the entrypoint and drops the image cmd; args replace cmd', () => {
    const img = { entrypoint: ['/init'], cmd: ['serve'] };
    expect(processArgs({}, img)).toEqual(['/init', 'serve']);
    expect(processArgs({ args: ['x'] }, img)).toEqual(['/init', 'x']);
    expect(processArgs({ command: ['sh'] }, img)).toEqual(['sh']);
    expect(mergeEnv(['PATH=/bin', 'A=1'], ['A=2'])).toEqual(['PATH=/bin', 'A=2']);
  });

  it('the OCI config carries limits, mounts, user, network namespace and the tss cgroup', () => {
    const img = { id: 'sha256:x', references: [], layers: [], entrypoint: [], cmd: ['sh'], env: [], workdir: '', user: '' };
    const spec = ociConfig(
      {
        id: 'tss-a',
        image: 'x',
        user: '1000:1001',
        workdir: '/w',
        env: ['K=V'],
        mounts: [{ type: 'tmpfs', source: '', target: '/scratch' }],
        limits: { nanoCpus: 5e8, memoryBytes: 64 << 20, pids: 50 },
        netnsPath: '/run/netns/tss-n',
      },
      img,
      { rootfs: '/r', hostname: 'h', etcFiles: {}, volumesDir: '/v' },
      null,
    ) as {
      process: { user: unknown; cwd: string; env: string[] };
      linux: { cgroupsPath: string; resources: Record<string, unknown>; namespaces: { type: string; path?: string }[] };
      mounts: { destination: string }[];
    };
    expect(spec.process.user).toEqual({ uid: 1000, gid: 1001 });
    expect(spec.process.cwd).toBe('/w');
    expect(spec.process.env).toContain('K=V');
    expect(spec.linux.cgroupsPath).toBe('/tss/tss-a');
    expect(spec.linux.resources).toMatchObject({
      memory: { limit: 64 << 20 },
      cpu: { quota: 50_000, period: 100_000 },
      pids: { limit: 50 },
    });
    expect(spec.linux.namespaces).toContainEqual({ type: 'network', path: '/run/netns/tss-n' });
    expect(spec.mounts.map((m) => m.destination)).toContain('/scratch');
  });

  it('the OCI config: docker argv rules, default PATH, read-only root, bind and volume mounts, named users', () => {
    const img = {
      id: 'sha256:x',
      references: [],
      layers: [],
      entrypoint: ['/entry'],
      cmd: ['a'],
      env: ['X=1'],
      workdir: '/srv',
      user: 'app',
    };
    const rootfs = mkdtempSync('/tmp/tss-spec-');
    try {
      mkdirSync(join(rootfs, 'etc'));
      writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
      writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nstaff:x:50:\n');
      const spec = ociConfig(
        {
          id: 'tss-b',
          image: 'x',
          args: ['b'],
          readOnly: true,
          mounts: [
            { type: 'bind', source: '/host', target: '/in', readOnly: true },
            { type: 'volume', source: 'data', target: '/data' },
          ],
        },
        img,
        { rootfs, hostname: 'h', etcFiles: { hosts: '/c/hosts' }, volumesDir: '/v' },
      ) as {
        process: { args: string[]; user: unknown; cwd: string; env: string[]; capabilities: { bounding: string[] } };
        root: { readonly: boolean };
        linux: { namespaces: { type: string; path?: string }[] };
        mounts: { destination: string; source: string; options?: string[] }[];
      };
      expect(spec.process.args).toEqual(['/entry', 'b']);
      expect(spec.process.user).toEqual({ uid: 1000, gid: 1000 });
      expect(spec.process.cwd).toBe('/srv');
      expect(spec.process.env).toEqual(expect.arrayContaining(['X=1', 'HOSTNAME=h', expect.stringMatching(/^PATH=/)]));
      expect(spec.process.capabilities.bounding).toHaveLength(14);
      expect(spec.root.readonly).toBe(true);
      expect(spec.linux.namespaces).toContainEqual({ type: 'network' });
      expect(spec.mounts.find((m) => m.destination === '/in')).toMatchObject({ source: '/host', options: ['rbind', 'rprivate', 'ro'] });
      expect(spec.mounts.find((m) => m.destination === '/data')?.source).toBe('/v/data');
      expect(spec.mounts.find((m) => m.destination === '/etc/hosts')?.source).toBe('/c/hosts');
      expect(resolveUser('app:staff', rootfs)).toEqual({ uid: 1000, gid: 50 });
      expect(resolveUser('1000', rootfs)).toEqual({ uid: 1000, gid: 1000 });
      expect(() => resolveUser('ghost', rootfs)).toThrow(/not in the image's \/etc\/passwd/);
      expect(() =>
        ociConfig(
          { id: 'tss-c', image: 'x', command: [] },
          { ...img, entrypoint: [], cmd: [] },
          { rootfs, hostname: 'h', etcFiles: {}, volumesDir: '/v' },
        ),
      ).toThrow(/no command/);
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
    }
  });

  it('health: starting until a success, unhealthy after retries failures, start period forgiven', () => {
    expect(healthCommand(['CMD-SHELL', 'true'])).toEqual(['/bin/sh', '-c', 'true']);
    expect(healthCommand(['NONE'])).toBeNull();
    const h = new HealthState(2, 1000, 0);
    expect(h.record(false, 500)).toBe('starting');
    expect(h.record(false, 600)).toBe('starting');
    expect(h.record(true, 1500)).toBe('healthy');
    expect(h.record(false, 2000)).toBe('healthy');
    expect(h.record(false, 2500)).toBe('unhealthy');
  });
});
