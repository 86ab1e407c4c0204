// Hostile images, built by the tests themselves: raw tar headers (so a name
// can start with `/` or hold `..`, which writeTar would clean), and `docker
// save` archives that put a crafted layer over the busybox base layer. Each
// layer aims at a canary directory on the host; none may touch it.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { readTar, writeTar } from '../agent/runtime/tar.js';
import { buildBusyboxImage } from '../deploy/images/busybox.js';

const BLOCK = 512;
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

export interface RawEntry {
  name: string;
  /** tar type flag: '0' file, '1' hard link, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo. */
  flag: string;
  data?: Buffer | string;
  linkname?: string;
  mode?: number;
  devmajor?: number;
  devminor?: number;
  /** Extra pax records (`path` for a long name). */
  pax?: Record<string, string>;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/** One ustar header, written byte by byte: the name goes in as given (truncated to 100 bytes). */
export function rawHeader(name: string, flag: string, size: number, o: Omit<RawEntry, 'name' | 'flag' | 'data'> = {}): Buffer {
  const h = Buffer.alloc(BLOCK);
  const put = (s: string, off: number, len: number): void => void h.write(s, off, Math.min(len, Buffer.byteLength(s)), 'utf8');
  const oct = (n: number, off: number, len: number): void => put(`${n.toString(8).padStart(len - 1, '0')}\0`, off, len);
  put(name, 0, 100);
  oct(o.mode ?? (flag === '5' ? 0o755 : 0o644), 100, 8);
  oct(0, 108, 8);
  oct(0, 116, 8);
  oct(size, 124, 12);
  oct(1_700_000_000, 136, 12);
  put(flag, 156, 1);
  put(o.linkname ?? '', 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  oct(o.devmajor ?? 0, 329, 8);
  oct(o.devminor ?? 0, 337, 8);
  return withChecksum(h);
}

/** Writes the checksum of header `h` (its bytes with the checksum field as spaces) into it, after its other fields are set. */
export function withChecksum(h: Buffer): Buffer {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of h) sum += x;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return h;
}

const pad = (n: number): Buffer => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/** An uncompressed tar of raw entries, in the given order, with the end-of-archive blocks. */
export function rawTar(entries: readonly RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const b = Buffer.from(
        Object.entries(e.pax)
          .map(([k, v]) => paxRecord(k, v))
          .join(''),
      );
      parts.push(rawHeader('PaxHeader', 'x', b.length), b, pad(b.length));
    }
    const data = Buffer.from(e.data ?? '');
    parts.push(rawHeader(e.name, e.flag, data.length, e), data, pad(data.length));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

let base: { layer: Buffer; diffId: string } | undefined;

/** The busybox layer (uncompressed) the sandbox image is built from. */
export async function busyboxLayer(scratch: string): Promise<{ layer: Buffer; diffId: string }> {
  if (base) return base;
  const out = `${scratch}/busybox-docker.tar`;
  await buildBusyboxImage({ outPath: out, format: 'docker', tag: 'tss/base:latest' });
  const files = new Map([...readTar(readFileSync(out))].map((e) => [e.name, e.data]));
  const m = JSON.parse(files.get('manifest.json')!.toString()) as { Layers: string[] }[];
  let layer = files.get(m[0]!.Layers[0]!)!;
  if (layer[0] === 0x1f && layer[1] === 0x8b) layer = gunzipSync(layer);
  base = { layer, diffId: `sha256:${sha(layer)}` };
  return base;
}

/**
 * A `docker save` archive: the layers (uncompressed tars) in order, with the
 * config's diff ids computed from them unless `diffIds` overrides them.
 */
export function dockerSave(layers: readonly Buffer[], tag: string, o: { diffIds?: string[]; cmd?: string[] } = {}): Buffer {
  const diffIds = o.diffIds ?? layers.map((l) => `sha256:${sha(l)}`);
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: o.cmd ?? ['sleep', '3600'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const cfgName = `${sha(config)}.json`;
  const layerNames = layers.map((l, i) => `${i}-${sha(l).slice(0, 12)}/layer.tar`);
  return writeTar([
    { name: cfgName, type: 'file', data: config },
    ...layers.map((l, i) => ({ name: layerNames[i]!, type: 'file' as const, data: l })),
    { name: 'manifest.json', type: 'file', data: Buffer.from(JSON.stringify([{ Config: cfgName, RepoTags: [tag], Layers: layerNames }])) },
  ]);
}

export interface HostileLayer {
  /** A short name, also the image's tag. */
  name: string;
  what: string;
  layer: Buffer;
  /** Overrides the diff id of the hostile layer (a malformed digest). */
  diffId?: string;
}

/** The corpus: each layer tries to reach `canary` (an absolute host directory holding `file1`). */
export function hostileLayers(canary: string): HostileLayer[] {
  const c = canary.replace(/^\/+/, '');
  return [
    {
      name: 'dir-then-symlink',
      what: 'a directory later replaced by a symlink to a host path, then written through',
      layer: rawTar([
        { name: 'x/', flag: '5' },
        { name: 'x/a', flag: '0', data: 'first' },
        { name: 'x', flag: '2', linkname: canary },
        { name: 'x/pwned', flag: '0', data: 'escaped' },
        { name: 'x/file1', flag: '0', data: 'overwritten' },
      ]),
    },
    {
      name: 'dotdot-below-missing',
      what: 'a symlink through a missing directory and back up (nonexist/../h) to a symlink to the host, then written through',
      layer: rawTar([
        { name: 'h', flag: '2', linkname: canary },
        { name: 'b', flag: '2', linkname: 'nonexist/../h' },
        { name: 'b/pwned', flag: '0', data: 'escaped' },
        { name: 'b/newdir/x', flag: '0', data: 'escaped' },
      ]),
    },
    {
      name: 'hardlink-through-symlink',
      what: 'a hard link whose target path passes through a symlink to the host',
      layer: rawTar([
        { name: 'l', flag: '2', linkname: canary },
        { name: 'h', flag: '1', linkname: 'l/file1' },
        { name: 'h', flag: '0', data: 'written through the link' },
      ]),
    },
    {
      name: 'absolute-and-dotdot',
      what: 'absolute paths and .. components',
      layer: rawTar([
        { name: `/${c}/abs`, flag: '0', data: 'absolute' },
        { name: `../../../../../../${c}/dotdot`, flag: '0', data: 'dotdot' },
        { name: `a/../../../../../../../${c}/dotdot2`, flag: '0', data: 'dotdot' },
      ]),
    },
    {
      name: 'whiteouts',
      what: 'whiteouts naming ., .. and a path through a symlink',
      layer: rawTar([
        { name: 'w', flag: '2', linkname: canary },
        { name: 'w/.wh.file1', flag: '0' },
        { name: 'd/', flag: '5' },
        { name: 'd/.wh..', flag: '0' },
        { name: 'd/.wh...', flag: '0' },
      ]),
    },
    {
      name: 'opaque-through-symlink',
      what: 'an opaque whiteout through a symlink to the host',
      layer: rawTar([
        { name: 'o', flag: '2', linkname: canary },
        { name: 'o/.wh..wh..opq', flag: '0' },
      ]),
    },
    {
      name: 'late-symlink-over-whiteout-parent',
      what: 'a whiteout whose parent is replaced by a symlink after it',
      layer: rawTar([
        { name: 'p/', flag: '5' },
        { name: 'p/.wh.file1', flag: '0' },
        { name: 'p/.wh..wh..opq', flag: '0' },
        { name: 'p', flag: '2', linkname: canary },
      ]),
    },
    {
      name: 'devices',
      what: 'device nodes, a FIFO and a socket-like entry',
      layer: rawTar([
        { name: 'mem', flag: '3', devmajor: 1, devminor: 1, mode: 0o666 },
        { name: 'sda', flag: '4', devmajor: 8, devminor: 0, mode: 0o666 },
        { name: 'fifo', flag: '6' },
        { name: `${c}/fifo`, flag: '6' },
      ]),
    },
    {
      name: 'duplicates',
      what: 'duplicate entries: a file, a dir and a symlink under one name',
      layer: rawTar([
        { name: 'dup', flag: '0', data: 'one' },
        { name: 'dup/', flag: '5' },
        { name: 'dup', flag: '2', linkname: canary },
        { name: 'dup', flag: '0', data: 'two' },
        { name: 'dup/file1', flag: '0', data: 'through the duplicate' },
      ]),
    },
    {
      name: 'long-names',
      what: 'very long names (a 5000-byte path, a 300-byte component)',
      layer: rawTar([
        { name: 'long', flag: '0', data: 'x', pax: { path: `${'d/'.repeat(2500)}f` } },
        { name: 'long2', flag: '0', data: 'x', pax: { path: 'a'.repeat(300) } },
      ]),
    },
    {
      name: 'bad-diff-id',
      what: 'a diff id that names a host directory instead of a digest',
      layer: rawTar([{ name: 'f', flag: '0', data: 'x' }]),
      diffId: `sha256:../../../../../../../../${c}`,
    },
  ];
}

/** Every entry under `dir` (and `dir` itself) with its type, mode, owner, mtime and content: equal before and after means untouched. */
export function treeDigest(dir: string): string {
  const h = createHash('sha256');
  const visit = (p: string): void => {
    const st = lstatSync(p);
    h.update(`${p}\0${st.mode}\0${st.uid}:${st.gid}\0${st.mtimeMs}\0${st.nlink}\0`);
    if (st.isDirectory()) for (const n of readdirSync(p).sort()) visit(`${p}/${n}`);
    else if (st.isSymbolicLink()) h.update(readlinkSync(p));
    else if (st.isFile()) h.update(readFileSync(p));
  };
  visit(dir);
  return h.digest('hex');
}
