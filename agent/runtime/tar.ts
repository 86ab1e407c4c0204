// A tar reader and writer for image archives and layers: ustar headers, GNU
// long names (`L`/`K`), pax extended headers (`path`, `linkpath`, `size`,
// `mtime`, `uid`, `gid`), base-256 numbers. `readTarStream` reads an archive
// as it arrives, never holding a file body whole, with caps on names, pax
// records and entry counts; `readTar` reads one held in memory with the same
// header parser.
import { TsswarmError } from '../../lib/errors.js';

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

/** An entry of a streamed archive: its body must be read (or is skipped) before the next entry is asked for. */
export interface TarStreamEntry extends Omit<TarEntry, 'data'> {
  /** Bytes of data the archive holds for this entry. */
  size: number;
  /** The entry's data, in chunks; readable only until the next entry is requested. */
  body: AsyncIterable<Buffer>;
}

export interface TarLimits {
  /** Entries (metadata records not counted); unlimited by default. */
  maxEntries?: number;
  /** Bytes of a path or link target (default 4096, Linux's PATH_MAX). */
  maxNameBytes?: number;
  /** Bytes of one pax header, of all global pax headers together, and of a GNU long name or long link record (default 1 MiB). */
  maxPaxBytes?: number;
}

/** Bytes of one path component: NAME_MAX on every Linux filesystem an image lands on. */
export const MAX_COMPONENT_BYTES = 255;

const DEFAULTS = { maxEntries: Infinity, maxNameBytes: 4096, maxPaxBytes: 1 << 20 } as const;
const BLOCK = 512;
const TYPE_OF: Record<string, TarType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};
const FLAG_OF: Record<TarType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

/** A malformed archive, or one over a limit; the message says which entry and why. */
export class TarError extends TsswarmError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

function str(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return (nul >= 0 ? s.subarray(0, nul) : s).toString('utf8');
}

/** A numeric header field: octal text, or GNU base-256 (NaN when negative or beyond 2^53: no caller can use it). */
function num(b: Buffer, off: number, len: number): number {
  const f = b.subarray(off, off + len);
  if (f[0]! & 0x80) {
    if (f[0]! & 0x40) return NaN; // two's complement negative
    let v = f[0]! & 0x3f;
    for (let i = 1; i < f.length; i++) v = v * 256 + f[i]!;
    return Number.isSafeInteger(v) ? v : NaN;
  }
  const s = str(b, off, len).replace(/^[ \0]+|[ \0]+$/g, '');
  if (!s) return 0;
  return /^[0-7]+$/.test(s) ? parseInt(s, 8) : NaN;
}

/** Strips `./` and `/` prefixes and a trailing slash: the archive's names become relative paths. */
export function cleanName(name: string): string {
  let n = name.replace(/\/+$/, '');
  while (n.startsWith('./')) n = n.slice(2);
  n = n.replace(/^\/+/, '');
  return n === '.' ? '' : n;
}

