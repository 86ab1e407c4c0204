// unpackLayer against crafted tars, as root on the real filesystem: each test
// unpacks into a fresh /tmp/tss-layer-*/layer with two canary trees it aims at
// (one beside the layer, one at /tmp/tss-canary-*), and after every test both
// canaries must be byte-for-byte, owner, mode, mtime and xattr unchanged.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unpackLayer, type LayerLimits, type UnpackResult } from '../../../agent/runtime/layer.js';
import { writeTar, type TarEntry } from '../../../agent/runtime/tar.js';
import { lgetxattr } from '../../../native/libc.js';
import { chunked } from '../../chunked.js';
import { isRoot } from '../../have.js';
import { hostileLayers, rawTar, type RawEntry } from '../../hostile-images.js';

const T = 1_600_000_000;
const OPAQUE = 'trusted.overlay.opaque';

/** Everything about a tree that an escape could change, the opaque xattr included, relative to `dir`. */
function treeState(dir: string): string {
  const out: string[] = [];
  const visit = (rel: string): void => {
    const p = rel ? join(dir, rel) : dir;
    const st = lstatSync(p);
    const xattr = st.isSymbolicLink() ? '' : (lgetxattr(p, OPAQUE)?.toString() ?? '-');
    let extra = '';
    if (st.isDirectory()) extra = '';
    else if (st.isSymbolicLink()) extra = readlinkSync(p);
    else if (st.isFile()) extra = createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16);
    else extra = `rdev=${st.rdev}`;
    out.push(
      `${rel || '.'} mode=${st.mode.toString(8)} ${st.uid}:${st.gid} mtime=${Math.round(st.mtimeMs / 1000)} nlink=${st.nlink} xattr=${xattr} ${extra}`,
    );
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) visit(rel ? `${rel}/${n}` : n);
  };
  visit('');
  return out.join('\n');
}

function fillCanary(dir: string): void {
  writeFileSync(join(dir, 'file1'), 'canary one\n');
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub/file2'), 'canary two\n');
  chmodSync(join(dir, 'sub/file2'), 0o640);
  symlinkSync('../file1', join(dir, 'sub/link'));
  utimesSync(join(dir, 'sub'), T, T);
  utimesSync(dir, T, T);
}

let base = '';
let layer = '';
/** Beside the layer directory: reached by "..". */
let beside = '';
/** An absolute host path: reached by absolute symlinks. */
let canary = '';
/** `canary` as a layer-relative path: where an absolute symlink to it lands inside the layer. */
let c = '';
let before = '';
const canaries = (): string => `${treeState(beside)}\n---\n${treeState(canary)}`;

beforeEach(() => {
  base = mkdtempSync('/tmp/tss-layer-');
  layer = join(base, 'layer');
  mkdirSync(layer);
  beside = join(base, 'canary');
  mkdirSync(beside);
  fillCanary(beside);
  canary = mkdtempSync('/tmp/tss-canary-');
  fillCanary(canary);
  c = canary.slice(1);
  before = canaries();
});

afterEach(() => {
  try {
    expect(canaries(), 'a canary outside the layer changed').toBe(before);
  } finally {
    rmSync(base, { recursive: true, force: true });
    rmSync(canary, { recursive: true, force: true });
  }
});

const unpack = (tar: Buffer, o: { limits?: LayerLimits; into?: string } = {}): Promise<UnpackResult> =>
  unpackLayer([tar], o.into ?? layer, o.limits);

