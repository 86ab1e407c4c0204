// Secrets and configs in the OCI config, without a kernel: each file a
// read-only bind mount from the container's tmpfs, after the user's mounts
// (a tmpfs at /run must not hide /run/secrets/<name>); the node's own checks
// of a file's target, owner and mode. Mounting for real: files.kernel.test.ts
// under test/agent/worker.
import { describe, expect, it } from 'vitest';
import { fileError } from '../../../agent/runtime/files.js';
import { ociConfig } from '../../../agent/runtime/index.js';

const img = { id: 'sha256:x', references: [], layers: [], entrypoint: [], cmd: ['sh'], env: [], workdir: '', user: '' };
type Mount = { destination: string; type: string; source: string; options?: string[] };

describe('secrets and configs in the OCI config', () => {
  it('binds each file read-only (nosuid, nodev, noexec) at its target, after the user mounts', () => {
    const s = ociConfig(
      { id: 'tss-f', image: 'x', mounts: [{ type: 'tmpfs', source: '', target: '/run' }] },
      img,
      {
        rootfs: '/r',
        hostname: 'h',
        etcFiles: {},
        volumesDir: '/v',
        files: [
          { source: '/state/c/files/0', target: '/run/secrets/db_pw' },
          { source: '/state/c/files/1', target: '/etc/app.conf' },
        ],
      },
      null,
    ) as unknown as { mounts: Mount[] };
    const dest = s.mounts.map((m) => m.destination);
    expect(dest.indexOf('/run')).toBeLessThan(dest.indexOf('/run/secrets/db_pw'));
    expect(s.mounts.filter((m) => m.source.startsWith('/state/'))).toEqual([
      {
        destination: '/run/secrets/db_pw',
        type: 'bind',
        source: '/state/c/files/0',
        options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev', 'noexec'],
      },
      {
        destination: '/etc/app.conf',
        type: 'bind',
        source: '/state/c/files/1',
        options: ['rbind', 'rprivate', 'ro', 'nosuid', 'nodev', 'noexec'],
      },
    ]);
  });

  it('refuses a file whose target is relative or climbs, or whose owner or mode is out of range, without its value in the message', () => {
    const f = { target: '/run/secrets/x', data: new Uint8Array(Buffer.from('tss-value')), uid: 0, gid: 0, mode: 0o444 };
    expect(fileError(f, 0)).toBeUndefined();
    expect(fileError({ ...f, target: 'run/x' }, 1)).toMatch(/^files\[1\]: target "run\/x" must be an absolute path/);
    expect(fileError({ ...f, target: '/run/../etc/shadow' }, 0)).toMatch(/without "\.\."/);
    expect(fileError({ ...f, uid: -1 }, 0)).toMatch(/uid -1 is not a numeric id/);
    expect(fileError({ ...f, mode: 0o4755 }, 0)).toMatch(/mode 2541 is above 0777/);
    for (const bad of [
      { ...f, target: 'x' },
      { ...f, uid: 1.5 },
      { ...f, mode: 0o1000 },
    ])
      expect(fileError(bad, 0)).not.toContain('tss-value');
  });
});
