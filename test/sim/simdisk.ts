// A simulated disk for the deterministic Raft simulation: an in-memory Vfs
// that knows, for every file and directory, what was written and what was
// made durable, and on crash() keeps only the durable part (plus, sometimes, a
// torn prefix of what was not). No timers, no real randomness, no I/O.
//
// Model (simple, and as harsh as a real disk with ordered writeback):
// - File content: writes and truncations since the file's last sync() are pending. A crash drops
//   them all, or with probability TORN_P keeps a random prefix of them, the last one cut at a
//   random byte (a torn record). Pending writes never reach the disk out of order.
// - Directory entries: creations, renames and removals since the directory's last syncDir() are
//   pending; a crash keeps a random prefix of them (metadata journals commit in order). A file
//   whose data was synced can still vanish if its directory entry was not.
// - Directories themselves are created durably by mkdirp (a member creates them once).
// - Promises resolve at once (as microtasks). After a crash, files opened before it are dead: their
//   operations never settle, as if the process had died mid-call. Calls made directly on the
//   SimDisk are always applied; use session() to fence a whole process's Vfs at the crash.
// - armCrash(n) crashes the disk inside its n-th next mutating call, so a crash can land anywhere
//   on the I/O path: partway through a write (the write is pending, so it may be kept torn), after
//   a write and before its fsync, between a snapshot file and its WAL marker, or in a WAL release.
import path from 'node:path';
import { TMP_SUFFIX, type VFile, type Vfs } from '../../manager/raft/storage/index.js';

/** Chance that a crash keeps a torn prefix of a file's unsynced writes, rather than none of them. */
const TORN_P = 0.5;

type FileOp = { kind: 'write'; pos: number; data: Uint8Array } | { kind: 'truncate'; len: number };
type DirOp = { kind: 'link'; name: string; inode: Inode } | { kind: 'unlink'; name: string } | { kind: 'rename'; from: string; to: string };

/** Growable bytes; everything past `len` is kept zero, so a file extended later reads zeros there. */
class Bytes {
  bytes = new Uint8Array(64);
  len = 0;

  write(pos: number, data: Uint8Array): void {
    this.reserve(pos + data.length);
    this.bytes.set(data, pos);
    this.len = Math.max(this.len, pos + data.length);
  }

  truncate(len: number): void {
    if (len < this.len) this.bytes.fill(0, len, this.len);
    else this.reserve(len);
    this.len = len;
  }

  apply(op: FileOp): void {
    if (op.kind === 'write') this.write(op.pos, op.data);
    else this.truncate(op.len);
  }

  clone(): Bytes {
    const b = new Bytes();
    b.bytes = this.bytes.slice();
    b.len = this.len;
    return b;
  }

  content(): Uint8Array {
    return this.bytes.slice(0, this.len);
  }

  private reserve(n: number): void {
    if (n <= this.bytes.length) return;
    let cap = this.bytes.length;
    while (cap < n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.bytes.subarray(0, this.len));
    this.bytes = next;
  }
}

class Inode {
  live = new Bytes();
  durable = new Bytes();
  pending: FileOp[] = [];

  sync(): void {
    for (const op of this.pending) this.durable.apply(op);
    this.pending = [];
  }

  crash(rng: () => number): void {
    if (this.pending.length > 0 && rng() < TORN_P) {
      const k = Math.floor(rng() * this.pending.length);
      for (let i = 0; i < k; i++) this.durable.apply(this.pending[i]!);
      const torn = this.pending[k]!;
      if (torn.kind === 'write') this.durable.write(torn.pos, torn.data.subarray(0, Math.floor(rng() * (torn.data.length + 1))));
      else if (rng() < 0.5) this.durable.apply(torn);
    }
    this.pending = [];
    this.live = this.durable.clone();
  }
}

class Dir {
  live = new Map<string, Inode>();
  durable = new Map<string, Inode>();
  pending: DirOp[] = [];

  do(op: DirOp): void {
    apply(this.live, op);
    this.pending.push(op);
  }

  sync(): void {
    this.durable = new Map(this.live);
    this.pending = [];
  }

  crash(rng: () => number): void {
    if (this.pending.length === 0) return;
    const keep = Math.floor(rng() * (this.pending.length + 1));
    for (let i = 0; i < keep; i++) apply(this.durable, this.pending[i]!);
    this.pending = [];
    this.live = new Map(this.durable);
  }
}

function apply(m: Map<string, Inode>, op: DirOp): void {
  if (op.kind === 'link') m.set(op.name, op.inode);
  else if (op.kind === 'unlink') m.delete(op.name);
  else {
    const ino = m.get(op.from);
    if (!ino) return;
    m.delete(op.from);
    m.set(op.to, ino);
  }
}

