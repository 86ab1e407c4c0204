// The tar reader and writer: round trips, long names both ways (pax and GNU),
// agreement with GNU tar in both directions, and the streaming reader on
// input cut at odd places, over its limits, and malformed on purpose.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTar, readTarStream, TarError, writeTar, type TarEntry, type TarLimits } from '../../../agent/runtime/tar.js';
import { chunked } from '../../chunked.js';
import { rawHeader, rawTar, withChecksum } from '../../hostile-images.js';

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
    const listed = execFileSync('tar', ['-tf', join(d, 'ours.tar')], { encoding: 'utf8' })
      .trim()
      .split('\n');
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

/** Every entry of a streamed archive with its body read whole. */
async function streamAll(input: AsyncIterable<Buffer> | Iterable<Buffer>, limits?: TarLimits): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  for await (const { body, size: _size, ...e } of readTarStream(input, limits)) {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c);
    out.push({ ...e, data: Buffer.concat(parts) });
  }
  return out;
}

async function streamError(input: Buffer, limits?: TarLimits): Promise<Error> {
  try {
    await streamAll([input], limits);
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the archive to be refused');
}

/** A header with a field overwritten after the checksum was computed, and the checksum fixed up. */
function patched(h: Buffer, off: number, bytes: Buffer): Buffer {
  const out = Buffer.from(h);
  bytes.copy(out, off);
  return withChecksum(out);
}

describe('streaming tar reader', () => {
  const archive = writeTar(entries, { longNames: 'pax' });
  const gnu = writeTar(entries, { longNames: 'gnu' });

  for (const sizes of [[1], [511], [513], [512], [7, 1024, 3], [archive.length]]) {
    it(`reads the same entries as readTar with input cut into chunks of ${sizes.join(', ')} bytes`, async () => {
      for (const a of [archive, gnu]) {
        const got = await streamAll(chunked(a, sizes));
        expect(got).toEqual([...readTar(a)]);
      }
    });
  }

  it('hands a body out in the chunks it arrived in, never joined into one buffer', async () => {
    const big = Buffer.alloc(3 << 20, 9);
    const a = writeTar([{ name: 'big', type: 'file', data: big }]);
    let largest = 0;
    let total = 0;
    for await (const e of readTarStream(chunked(a, [65536]))) {
      expect(e.size).toBe(big.length);
      for await (const c of e.body) {
        largest = Math.max(largest, c.length);
        total += c.length;
      }
    }
    expect(total).toBe(big.length);
    expect(largest).toBeLessThanOrEqual(65536);
  });

  it('skips a body the consumer does not read, and reads the input to its end after the end-of-archive blocks', async () => {
    const a = Buffer.concat([
      writeTar([
        { name: 'a', type: 'file', data: Buffer.alloc(1500, 1) },
        { name: 'b', type: 'file', data: Buffer.from('bee') },
      ]),
      Buffer.alloc(8192),
    ]);
    let ended = false;
    async function* src(): AsyncGenerator<Buffer> {
      yield* chunked(a, [100]);
      ended = true;
    }
    const names: string[] = [];
    let bData = '';
    for await (const e of readTarStream(src())) {
      names.push(e.name);
      if (e.name === 'b') for await (const c of e.body) bData += c.toString();
    }
    expect(names).toEqual(['a', 'b']);
    expect(bData).toBe('bee');
    expect(ended).toBe(true);
  });

  it("a body read after the next entry was requested is an error, not the next entry's bytes", async () => {
    const a = writeTar([
      { name: 'a', type: 'file', data: Buffer.from('aaa') },
      { name: 'b', type: 'file', data: Buffer.from('bbb') },
    ]);
    const it = readTarStream([a]);
    const first = (await it.next()).value!;
    await it.next();
    await expect(
      (async () => {
        for await (const _ of first.body) {
          /* reading late */
        }
      })(),
    ).rejects.toThrow(/read after the next entry/);
    await it.return(undefined);
  });

  it('a bad checksum is refused with the byte offset', async () => {
    const t = writeTar([
      { name: 'a', type: 'file', data: Buffer.from('x') },
      { name: 'b', type: 'file' },
    ]);
    t[1024 + 10] = t[1024 + 10]! ^ 0xff;
    const err = await streamError(t);
    expect(err).toBeInstanceOf(TarError);
    expect(err.message).toMatch(/tar header at byte 1024 has a bad checksum/);
  });

  it('a truncated archive is refused, whether cut in a body, in padding or in a header', async () => {
    const t = writeTar([
      { name: 'a', type: 'file', data: Buffer.alloc(700, 1) },
      { name: 'b', type: 'file' },
    ]);
    expect((await streamError(t.subarray(0, 512 + 300))).message).toBe(
      'tar entry "a" at byte 0 is cut short: the archive ends after 300 of its 700 bytes',
    );
    expect((await streamError(t.subarray(0, 512 + 800))).message).toMatch(
      /"a" at byte 0 is cut short: the archive ends after 700 of its 700 bytes/,
    );
    expect((await streamError(t.subarray(0, 1536 + 100))).message).toMatch(/ends inside a header at byte 1536/);
    expect(() => [...readTar(t.subarray(0, 512 + 300))]).toThrow(TarError);
  });

  it('a negative or non-numeric size is refused, from the header or from pax', async () => {
    const h = rawHeader('neg', '0', 0);
    const negative = patched(h, 124, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]));
    expect((await streamError(Buffer.concat([negative, Buffer.alloc(1024)]))).message).toMatch(/"neg" at byte 0 has an invalid size/);
    const garbage = patched(h, 124, Buffer.from('9x9x9x9x9x9\0'));
    expect((await streamError(Buffer.concat([garbage, Buffer.alloc(1024)]))).message).toMatch(/"neg" at byte 0 has an invalid size/);
    const paxNaN = rawTar([{ name: 'p', flag: '0', pax: { size: 'lots' } }]);
    expect((await streamError(paxNaN)).message).toMatch(/"p" at byte 1024 has an invalid size \(lots\)/);
    const paxNeg = rawTar([{ name: 'p', flag: '0', pax: { size: '-5' } }]);
    expect((await streamError(paxNeg)).message).toMatch(/invalid size \(-5\)/);
  });

  it('a base-256 size reads as its value', async () => {
    const body = Buffer.alloc(600, 3);
    const h = patched(rawHeader('b256', '0', 0), 124, Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 600 >> 8, 600 & 0xff]));
    const got = await streamAll([Buffer.concat([h, body, Buffer.alloc(424), Buffer.alloc(1024)])]);
    expect(got[0]!.data.equals(body)).toBe(true);
  });

  it('more entries than maxEntries is refused, naming the limit', async () => {
    const t = writeTar(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, type: 'file' as const })));
    expect(await streamAll([t], { maxEntries: 5 })).toHaveLength(5);
    const err = await streamError(t, { maxEntries: 4 });
    expect(err.message).toBe('tar archive has more than 4 entries (limit reached at entry "f4", byte 2048)');
  });

  it('a name over maxNameBytes, or with a component over 255 bytes, is refused with its size', async () => {
    const long = `${'d/'.repeat(2100)}f`; // 4201 bytes, components short
    const err = await streamError(rawTar([{ name: 'x', flag: '0', pax: { path: long } }]));
    expect(err.message).toMatch(/its name is 4201 bytes, over the limit of 4096/);
    expect((await streamError(rawTar([{ name: 'x', flag: '0', pax: { path: 'a/b' } }]), { maxNameBytes: 2 })).message).toMatch(
      /name is 3 bytes, over the limit of 2/,
    );
    const wide = `ok/${'c'.repeat(256)}`;
    expect((await streamError(rawTar([{ name: 'x', flag: '0', pax: { path: wide } }]))).message).toMatch(
      /a component of its name is 256 bytes, over the limit of 255/,
    );
    expect(await streamAll([rawTar([{ name: 'x', flag: '0', pax: { path: `ok/${'c'.repeat(255)}` } }])])).toHaveLength(1);
    const farLink = rawTar([{ name: 'h', flag: '1', pax: { linkpath: 'l'.repeat(300) } }]);
    expect((await streamError(farLink)).message).toMatch(/a component of its link target is 300 bytes/);
    const longSymlink = rawTar([{ name: 's', flag: '2', pax: { linkpath: 'l'.repeat(5000) } }]);
    expect((await streamError(longSymlink)).message).toMatch(/its link target is 5000 bytes, over the limit of 4096/);
  });

  it('pax headers and GNU long-name records over maxPaxBytes are refused before they are read', async () => {
    const bigPax = rawTar([{ name: 'x', flag: '0', pax: { comment: 'z'.repeat(5000) } }]);
    expect((await streamError(bigPax, { maxPaxBytes: 4096 })).message).toMatch(
      /tar pax record at byte 0 is 50\d\d bytes, over the limit of 4096/,
    );
    const name = Buffer.from(`${'n'.repeat(3000)}\0`);
    const gnuLong = rawTar([
      { name: '././@LongLink', flag: 'L', data: name },
      { name: 'x', flag: '0' },
    ]);
    expect((await streamError(gnuLong, { maxPaxBytes: 2048 })).message).toMatch(
      /tar long-name record at byte 0 is 3001 bytes, over the limit of 2048/,
    );
    // A stream of global headers, each under the cap, may not add up past it either.
    const g = Buffer.from('1009 comment=' + 'g'.repeat(995) + '\n');
    const globals = rawTar(Array.from({ length: 5 }, () => ({ name: 'g', flag: 'g', data: g })));
    expect((await streamError(globals, { maxPaxBytes: 4096 })).message).toMatch(
      /global pax headers at byte \d+ add up to 5045 bytes, over the limit of 4096/,
    );
  });

  it('a malformed pax record is refused', async () => {
    const bad = Buffer.from('999 path=x\n');
    const t = rawTar([
      { name: 'p', flag: 'x', data: bad },
      { name: 'x', flag: '0' },
    ]);
    expect((await streamError(t)).message).toMatch(/tar pax header at byte 0 has a malformed pax record/);
  });
});
