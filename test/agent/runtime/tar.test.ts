// The tar reader and writer: round trips, long names both ways (pax and GNU),
// and agreement with GNU tar in both directions.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTar, writeTar, type TarEntry } from '../../../agent/runtime/tar.js';

const long = `${'deep/'.repeat(30)}file-with-a-long-name.txt`;
const entries = [
  { name: 'etc', type: 'dir', mode: 0o755, mtime: 1_700_000_000 },
  { name: 'etc/passwd', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_001, data: Buffer.from('root:x:0:0::/root:/bin/sh\n') },
  { name: 'bin/su', type: 'file', mode: 0o4755, uid: 1, gid: 2, mtime: 1_700_000_002, data: Buffer.alloc(1000, 7) },
  { name: 'bin/sh', type: 'symlink', mode: 0o777, linkname: 'busybox' },
  { name: 'bin/sh2', type: 'hardlink', linkname: 'bin/su' },
  { name: long, type: 'file', mode: 0o600, data: Buffer.from('long') },
  { name: 'link-long', type: 'symlink', linkname: `/${long}` },
] as const satisfies readonly (Partial<TarEntry> & { name: string; type: TarEntry['type'] })[];

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('tar', () => {
  for (const longNames of ['pax', 'gnu'] as const) {
    it(`reads back what it writes (long names as ${longNames})`, () => {
      const got = [...readTar(writeTar(entries, { longNames }))];
      expect(got.map((e) => [e.name, e.type, e.linkname])).toEqual(entries.map((e) => [e.name, e.type, 'linkname' in e ? e.linkname : '']));
      expect(got[1]!.data.toString()).toBe('root:x:0:0::/root:/bin/sh\n');
      expect(got[2]).toMatchObject({ mode: 0o4755, uid: 1, gid: 2, mtime: 1_700_000_002 });
      expect(got[2]!.data.equals(Buffer.alloc(1000, 7))).toBe(true);
      expect(got[5]!.data.toString()).toBe('long');
    });
  }

  it('GNU tar reads its archives, and it reads GNU tar archives with long names and ./ prefixes', () => {
    const d = mkdtempSync('/tmp/tss-tar-');
    dirs.push(d);
    writeFileSync(join(d, 'ours.tar'), writeTar(entries));
    const listed = execFileSync('tar', ['-tf', join(d, 'ours.tar')], { encoding: 'utf8' }).trim().split('\n');
    expect(listed).toEqual(['etc/', 'etc/passwd', 'bin/su', 'bin/sh', 'bin/sh2', long, 'link-long']);
    const src = join(d, 'src');
    mkdirSync(join(src, long.split('/').slice(0, -1).join('/')), { recursive: true });
    writeFileSync(join(src, long), 'x'.repeat(700));
    symlinkSync('target', join(src, 'sym'));
    for (const format of ['gnu', 'posix']) {
      execFileSync('tar', [`--format=${format}`, '-C', src, '-cf', join(d, `${format}.tar`), '.']);
      const got = [...readTar(readFileSync(join(d, `${format}.tar`)))];
      const f = got.find((e) => e.name === long);
      expect(f?.data.toString()).toBe('x'.repeat(700));
      expect(got.find((e) => e.name === 'sym')).toMatchObject({ type: 'symlink', linkname: 'target' });
      expect(got[0]).toMatchObject({ name: '', type: 'dir' }); // "./"
    }
  });

  it('a corrupt header is an error, not garbage', () => {
    const t = writeTar([{ name: 'a', type: 'file', data: Buffer.from('x') }]);
    t[10] = t[10]! ^ 0xff;
    expect(() => [...readTar(t)]).toThrow(/bad checksum/);
  });
});