function enoent(op: string, p: string): Error {
  const e = new Error(`ENOENT: no such file or directory, ${op} '${p}'`) as NodeJS.ErrnoException;
  e.code = 'ENOENT';
  return e;
}

const never = <T>(): Promise<T> => new Promise<T>(() => {});

class SimFile implements VFile {
  private closed = false;

  constructor(
    private readonly disk: SimDisk,
    private readonly inode: Inode,
    readonly path: string,
    private readonly epoch: number,
  ) {}

  size(): number {
    return this.inode.live.len;
  }

  writeAt(data: Uint8Array, position: number): Promise<void> {
    const stop = this.gate();
    if (stop) return stop;
    // Copy: the caller may reuse its buffer, and the disk must keep what was written then.
    const op: FileOp = { kind: 'write', pos: position, data: data.slice() };
    this.inode.live.apply(op);
    this.inode.pending.push(op);
    this.disk.stats.writes++;
    this.disk.stats.bytesWritten += data.length;
    // A crash during the write: it is pending, so the crash keeps none, all or a torn part of it.
    if (this.disk.crashPoint()) return never();
    return Promise.resolve();
  }

  append(data: Uint8Array): Promise<void> {
    return this.writeAt(data, this.size());
  }

  sync(): Promise<void> {
    const stop = this.gate();
    if (stop) return stop;
    if (this.disk.crashPoint()) return never();
    this.inode.sync();
    this.disk.stats.fsyncs++;
    return Promise.resolve();
  }

  truncate(len: number): Promise<void> {
    const stop = this.gate();
    if (stop) return stop;
    const op: FileOp = { kind: 'truncate', len };
    this.inode.live.apply(op);
    this.inode.pending.push(op);
    if (this.disk.crashPoint()) return never();
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.disk.epoch !== this.epoch) return never();
    this.closed = true;
    return Promise.resolve();
  }

  /** A promise to return instead of acting: never settling for a dead process, rejected for a closed file. */
  private gate(): Promise<never> | null {
    if (this.disk.epoch !== this.epoch) return never();
    if (this.closed) return Promise.reject(new Error(`${this.path}: file is closed`));
    return null;
  }
}

export interface SimDiskStats {
  /** File fsyncs (sync() calls, including those inside writeFileAtomic). */
  fsyncs: number;
  dirSyncs: number;
  writes: number;
  bytesWritten: number;
  crashes: number;
}

export class SimDisk implements Vfs {
  readonly stats: SimDiskStats = { fsyncs: 0, dirSyncs: 0, writes: 0, bytesWritten: 0, crashes: 0 };
  /** Bumped by crash(): files opened in an earlier epoch belong to a dead process. */
  epoch = 0;
  private readonly dirs = new Map<string, Dir>([['/', new Dir()]]);
  private armed: { ops: number; rng: () => number; onCrash: () => void } | null = null;

  /**
   * Crashes the disk (as crash(rng)) inside the `ops`-th next mutating call (0: the next one), then
   * calls onCrash; that call and every later one of the dead process never settles.
   */
  armCrash(ops: number, rng: () => number, onCrash: () => void): void {
    this.armed = { ops, rng, onCrash };
  }

  /** Whether a crash is armed and has not fired yet. */
  get crashArmed(): boolean {
    return this.armed !== null;
  }

  disarm(): void {
    this.armed = null;
  }

  /** Called by every mutating operation at the point where a crash would hurt most; true if the disk just crashed. */
  crashPoint(): boolean {
    const a = this.armed;
    if (!a) return false;
    if (a.ops-- > 0) return false;
    this.armed = null;
    this.crash(a.rng);
    a.onCrash();
    return true;
  }

  /** Loses everything not durable, in every file and directory, with `rng` (uniform in [0, 1)) choosing what a torn write keeps. */
  crash(rng: () => number): void {
    this.epoch++;
    this.stats.crashes++;
    for (const d of this.dirs.values()) d.crash(rng);
    const seen = new Set<Inode>();
    for (const d of this.dirs.values()) {
      for (const ino of d.live.values()) {
        if (seen.has(ino)) continue;
        seen.add(ino);
        ino.crash(rng);
      }
    }
  }

