// The small file-system surface the WAL and snapshot store use, so that the
// deterministic simulation can swap the real disk for one that loses unsynced
// writes on a crash. realVfs is the production implementation on node:fs.
import { constants as C, fdatasync, writeSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

/** An open file, read-write. Writes are durable only after sync(). */
export interface VFile {
  readonly path: string;
  /** Current length in bytes (including any preallocated tail). */
  size(): number;
  /** Writes all of `data` at `position`, extending the file if needed. */
  writeAt(data: Uint8Array, position: number): Promise<void>;
  /** writeAt(data, size()). */
  append(data: Uint8Array): Promise<void>;
  /** Makes every earlier write durable, with the metadata needed to read it back (fdatasync). */
  sync(): Promise<void>;
  truncate(len: number): Promise<void>;
  close(): Promise<void>;
}

export interface Vfs {
  mkdirp(dir: string): Promise<void>;
  /** Names (not paths) in `dir`; [] when it does not exist. */
  list(dir: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
  readFile(path: string): Promise<Uint8Array>;
  /** Opens for reading and writing, creating the file if missing. A new directory entry is durable only after syncDir(). */
  open(path: string): Promise<VFile>;
  /** Replaces `path` with `data` so that a crash leaves the old or the new content, never a mix: tmp file, fsync, rename, fsync dir. */
  writeFileAtomic(path: string, data: Uint8Array): Promise<void>;
  /** Renames within one directory; durable after syncDir(). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; no error if it is missing. Durable after syncDir(). */
  remove(path: string): Promise<void>;
  /** Makes creations, renames and removals in `dir` durable. */
  syncDir(dir: string): Promise<void>;
}

/** Writes up to this size are made on the event loop (a page-cache copy); larger ones on the threadpool. */
const SYNC_WRITE_MAX = 1 << 20;

/** The suffix writeFileAtomic writes to before the rename; leftovers from a crash can be deleted. */
export const TMP_SUFFIX = '.tmp';

class RealFile implements VFile {
  constructor(
    readonly path: string,
    private readonly fh: fs.FileHandle,
    private len: number,
  ) {}

  size(): number {
    return this.len;
  }

  async writeAt(data: Uint8Array, position: number): Promise<void> {
    // A write that only copies into the page cache is done on the loop: the
    // threadpool round trip of an async write cost more than the copy
    // (measured here for a 320-byte record: 99 µs wall and 83 µs CPU async,
    // 11 µs sync). Only fsync waits on the disk, and stays off the loop.
    // Large writes (a snapshot's worth) still go to the threadpool.
    let done = 0;
    // write(2) on a regular file rarely writes less than asked, but may (signals, quotas).
    while (done < data.length) {
      const n = data.length - done;
      const bytesWritten =
        n <= SYNC_WRITE_MAX
          ? writeSync(this.fh.fd, data, done, n, position + done)
          : (await this.fh.write(data, done, n, position + done)).bytesWritten;
      if (bytesWritten <= 0) throw new Error(`short write to ${this.path}`);
      done += bytesWritten;
    }
    this.len = Math.max(this.len, position + data.length);
  }

  append(data: Uint8Array): Promise<void> {
    return this.writeAt(data, this.len);
  }

  sync(): Promise<void> {
    // fdatasync also flushes the file size when it changed; it skips only timestamps.
    // The callback form: about 30 µs less per call than FileHandle.datasync() here.
    return new Promise((resolve, reject) => fdatasync(this.fh.fd, (err) => (err ? reject(err) : resolve())));
  }

  async truncate(len: number): Promise<void> {
    await this.fh.truncate(len);
    this.len = len;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

export const realVfs: Vfs = {
  async mkdirp(dir) {
    await fs.mkdir(dir, { recursive: true });
  },
  async list(dir) {
    try {
      return await fs.readdir(dir);
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  },
  async exists(p) {
    try {
      await fs.access(p);
      return true;
    } catch (e) {
      if (isMissing(e)) return false;
      throw e;
    }
  },
  async readFile(p) {
    return fs.readFile(p);
  },
  async open(p) {
    // Not O_APPEND: the WAL writes at positions inside a preallocated tail.
    const fh = await fs.open(p, C.O_RDWR | C.O_CREAT, 0o600);
    try {
      const st = await fh.stat();
      return new RealFile(p, fh, st.size);
    } catch (e) {
      await fh.close();
      throw e;
    }
  },
  async writeFileAtomic(p, data) {
    const tmp = p + TMP_SUFFIX;
    const fh = await fs.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, p);
    await realVfs.syncDir(path.dirname(p));
  },
  async rename(from, to) {
    await fs.rename(from, to);
  },
  async remove(p) {
    await fs.rm(p, { force: true });
  },
  async syncDir(dir) {
    // A directory's entries are durable only once the directory itself is fsynced (Linux; opening a
    // directory read-only and calling fsync on it is the documented way).
    const fh = await fs.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
};