async function refused(tar: Buffer, limits?: LayerLimits): Promise<string> {
  try {
    await unpack(tar, { limits });
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected the layer to be refused');
}

const inLayer = (rel: string): string => join(layer, rel);
const text = (rel: string): string => readFileSync(inLayer(rel), 'utf8');
const kind = (rel: string): string => {
  const st = lstatSync(inLayer(rel));
  return st.isSymbolicLink()
    ? 'symlink'
    : st.isDirectory()
      ? 'dir'
      : st.isFile()
        ? 'file'
        : st.isCharacterDevice()
          ? `char ${st.rdev}`
          : 'other';
};

describe.skipIf(!isRoot)('unpackLayer: a normal layer (root)', () => {
  const entries: (Partial<TarEntry> & { name: string; type: TarEntry['type'] })[] = [
    { name: 'etc', type: 'dir', mode: 0o755, mtime: T + 1 },
    { name: 'etc/passwd', type: 'file', mode: 0o644, mtime: T + 2, data: Buffer.from('root:x:0:0::/root:/bin/sh\n') },
    { name: 'etc/.wh.shadow', type: 'file', mtime: T },
    { name: 'home/u', type: 'dir', mode: 0o700, uid: 1000, gid: 1001, mtime: T + 3 },
    { name: 'home/u/notes', type: 'file', mode: 0o640, uid: 1000, gid: 1001, mtime: T + 4, data: Buffer.alloc(70_000, 5) },
    { name: 'bin', type: 'dir', mode: 0o755, mtime: T + 5 },
    { name: 'bin/su', type: 'file', mode: 0o4755, uid: 0, gid: 0, mtime: T + 6, data: Buffer.from('su') },
    { name: 'bin/wall', type: 'file', mode: 0o2755, uid: 5, gid: 6, mtime: T + 7, data: Buffer.from('wall') },
    { name: 'bin/sh', type: 'symlink', linkname: 'busybox', uid: 7, gid: 8, mtime: T + 8 },
    { name: 'bin/abs', type: 'symlink', linkname: '/etc/passwd', mtime: T + 9 },
    { name: 'bin/su2', type: 'hardlink', linkname: 'bin/su' },
    { name: 'opt', type: 'dir', mode: 0o751, mtime: T + 10 },
    { name: 'opt/.wh..wh..opq', type: 'file' },
    { name: 'opt/new', type: 'file', data: Buffer.from('n'), mtime: T + 11 },
  ];
  const tar = writeTar(entries);

  it('keeps files, dirs, symlinks, hard links, modes with setuid and setgid, owners, whiteouts, opaque dirs and mtimes', async () => {
    const r = await unpack(tar);
    expect(r).toMatchObject({ files: 12, skipped: 0, whiteouts: 1, opaqueDirs: 1 });
    expect(text('etc/passwd')).toBe('root:x:0:0::/root:/bin/sh\n');
    expect(readFileSync(inLayer('home/u/notes')).equals(Buffer.alloc(70_000, 5))).toBe(true);
    const su = lstatSync(inLayer('bin/su'));
    expect(su.mode & 0o7777).toBe(0o4755);
    const wall = lstatSync(inLayer('bin/wall'));
    expect([wall.mode & 0o7777, wall.uid, wall.gid]).toEqual([0o2755, 5, 6]);
    const home = lstatSync(inLayer('home/u'));
    expect([home.mode & 0o7777, home.uid, home.gid]).toEqual([0o700, 1000, 1001]);
    expect(lstatSync(inLayer('home/u/notes'))).toMatchObject({ uid: 1000, gid: 1001 });
    expect(lstatSync(inLayer('home')).mode & 0o7777).toBe(0o755); // made implicitly
    expect(readlinkSync(inLayer('bin/sh'))).toBe('busybox');
    expect(lstatSync(inLayer('bin/sh'))).toMatchObject({ uid: 7, gid: 8 });
    expect(readlinkSync(inLayer('bin/abs'))).toBe('/etc/passwd'); // targets are kept as written
    expect(lstatSync(inLayer('bin/su2')).ino).toBe(su.ino);
    expect(kind('etc/shadow')).toBe('char 0');
    expect(existsSync(inLayer('etc/.wh.shadow'))).toBe(false);
    expect(lgetxattr(inLayer('opt'), OPAQUE)?.toString()).toBe('y');
    expect(lstatSync(inLayer('opt')).mode & 0o7777).toBe(0o751);
    const mtime = (rel: string): number => Math.round(lstatSync(inLayer(rel)).mtimeMs / 1000);
    expect([mtime('etc'), mtime('etc/passwd'), mtime('home/u'), mtime('bin'), mtime('bin/sh'), mtime('opt'), mtime('opt/new')]).toEqual([
      T + 1,
      T + 2,
      T + 3,
      T + 5,
      T + 8,
      T + 10,
      T + 11,
    ]);
  });

  it('the digest and byte count cover every input byte, the padding after the end-of-archive blocks included', async () => {
    const padded = Buffer.concat([tar, Buffer.alloc(10_240 - (tar.length % 10_240))]);
    const r = await unpack(padded);
    expect(r.bytes).toBe(padded.length);
    expect(r.digest).toBe(`sha256:${createHash('sha256').update(padded).digest('hex')}`);
    expect(r.digest).not.toBe(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
  });

  it('input in odd-sized chunks (1, 511, 513, 4099 bytes) unpacks to the same tree with the same digest', async () => {
    // Every directory named, so no mtime in the tree is the clock's.
    const tar = writeTar([{ name: 'home', type: 'dir', mtime: T }, ...entries]);
    await unpack(tar);
    // The layer root's own line goes: its mtime is the test's, as the tar has no "./" entry.
    const below = (dir: string): string => treeState(dir).split('\n').slice(1).join('\n');
    const want = below(layer);
    const wantDigest = (await unpack(tar, { into: mkdirSync(join(base, 'again'), { recursive: true })! })).digest;
    for (const sizes of [[1], [511], [513], [4099], [512, 1, 1023]]) {
      const dir = join(base, `chunks-${sizes.join('-')}`);
      mkdirSync(dir);
      const r = await unpackLayer(chunked(tar, sizes), dir);
      expect(r.digest).toBe(wantDigest);
      expect(below(dir)).toBe(want);
    }
  });

  it('stops as soon as the input passes maxBytes, without reading the rest', async () => {
    const big = writeTar([{ name: 'bomb', type: 'file', data: Buffer.alloc(8 << 20) }]);
    let pulled = 0;
    async function* src(): AsyncGenerator<Buffer> {
      for await (const chunk of chunked(big, [65_536])) {
        pulled += chunk.length;
        yield chunk;
      }
    }
    await expect(unpackLayer(src(), layer, { maxBytes: 1 << 20 })).rejects.toThrow(
      /^layer is over the limit of 1048576 uncompressed bytes \(passed it at 1114112\)/,
    );
    expect(pulled).toBeLessThanOrEqual((1 << 20) + 65_536);
    // The padding counts too: a digest covers it, so a cap must.
    const msg = await refused(Buffer.concat([tar, Buffer.alloc(1 << 20)]), { maxBytes: tar.length + 512 });
    expect(msg).toMatch(/over the limit of \d+ uncompressed bytes/);
  });

  it('more entries than maxEntries is refused with the limit', async () => {
    const many = writeTar(Array.from({ length: 10 }, (_, i) => ({ name: `f${i}`, type: 'file' as const })));
    expect(await refused(many, { maxEntries: 3 })).toMatch(/tar archive has more than 3 entries/);
    expect((await unpack(many, { limits: { maxEntries: 10 }, into: mkdirSync(join(base, 'ten'), { recursive: true })! })).files).toBe(10);
  });
});

describe.skipIf(!isRoot)('unpackLayer: the hostile corpus (root)', () => {
  // What each layer of test/hostile-images.ts must come to; the canaries are checked after each.
  const outcomes: Record<string, () => Promise<void>> = {
    'dir-then-symlink': async () => {
      expect(text(`${c}/pwned`)).toBe('escaped');
      expect(text(`${c}/file1`)).toBe('overwritten');
      expect(kind('x')).toBe('symlink');
    },
    'hardlink-through-symlink': async () => {},
    'dotdot-below-missing': async () => {},
    'absolute-and-dotdot': async () => expect(text(`${c}/abs`)).toBe('absolute'),
    whiteouts: async () => expect(kind(`${c}/file1`)).toBe('char 0'),
    'opaque-through-symlink': async () => expect(lgetxattr(inLayer(c), OPAQUE)?.toString()).toBe('y'),
    'late-symlink-over-whiteout-parent': async () => expect(kind('p')).toBe('symlink'),
    devices: async () => expect(readdirSync(layer)).toEqual([]),
    duplicates: async () => {},
    'long-names': async () => {},
    'bad-diff-id': async () => expect(text('f')).toBe('x'),
  };
  const errors: Record<string, RegExp> = {
    'hardlink-through-symlink': /hard link to "l\/file1", which is not in this layer/,
    'dotdot-below-missing': /"\.\." after "nonexist", which does not exist/,
    'absolute-and-dotdot': /climbs out of the layer with "\.\."/,
    whiteouts: /is a whiteout of "\.", which names no file/,
    duplicates: /"dup" is a file in this layer, so nothing can be put under it/,
    'long-names': /its name is 5001 bytes, over the limit of 4096/,
  };
  it('every layer of the corpus has an expected outcome here', () => {
    expect(
      hostileLayers(canary)
        .map((l) => l.name)
        .sort(),
    ).toEqual(Object.keys(outcomes).sort());
  });

  for (const name of Object.keys(outcomes)) {
    it(`${name}: stays inside the layer${errors[name] ? ', and is refused' : ''}`, async () => {
      const h = hostileLayers(canary).find((l) => l.name === name);
      expect(h, `corpus entry ${name}`).toBeDefined();
      if (errors[name]) expect(await refused(h!.layer)).toMatch(errors[name]!);
      else await unpack(h!.layer);
      await outcomes[name]!();
    });
  }
});

describe.skipIf(!isRoot)('unpackLayer: crafted tars (root)', () => {
  const tar = (entries: RawEntry[]): Buffer => rawTar(entries);

  it('a directory replaced by a relative symlink out of the layer is written through only inside it', async () => {
    await unpack(
      tar([
        { name: 'x/', flag: '5' },
        { name: 'x/y/', flag: '5' },
        { name: 'x', flag: '2', linkname: '../canary' },
        { name: 'x/file1', flag: '0', data: 'through a relative link' },
        { name: 'x/sub/file2', flag: '0', data: 'deeper' },
      ]),
    );
    expect(text('canary/file1')).toBe('through a relative link');
    expect(text('canary/sub/file2')).toBe('deeper');
    expect(readlinkSync(inLayer('x'))).toBe('../canary');
  });

  it('a symlink to / makes later entries land at the layer root', async () => {
    // Aimed at the canary, never at a real host file: if confinement broke, only the canary would be hit.
    await unpack(
      tar([
        { name: 'root', flag: '2', linkname: '/' },
        { name: `root/${c}/sub/file2`, flag: '0', data: 'layer copy' },
        { name: 'up', flag: '2', linkname: '../../../../../..' },
        { name: `up/${c}/file1`, flag: '0', data: 'layer copy' },
      ]),
    );
    expect(text(`${c}/sub/file2`)).toBe('layer copy');
    expect(text(`${c}/file1`)).toBe('layer copy');
  });

  it("a hard link through a symlink resolves inside the layer and links the layer's file", async () => {
    await unpack(
      tar([
        { name: `${c}/file1`, flag: '0', data: 'layer file' },
        { name: 'l', flag: '2', linkname: canary },
        { name: 'h', flag: '1', linkname: 'l/file1' },
        { name: 'rel', flag: '2', linkname: `../../${c}` },
        { name: 'h2', flag: '1', linkname: 'rel/file1' },
      ]),
    );
    const ino = lstatSync(inLayer(`${c}/file1`)).ino;
    expect(lstatSync(inLayer('h')).ino).toBe(ino);
    expect(lstatSync(inLayer('h2')).ino).toBe(ino);
    expect(lstatSync(inLayer('h')).nlink).toBe(3);
  });

  it('a hard link whose target climbs out with .., or that names a host path, is refused', async () => {
    expect(await refused(tar([{ name: 'h', flag: '1', linkname: `../canary/file1` }]))).toMatch(
      /link target "\.\.\/canary\/file1" climbs out of the layer/,
    );
    expect(await refused(tar([{ name: 'h', flag: '1', linkname: `${canary}/file1` }]))).toMatch(/which is not in this layer/);
  });

  it('a hard link to a directory is refused', async () => {
    expect(
      await refused(
        tar([
          { name: 'd/', flag: '5' },
          { name: 'h', flag: '1', linkname: 'd' },
        ]),
      ),
    ).toMatch(/hard link to the directory "d"/);
    expect(
      await refused(
        tar([
          { name: `${c}/sub/`, flag: '5' },
          { name: 's', flag: '2', linkname: '/' },
          { name: 'h', flag: '1', linkname: `s/${c}/sub` },
        ]),
      ),
    ).toMatch(/hard link to the directory "s\/tmp\/tss-canary-\w+\/sub"/);
    // A link to the symlink itself is a link to the symlink, as link(2) makes it.
    await unpack(
      tar([
        { name: 's', flag: '2', linkname: canary },
        { name: 'h', flag: '1', linkname: 's' },
      ]),
    );
    expect(kind('h')).toBe('symlink');
    expect(lstatSync(inLayer('h')).ino).toBe(lstatSync(inLayer('s')).ino);
  });

  it('absolute names land inside the layer; .. that stays inside is resolved, .. that climbs out is refused', async () => {
    await unpack(
      tar([
        { name: `/${c}/abs`, flag: '0', data: 'abs' },
        { name: 'a/../b', flag: '0', data: 'b' },
        { name: './c/./d/../e', flag: '0', data: 'e' },
      ]),
    );
    expect(text(`${c}/abs`)).toBe('abs');
    expect(text('b')).toBe('b');
    expect(text('c/e')).toBe('e');
    expect(await refused(tar([{ name: '../canary/file1', flag: '0', data: 'x' }]))).toMatch(
      /layer entry name "\.\.\/canary\/file1" climbs out of the layer/,
    );
    expect(await refused(tar([{ name: 'a/../../canary/x', flag: '5' }]))).toMatch(/climbs out/);
  });

  it('whiteouts naming "", "." or ".." are refused; one through a symlink lands inside the layer', async () => {
    for (const name of ['d/.wh.', '.wh..', 'd/.wh...']) {
      expect(await refused(tar([{ name, flag: '0' }]))).toMatch(/is a whiteout of "\.{0,2}", which names no file/);
    }
    await unpack(
      tar([
        { name: 'w', flag: '2', linkname: '../canary' },
        { name: 'w/.wh.file1', flag: '0' },
        { name: 'w/sub/.wh.file2', flag: '0' },
      ]),
    );
    expect(kind('canary/file1')).toBe('char 0');
    expect(kind('canary/sub/file2')).toBe('char 0');
  });

  it('a whiteout replaces whatever was there, a directory or a symlink to the host, without following it', async () => {
    const r = await unpack(
      tar([
        { name: 'd/', flag: '5' },
        { name: 'd/keep', flag: '0', data: 'k' },
        { name: 'host', flag: '2', linkname: canary },
        { name: '.wh.d', flag: '0' },
        { name: '.wh.host', flag: '0' },
      ]),
    );
    expect(r.whiteouts).toBe(2);
    expect(kind('d')).toBe('char 0');
    expect(kind('host')).toBe('char 0');
  });

  it('opaque markers are set as they come, on the real directory, never on a host directory behind a symlink', async () => {
    const r = await unpack(
      tar([
        { name: 'o/', flag: '5' },
        { name: 'o/.wh..wh..opq', flag: '0' },
        { name: 'up', flag: '2', linkname: '../canary' },
        { name: 'up/sub/.wh..wh..opq', flag: '0' },
        { name: 'late/', flag: '5' },
        { name: 'late/.wh..wh..opq', flag: '0' },
        { name: 'late', flag: '2', linkname: canary },
        { name: 'sub2/.wh..wh.plnk', flag: '0' },
      ]),
    );
    expect(r).toMatchObject({ opaqueDirs: 3, skipped: 1 });
    expect(lgetxattr(inLayer('o'), OPAQUE)?.toString()).toBe('y');
    expect(lgetxattr(inLayer('canary/sub'), OPAQUE)?.toString()).toBe('y');
    expect(kind('late')).toBe('symlink');
  });

  it('device nodes, FIFOs and unknown entry types are skipped and counted, and create nothing', async () => {
    const r = await unpack(
      tar([
        { name: 'dev/', flag: '5' },
        { name: 'dev/mem', flag: '3', devmajor: 1, devminor: 1, mode: 0o666 },
        { name: 'dev/sda', flag: '4', devmajor: 8, devminor: 0, mode: 0o666 },
        { name: 'dev/fifo', flag: '6' },
        { name: 'l', flag: '2', linkname: canary },
        { name: 'l/fifo', flag: '6' },
        { name: 'l/sock', flag: 'Z' }, // tar has no socket type: any unknown type is left out
      ]),
    );
    expect(r).toMatchObject({ files: 2, skipped: 4 });
    expect(readdirSync(inLayer('dev'))).toEqual([]);
    expect(readdirSync(layer).sort()).toEqual(['dev', 'l']);
  });

  it('duplicate entries: the later wins; a directory over a directory keeps its contents', async () => {
    await unpack(
      tar([
        { name: 'f', flag: '0', data: 'one' },
        { name: 'f', flag: '0', data: 'two' },
        { name: 'd/', flag: '5', mode: 0o700 },
        { name: 'd/kept', flag: '0', data: 'kept' },
        { name: 'd/', flag: '5', mode: 0o750 },
        { name: 's', flag: '2', linkname: canary },
        { name: 's/', flag: '5' },
        { name: 's/new', flag: '0', data: 'in a real dir' },
        { name: 'e/', flag: '5' },
        { name: 'e/x', flag: '0', data: 'x' },
        { name: 'e', flag: '0', data: 'file over a dir' },
        { name: 'h', flag: '0', data: 'h' },
        { name: 'h', flag: '1', linkname: 'f' },
      ]),
    );
    expect(text('f')).toBe('two');
    expect(text('d/kept')).toBe('kept');
    expect(lstatSync(inLayer('d')).mode & 0o7777).toBe(0o750);
    expect(kind('s')).toBe('dir');
    expect(text('s/new')).toBe('in a real dir');
    expect(text('e')).toBe('file over a dir');
    expect(lstatSync(inLayer('h')).ino).toBe(lstatSync(inLayer('f')).ino);
  });

  it('a file whose name is an existing symlink to a host file replaces the symlink, not the host file', async () => {
    await unpack(
      tar([
        { name: 'pw', flag: '2', linkname: `${canary}/file1` },
        { name: 'pw', flag: '0', data: 'replaced', mode: 0o4755 },
        { name: 'rel', flag: '2', linkname: '../canary/file1' },
        { name: 'rel', flag: '0', data: 'replaced too' },
        { name: 'dd', flag: '2', linkname: '../canary' },
        { name: 'dd', flag: '5', mode: 0o700 },
      ]),
    );
    expect(kind('pw')).toBe('file');
    expect(text('pw')).toBe('replaced');
    expect(lstatSync(inLayer('pw')).mode & 0o7777).toBe(0o4755);
    expect(text('rel')).toBe('replaced too');
    expect(kind('dd')).toBe('dir');
  });

  it('directory mtimes at the end skip a directory since replaced by a symlink to the host', async () => {
    await unpack(
      tar([
        { name: 'y/', flag: '5' },
        { name: 'y/z/', flag: '5' },
        { name: 'y', flag: '2', linkname: '../canary' },
        { name: 'q/', flag: '5' },
      ]),
    );
    expect(kind('y')).toBe('symlink');
    expect(Math.round(statSync(inLayer('q')).mtimeMs / 1000)).toBe(1_700_000_000);
  });

  it('a symlink loop on the way is refused with ELOOP', async () => {
    expect(
      await refused(
        tar([
          { name: 'a', flag: '2', linkname: 'b' },
          { name: 'b', flag: '2', linkname: '/a' },
          { name: 'a/x', flag: '0', data: 'x' },
        ]),
      ),
    ).toMatch(/layer entry "a\/x": "a" in .*: more than 40 symlinks on the way \(a symlink loop\)/);
  });

  it('very long names are refused by the reader: over 4096 bytes, or a component over 255', async () => {
    expect(await refused(tar([{ name: 'x', flag: '0', pax: { path: `${'d/'.repeat(2100)}f` } }]))).toMatch(
      /name is 4201 bytes, over the limit of 4096/,
    );
    expect(await refused(tar([{ name: 'x', flag: '0', pax: { path: `a/${'n'.repeat(256)}` } }]))).toMatch(
      /a component of its name is 256 bytes, over the limit of 255/,
    );
    const name = Buffer.from(`${'g/'.repeat(3000)}\0`);
    const gnu = tar([
      { name: '././@LongLink', flag: 'L', data: name },
      { name: 'x', flag: '0' },
    ]);
    expect(await refused(gnu)).toMatch(/name is 6000 bytes, over the limit of 4096/);
  });

  it('an entry naming the layer root itself must be a directory', async () => {
    expect(await refused(tar([{ name: './', flag: '2', linkname: canary }]))).toMatch(/names the layer's root but is a symlink/);
    await unpack(tar([{ name: './', flag: '5' }]));
    expect(Math.round(statSync(layer).mtimeMs / 1000)).toBe(1_700_000_000);
  });
});

describe.skipIf(!isRoot)('unpackLayer: the path-resolution budget (root)', () => {
  // `s -> x/../x/../…` (4,000 bytes) costs 800 lstat calls per hop and lands back at the root, so
  // every `s/` in a name is another full hop: an entry under 39 of them costs about 31,000 steps.
  const chainLayer = (files: number): Buffer =>
    writeTar([
      { name: 'x', type: 'dir', mode: 0o755 },
      { name: 's', type: 'symlink', linkname: 'x/../'.repeat(800) },
      ...Array.from({ length: files }, (_, i) => ({ name: `${'s/'.repeat(39)}f${i}`, type: 'file' as const, data: Buffer.from('f') })),
    ]);

  it('a layer of long symlink chains is stopped early with the budget error (unbounded, 1,000 entries would take about 31 million lstat calls)', async () => {
    const msg = await refused(chainLayer(1000));
    expect(msg).toMatch(
      /^layer entry "(s\/){39}f\d+": the layer used up its path-resolution budget of 250000 plus 32 per entry \(\d+ lstat\/readlink steps after \d+ entries\): it is built of very deep paths or long symlink chains/,
    );
    // It stopped within the first few entries: every file that got through lands at the layer's root.
    expect(readdirSync(layer).filter((n) => n.startsWith('f')).length).toBeLessThan(10);
  }, 60_000);

  it('an ordinary layer stays well inside a budget that refuses the chains', async () => {
    const resolveBudget = { base: 1000, perEntry: 8 };
    const deepDirs = ['a', 'a/b', 'a/b/c', 'a/b/c/d'].map((name) => ({ name, type: 'dir' as const, mode: 0o755 }));
    const files = Array.from({ length: 300 }, (_, i) => ({ name: `a/b/c/d/f${i}`, type: 'file' as const, data: Buffer.from('f') }));
    const r = await unpack(writeTar([...deepDirs, ...files]), { limits: { resolveBudget } });
    expect(r.files).toBe(304);
    expect(await refused(chainLayer(3), { resolveBudget })).toMatch(
      /used up its path-resolution budget of 1000 plus 8 per entry \(1024 lstat\/readlink steps after 3 entries\)/,
    );
  });
});