  /** A Vfs for one process: after the next crash its calls never settle and change nothing. */
  session(): Vfs {
    const epoch = this.epoch;
    const fence =
      <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
      (...a: A): Promise<R> =>
        this.epoch === epoch ? fn(...a) : never<R>();
    return {
      mkdirp: fence((d: string) => this.mkdirp(d)),
      list: fence((d: string) => this.list(d)),
      exists: fence((p: string) => this.exists(p)),
      readFile: fence((p: string) => this.readFile(p)),
      open: fence((p: string) => this.open(p)),
      writeFileAtomic: fence((p: string, data: Uint8Array) => this.writeFileAtomic(p, data)),
      rename: fence((a: string, b: string) => this.rename(a, b)),
      remove: fence((p: string) => this.remove(p)),
      syncDir: fence((d: string) => this.syncDir(d)),
    };
  }

  /** What a file would hold after a crash that keeps nothing unsynced (null if its entry would be lost too). For tests. */
  durableContent(p: string): Uint8Array | null {
    const { dir, name } = this.split(p);
    const ino = this.dirs.get(dir)?.durable.get(name);
    return ino ? ino.durable.content() : null;
  }

  /** Flips the bits of one byte, durably, as bit rot would. For tests. */
  corrupt(p: string, offset: number): void {
    const ino = this.inode(p);
    if (!ino || offset >= ino.live.len) throw new Error(`corrupt: no byte ${offset} in ${p}`);
    ino.sync();
    for (const b of [ino.live, ino.durable]) b.bytes[offset] = b.bytes[offset]! ^ 0xff;
  }

  // ---- Vfs

  async mkdirp(dir: string): Promise<void> {
    let d = path.posix.resolve(dir);
    for (;;) {
      if (!this.dirs.has(d)) this.dirs.set(d, new Dir());
      if (d === '/') return;
      d = path.posix.dirname(d);
    }
  }

  async list(dir: string): Promise<string[]> {
    const d = this.dirs.get(path.posix.resolve(dir));
    return d ? [...d.live.keys()].sort() : [];
  }

  async exists(p: string): Promise<boolean> {
    return this.dirs.has(path.posix.resolve(p)) || this.inode(p) !== undefined;
  }

  async readFile(p: string): Promise<Uint8Array> {
    const ino = this.inode(p);
    if (!ino) throw enoent('open', p);
    return ino.live.content();
  }

  async open(p: string): Promise<VFile> {
    const { dir, name } = this.split(p);
    const d = this.dir(dir, 'open', p);
    let ino = d.live.get(name);
    if (!ino) {
      ino = new Inode();
      d.do({ kind: 'link', name, inode: ino });
    }
    return new SimFile(this, ino, p, this.epoch);
  }

  async writeFileAtomic(p: string, data: Uint8Array): Promise<void> {
    const { dir, name } = this.split(p);
    const d = this.dir(dir, 'open', p);
    const ino = new Inode();
    ino.live.write(0, data);
    ino.durable.write(0, data);
    this.stats.writes++;
    this.stats.bytesWritten += data.length;
    this.stats.fsyncs++;
    const tmp = name + TMP_SUFFIX;
    d.do({ kind: 'link', name: tmp, inode: ino });
    d.do({ kind: 'rename', from: tmp, to: name });
    // A crash after the rename and before the directory fsync keeps a prefix of the two.
    if (this.crashPoint()) return never();
    await this.syncDir(dir);
  }

  async rename(from: string, to: string): Promise<void> {
    const a = this.split(from);
    const b = this.split(to);
    if (a.dir !== b.dir) throw new Error(`SimDisk: rename across directories is not modelled (${from} -> ${to})`);
    const d = this.dir(a.dir, 'rename', from);
    if (!d.live.has(a.name)) throw enoent('rename', from);
    d.do({ kind: 'rename', from: a.name, to: b.name });
    if (this.crashPoint()) return never();
  }

  async remove(p: string): Promise<void> {
    const { dir, name } = this.split(p);
    const d = this.dirs.get(dir);
    if (d?.live.has(name)) d.do({ kind: 'unlink', name });
    if (this.crashPoint()) return never();
  }

  async syncDir(dir: string): Promise<void> {
    if (this.crashPoint()) return never();
    this.dir(path.posix.resolve(dir), 'fsync', dir).sync();
    this.stats.dirSyncs++;
  }

  private split(p: string): { dir: string; name: string } {
    const abs = path.posix.resolve(p);
    return { dir: path.posix.dirname(abs), name: path.posix.basename(abs) };
  }

  private dir(dir: string, op: string, p: string): Dir {
    const d = this.dirs.get(dir);
    if (!d) throw enoent(op, p);
    return d;
  }

  private inode(p: string): Inode | undefined {
    const { dir, name } = this.split(p);
    return this.dirs.get(dir)?.live.get(name);
  }
}