function parsePax(b: Buffer, where: string): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < b.length) {
    if (b[pos] === 0) break; // NUL padding some writers leave after the last record
    const sp = b.indexOf(0x20, pos);
    const len = sp > pos && sp - pos <= 20 ? Number(b.subarray(pos, sp).toString()) : NaN;
    if (!Number.isSafeInteger(len) || len <= sp - pos + 1 || pos + len > b.length || b[pos + len - 1] !== 0x0a) {
      throw new TarError(`${where} has a malformed pax record at byte ${pos} of ${b.length}`);
    }
    const rec = b.subarray(sp + 1, pos + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

type EntryHead = Omit<TarEntry, 'data'> & { size: number };

/**
 * The header state machine both readers share: metadata records (long names,
 * pax headers) apply to the next real entry, and every limit is checked here,
 * before any data of an entry is read.
 */
class HeaderParser {
  private longName: string | undefined;
  private longLink: string | undefined;
  private pax: Record<string, string> = {};
  private globalPax: Record<string, string> = {};
  private globalPaxBytes = 0;
  private entries = 0;
  private readonly limits: Required<TarLimits>;

  constructor(limits: TarLimits = {}) {
    this.limits = { ...DEFAULTS, ...limits };
  }

  /** The header block at byte `pos`: its type flag and data size, or undefined for the end-of-archive block. */
  head(h: Buffer, pos: number): { flag: string; size: number } | undefined {
    if (h.every((x) => x === 0)) return undefined;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    if (sum !== num(h, 148, 8)) throw new TarError(`tar header at byte ${pos} has a bad checksum (not a tar archive, or a corrupt one)`);
    const flag = String.fromCharCode(h[156]!);
    const paxSize = this.pax.size ?? this.globalPax.size;
    const size = paxSize !== undefined ? (/^\d+$/.test(paxSize) ? Number(paxSize) : NaN) : num(h, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) {
      throw new TarError(
        `tar entry "${str(h, 0, 100)}" at byte ${pos} has an invalid size (${paxSize ?? JSON.stringify(str(h, 124, 12))})`,
      );
    }
    if (isMeta(flag)) {
      if (size > this.limits.maxPaxBytes) {
        throw new TarError(
          `tar ${flag === 'L' || flag === 'K' ? 'long-name' : 'pax'} record at byte ${pos} is ${size} bytes, over the limit of ${this.limits.maxPaxBytes}`,
        );
      }
      if (flag === 'g' && this.globalPaxBytes + size > this.limits.maxPaxBytes) {
        throw new TarError(
          `tar global pax headers at byte ${pos} add up to ${this.globalPaxBytes + size} bytes, over the limit of ${this.limits.maxPaxBytes}`,
        );
      }
    } else if (++this.entries > this.limits.maxEntries) {
      throw new TarError(
        `tar archive has more than ${this.limits.maxEntries} entries (limit reached at entry "${str(h, 0, 100)}", byte ${pos})`,
      );
    }
    return { flag, size };
  }

  /** Takes in the data of a metadata record (`L`, `K`, `x`, `g`). */
  meta(flag: string, data: Buffer, pos: number): void {
    if (flag === 'L') this.longName = str(data, 0, data.length);
    else if (flag === 'K') this.longLink = str(data, 0, data.length);
    else if (flag === 'x') this.pax = parsePax(data, `tar pax header at byte ${pos}`);
    else {
      this.globalPax = { ...this.globalPax, ...parsePax(data, `tar global pax header at byte ${pos}`) };
      this.globalPaxBytes += data.length;
    }
  }

  /** The entry a real header describes, with the pending metadata applied; undefined for a type an image never needs. */
  entry(h: Buffer, flag: string, size: number, pos: number): EntryHead | undefined {
    const p = { ...this.globalPax, ...this.pax };
    const magic = str(h, 257, 6);
    const prefix = magic.startsWith('ustar') ? str(h, 345, 155) : '';
    const shortName = str(h, 0, 100);
    const name = p.path ?? this.longName ?? (prefix ? `${prefix}/${shortName}` : shortName);
    const linkname = p.linkpath ?? this.longLink ?? str(h, 157, 100);
    this.longName = this.longLink = undefined;
    this.pax = {};
    const type = TYPE_OF[flag];
    if (!type) return undefined; // sparse files, volume labels...: nothing an image needs
    const where = `tar entry "${name.length > 80 ? `${name.slice(0, 80)}...` : name}" at byte ${pos}`;
    this.checkPath(name, 'name', where, true);
    this.checkPath(linkname, 'link target', where, type === 'hardlink');
    const field = (key: 'uid' | 'gid' | 'mtime', off: number, len: number): number => {
      const v = p[key] !== undefined ? Math.floor(Number(p[key])) : num(h, off, len);
      if (!Number.isSafeInteger(v) || (key !== 'mtime' && v < 0))
        throw new TarError(`${where} has an invalid ${key} (${p[key] ?? JSON.stringify(str(h, off, len))})`);
      return v;
    };
    return {
      name: cleanName(name),
      type: type === 'file' && name.endsWith('/') ? 'dir' : type,
      mode: (num(h, 100, 8) || 0) & 0o7777,
      uid: field('uid', 108, 8),
      gid: field('gid', 116, 8),
      mtime: field('mtime', 136, 12),
      linkname: type === 'hardlink' ? cleanName(linkname) : linkname,
      devmajor: num(h, 329, 8) || 0,
      devminor: num(h, 337, 8) || 0,
      size,
    };
  }

  private checkPath(path: string, what: string, where: string, components: boolean): void {
    const bytes = Buffer.byteLength(path);
    if (bytes > this.limits.maxNameBytes)
      throw new TarError(`${where}: its ${what} is ${bytes} bytes, over the limit of ${this.limits.maxNameBytes}`);
    if (!components) return;
    for (const c of path.split('/')) {
      const n = Buffer.byteLength(c);
      if (n > MAX_COMPONENT_BYTES)
        throw new TarError(`${where}: a component of its ${what} is ${n} bytes, over the limit of ${MAX_COMPONENT_BYTES}`);
    }
  }
}

const isMeta = (flag: string): boolean => flag === 'L' || flag === 'K' || flag === 'x' || flag === 'g';
const padded = (size: number): number => Math.ceil(size / BLOCK) * BLOCK;

/** Every entry of an uncompressed tar archive held in memory, in order. */
export function* readTar(buf: Buffer, limits?: TarLimits): Generator<TarEntry> {
  const parser = new HeaderParser(limits);
  let pos = 0;
  while (pos + BLOCK <= buf.length) {
    const h = buf.subarray(pos, pos + BLOCK);
    const head = parser.head(h, pos);
    if (!head) return;
    const dataStart = pos + BLOCK;
    if (dataStart + head.size > buf.length) throw new TarError(`tar entry at byte ${pos} is cut short (archive truncated)`);
    const data = buf.subarray(dataStart, dataStart + head.size);
    const at = pos;
    pos = dataStart + padded(head.size);
    if (isMeta(head.flag)) {
      parser.meta(head.flag, data, at);
      continue;
    }
    const e = parser.entry(h, head.flag, head.size, at);
    if (!e) continue;
    const { size: _size, ...rest } = e;
    yield { ...rest, data: e.type === 'file' ? data : Buffer.alloc(0) };
  }
  if (pos < buf.length) throw new TarError(`tar archive ends inside a header at byte ${pos} (archive truncated)`);
}

/** Bytes from an async source, handed out exactly as asked: whole headers, or a body in the chunks it arrived in. */
class ByteSource {
  private readonly it: AsyncIterator<Buffer>;
  private chunks: Buffer[] = [];
  private avail = 0;
  private done = false;
  /** Bytes handed out so far. */
  pos = 0;

  constructor(input: AsyncIterable<Buffer> | Iterable<Buffer>) {
    this.it = Symbol.asyncIterator in input ? input[Symbol.asyncIterator]() : toAsync(input);
  }

  private async more(): Promise<boolean> {
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      if (c.length === 0) continue;
      this.chunks.push(c);
      this.avail += c.length;
      return true;
    }
    return false;
  }

  /** Exactly `n` bytes, or fewer only when the input ends first. */
  async exact(n: number): Promise<Buffer> {
    while (this.avail < n && (await this.more()));
    const take = Math.min(n, this.avail);
    let out: Buffer;
    if (this.chunks[0] && this.chunks[0].length >= take) out = this.chunks[0].subarray(0, take);
    else out = Buffer.concat(this.chunks, take);
    this.drop(take);
    return out;
  }

  /** The next `n` bytes as they arrive; throws `short(got)` when the input ends first. */
  async *take(n: number, short: (got: number) => Error): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.avail === 0 && !(await this.more())) throw short(n - left);
      const first = this.chunks[0]!;
      const piece = first.subarray(0, Math.min(left, first.length));
      this.drop(piece.length);
      left -= piece.length;
      yield piece;
    }
  }

  /** Reads and discards the rest of the input. */
  async drain(): Promise<void> {
    this.drop(this.avail);
    while (await this.more()) this.drop(this.avail);
  }

  async close(): Promise<void> {
    if (!this.done) await this.it.return?.();
  }

  private drop(n: number): void {
    this.pos += n;
    this.avail -= n;
    while (n > 0) {
      const first = this.chunks[0]!;
      if (first.length <= n) {
        n -= first.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }
}

async function* toAsync(input: Iterable<Buffer>): AsyncGenerator<Buffer> {
  yield* input;
}

/**
 * Every entry of an uncompressed tar archive as it streams in. Each entry's
 * body must be consumed before the next entry is requested (what is left of
 * it is skipped). After the end-of-archive blocks the input is read to its end,
 * so a wrapper that hashes or counts the input sees every byte.
 */
export async function* readTarStream(input: AsyncIterable<Buffer> | Iterable<Buffer>, limits?: TarLimits): AsyncGenerator<TarStreamEntry> {
  const src = new ByteSource(input);
  const parser = new HeaderParser(limits);
  let ended = false;
  try {
    for (;;) {
      const at = src.pos;
      const h = await src.exact(BLOCK);
      if (h.length === 0) break; // input ended on a header boundary without end-of-archive blocks
      if (h.length < BLOCK) throw new TarError(`tar archive ends inside a header at byte ${at} (archive truncated)`);
      const head = parser.head(h, at);
      if (!head) {
        ended = true;
        break;
      }
      const short = (got: number): TarError =>
        new TarError(`tar entry "${str(h, 0, 100)}" at byte ${at} is cut short: the archive ends after ${got} of its ${head.size} bytes`);
      if (isMeta(head.flag)) {
        const data = await src.exact(head.size);
        if (data.length < head.size) throw short(data.length);
        await skip(src, padded(head.size) - head.size, () => short(head.size));
        parser.meta(head.flag, data, at);
        continue;
      }
      const e = parser.entry(h, head.flag, head.size, at);
      let left = head.size;
      let current = true;
      if (e) {
        const body = async function* (): AsyncGenerator<Buffer> {
          if (!current) throw new TarError(`tar entry "${e.name}": its body was read after the next entry was requested`);
          const before = head.size - left;
          for await (const c of src.take(left, (got) => short(before + got))) {
            left -= c.length;
            yield c;
            if (!current) throw new TarError(`tar entry "${e.name}": its body was read after the next entry was requested`);
          }
        };
        yield { ...e, body: { [Symbol.asyncIterator]: body } };
        current = false;
      }
      const done = head.size - left;
      await skip(src, left, (got) => short(done + got));
      await skip(src, padded(head.size) - head.size, () => short(head.size));
    }
    if (ended) await src.drain();
  } finally {
    await src.close();
  }
}

async function skip(src: ByteSource, n: number, short: (got: number) => Error): Promise<void> {
  for await (const _ of src.take(n, short)) {
    /* discarded */
  }
}

function header(name: string, e: Partial<TarEntry>, flag: string, size: number, linkname = ''): Buffer {
  const h = Buffer.alloc(BLOCK);
  const put = (s: string, off: number, len: number): void => void h.write(s, off, Math.min(len, Buffer.byteLength(s)), 'utf8');
  const oct = (n: number, off: number, len: number): void =>
    put(
      `${Math.max(0, Math.floor(n))
        .toString(8)
        .padStart(len - 1, '0')}\0`,
      off,
      len,
    );
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
export function writeTar(
  entries: readonly (Partial<TarEntry> & { name: string; type: TarType })[],
  o: { longNames?: 'pax' | 'gnu' } = {},
): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const name = e.type === 'dir' ? `${cleanName(e.name)}/` : cleanName(e.name);
    const link = e.linkname ?? '';
    const data = e.type === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    const nameFits =
      Buffer.byteLength(name) <= 100 ||
      (() => {
        const cut = name.lastIndexOf('/', 155);
        return cut > 0 && Buffer.byteLength(name.slice(cut + 1)) <= 100;
      })();
    const linkFits = Buffer.byteLength(link) <= 100;
    if (!nameFits || !linkFits) {
      if (o.longNames === 'gnu') {
        for (const [flag, v, fits] of [
          ['L', name, nameFits],
          ['K', link, linkFits],
        ] as const) {
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
