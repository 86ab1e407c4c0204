// A small tar reader and writer for image archives and layers: ustar headers,
// GNU long names (`L`/`K`), pax extended headers (`path`, `linkpath`, `size`,
// `mtime`), base-256 numbers. Whole archives in memory: image layers this node
// handles are small, and it keeps the reader a pure function that is easy to test.

export type TarType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  /** Path inside the archive, without a leading `./` or `/`, no trailing slash. */
  name: string;
  type: TarType;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink target, or the archive path a hard link points at. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Contents of a regular file (empty for the other types). */
  data: Buffer;
}

const BLOCK = 512;
const TYPE_OF: Record<string, TarType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };
const FLAG_OF: Record<TarType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

export class TarError extends Error {}

function str(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return (nul >= 0 ? s.subarray(0, nul) : s).toString('utf8');
}

function num(b: Buffer, off: number, len: number): number {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    // base-256 (GNU): big-endian two's complement with the top bit as marker
    let v = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return v;
  }
  const s = str(b, off, len).trim();
  return s ? parseInt(s, 8) : 0;
}

/** Strips `./` and `/` prefixes and a trailing slash: the archive's names become relative paths. */
export function cleanName(name: string): string {
  let n = name.replace(/\/+$/, '');
  while (n.startsWith('./')) n = n.slice(2);
  n = n.replace(/^\/+/, '');
  return n === '.' ? '' : n;
}

function parsePax(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < b.length) {
    const sp = b.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = Number(b.subarray(pos, sp).toString());
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = b.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** Every entry of an uncompressed tar archive, in order. */
export function* readTar(buf: Buffer): Generator<TarEntry> {
  let pos = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  while (pos + BLOCK <= buf.length) {
    const h = buf.subarray(pos, pos + BLOCK);
    if (h.every((x) => x === 0)) return;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    const want = num(h, 148, 8);
    if (sum !== want) throw new TarError(`tar header at byte ${pos} has a bad checksum (not a tar archive, or a corrupt one)`);
    const flag = String.fromCharCode(h[156]!);
    const p = { ...globalPax, ...pax };
    const size = p.size !== undefined ? Number(p.size) : num(h, 124, 12);
    const dataStart = pos + BLOCK;
    if (dataStart + size > buf.length) throw new TarError(`tar entry at byte ${pos} is cut short (archive truncated)`);
    const data = buf.subarray(dataStart, dataStart + size);
    pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'L') {
      longName = str(data, 0, data.length);
      continue;
    }
    if (flag === 'K') {
      longLink = str(data, 0, data.length);
      continue;
    }
    if (flag === 'x') {
      pax = parsePax(data);
      continue;
    }
    if (flag === 'g') {
      globalPax = { ...globalPax, ...parsePax(data) };
      continue;
    }
    const magic = str(h, 257, 6);
    const prefix = magic.startsWith('ustar') ? str(h, 345, 155) : '';
    const shortName = str(h, 0, 100);
    const name = p.path ?? longName ?? (prefix ? `${prefix}/${shortName}` : shortName);
    const linkname = p.linkpath ?? longLink ?? str(h, 157, 100);
    longName = longLink = undefined;
    pax = {};
    const type = TYPE_OF[flag];
    if (!type) continue; // sparse files, volume labels...: nothing an image needs
    yield {
      name: cleanName(name),
      type: type === 'file' && name.endsWith('/') ? 'dir' : type,
      mode: num(h, 100, 8) & 0o7777,
      uid: p.uid !== undefined ? Number(p.uid) : num(h, 108, 8),
      gid: p.gid !== undefined ? Number(p.gid) : num(h, 116, 8),
      mtime: p.mtime !== undefined ? Math.floor(Number(p.mtime)) : num(h, 136, 12),
      linkname: type === 'hardlink' ? cleanName(linkname) : linkname,
      devmajor: num(h, 329, 8),
      devminor: num(h, 337, 8),
      data: type === 'file' ? data : Buffer.alloc(0),
    };
  }
}

function header(name: string, e: Partial<TarEntry>, flag: string, size: number, linkname = ''): Buffer {
  const h = Buffer.alloc(BLOCK);
  const put = (s: string, off: number, len: number): void => void h.write(s, off, Math.min(len, Buffer.byteLength(s)), 'utf8');
  const oct = (n: number, off: number, len: number): void => put(`${Math.max(0, Math.floor(n)).toString(8).padStart(len - 1, '0')}\0`, off, len);
  let prefix = '';
  let short = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut > 0 && Buffer.byteLength(name.slice(cut + 1)) <= 100 && Buffer.byteLength(name.slice(0, cut)) <= 155) {
      prefix = name.slice(0, cut);
      short = name.slice(cut + 1);
    } else short = name.slice(0, 100); // the caller wrote a long-name record first
  }
  put(short, 0, 100);
  oct(e.mode ?? 0o644, 100, 8);
  oct(e.uid ?? 0, 108, 8);
  oct(e.gid ?? 0, 116, 8);
  oct(size, 124, 12);
  oct(e.mtime ?? 0, 136, 12);
  h.fill(0x20, 148, 156);
  put(flag, 156, 1);
  put(linkname, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  oct(e.devmajor ?? 0, 329, 8);
  oct(e.devminor ?? 0, 337, 8);
  put(prefix, 345, 155);
  let sum = 0;
  for (const x of h) sum += x;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}

const pad = (n: number): Buffer => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return `${len}${body}`;
}

/**
 * An archive of `entries` (directories should end up before their contents;
 * the writer keeps the given order). Long names go in pax headers, or GNU
 * `L`/`K` records with `longNames: 'gnu'`.
 */
export function writeTar(entries: readonly (Partial<TarEntry> & { name: string; type: TarType })[], o: { longNames?: 'pax' | 'gnu' } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const name = e.type === 'dir' ? `${cleanName(e.name)}/` : cleanName(e.name);
    const link = e.linkname ?? '';
    const data = e.type === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const nameFits = Buffer.byteLength(name) <= 100 || (() => {
      const cut = name.lastIndexOf('/', 155);
      return cut > 0 && Buffer.byteLength(name.slice(cut + 1)) <= 100;
    })();
    const linkFits = Buffer.byteLength(link) <= 100;
    if (!nameFits || !linkFits) {
      if (o.longNames === 'gnu') {
        for (const [flag, v, fits] of [['L', name, nameFits], ['K', link, linkFits]] as const) {
          if (fits) continue;
          const b = Buffer.from(`${v}\0`);
          parts.push(header('././@LongLink', {}, flag, b.length), b, pad(b.length));
        }
      } else {
        const b = Buffer.from((nameFits ? '' : paxRecord('path', name)) + (linkFits ? '' : paxRecord('linkpath', link)));
        parts.push(header(`PaxHeaders/${name.slice(0, 80)}`, {}, 'x', b.length), b, pad(b.length));
      }
    }
    parts.push(header(name, e, FLAG_OF[e.type], data.length, link.slice(0, 100)), data, pad(data.length));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
