// Rotation of a container's log, which conmon writes. Debian's conmon
// (2.1) cannot rotate: given --log-size-max it starts a new file when the
// next record would pass the size, by opening `ctr.log.tmp` (O_CREAT|O_TRUNC)
// and renaming it over `ctr.log`, which drops the old file. So every file is
// bounded by conmon itself, and the rotator keeps the old ones: it holds a
// second link to the live file (`ctr.log.cur`), so conmon's rename unlinks a
// name, not the data, and it creates `ctr.log.tmp` in advance with a second
// link (`ctr.log.next`), so the file conmon switches to already has a name
// of ours. A pass then shifts `ctr.log.cur` to `ctr.log.1`, `.1` to `.2` ...
// and drops the oldest beyond max-file. All state is the directory, so a
// restarted agent resumes where it was (conmon outlives it).
//
// The bound holds whatever the rotator's speed: data stays on disk only under
// the names ctr.log.1..(max-file - 1), `.cur`, `.next` and `ctr.log` (conmon's
// rename frees a file no name of ours holds), so at most max-file + 2 files,
// each at most conmon's size. That size is max-size × max-file / (max-file + 2),
// so the total never passes max-size × max-file, even while a task writes
// faster than the agent rotates (which then loses the file it could not name).
import { closeSync, type FSWatcher, linkSync, openSync, readdirSync, renameSync, statSync, unlinkSync, watch } from 'node:fs';
import { join } from 'node:path';
import type pino from 'pino';

export const LOG_FILE = 'ctr.log';

/** The size conmon starts a new file at, so that max-file + 2 files hold at most max-size × max-file bytes. */
export function conmonFileSize(maxSize: number, maxFiles: number): number {
  return Math.floor((maxSize * maxFiles) / (maxFiles + 2));
}
const CUR = `${LOG_FILE}.cur`;
const NEXT = `${LOG_FILE}.next`;
const TMP = `${LOG_FILE}.tmp`;

function ino(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

function quiet(f: () => void): void {
  try {
    f();
  } catch {
    /* a name conmon (or a concurrent pass) moved meanwhile: the next pass sees the new state */
  }
}

/**
 * One rotation pass over a container directory: keeps at most `maxFiles`
 * files (the live one and maxFiles-1 rotated), each already bounded by
 * conmon. Never throws; safe to run at any time, any number of times.
 */
export function rotatePass(dir: string, maxFiles: number): void {
  const p = (n: string): string => join(dir, n);
  for (let i = 0; i < 8; i++) {
    const live = ino(p(LOG_FILE));
    const cur = ino(p(CUR));
    if (cur !== undefined && cur !== live) {
      // conmon has moved on: the file we named is complete.
      if (maxFiles <= 1) quiet(() => unlinkSync(p(CUR)));
      else {
        quiet(() => unlinkSync(p(`${LOG_FILE}.${maxFiles - 1}`)));
        for (let k = maxFiles - 2; k >= 1; k--) quiet(() => renameSync(p(`${LOG_FILE}.${k}`), p(`${LOG_FILE}.${k + 1}`)));
        quiet(() => renameSync(p(CUR), p(`${LOG_FILE}.1`)));
      }
      continue;
    }
    if (cur === undefined) {
      const next = ino(p(NEXT));
      // conmon took the prepared file (it is the live one, or an older one if it switched twice).
      if (next !== undefined && next !== ino(p(TMP))) {
        quiet(() => renameSync(p(NEXT), p(CUR)));
        continue;
      }
      if (live !== undefined) {
        quiet(() => linkSync(p(LOG_FILE), p(CUR)));
        continue;
      }
    }
    if (ino(p(NEXT)) === undefined && live !== undefined) {
      quiet(() => closeSync(openSync(p(TMP), 'a', 0o600)));
      quiet(() => linkSync(p(TMP), p(NEXT)));
    }
    return;
  }
}

/** The container's log files, oldest first, each file once (the names of ours that are second links are left out). */
export function logFiles(dir: string): { path: string; ino: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const rotated = names
    .map((n) => /^ctr\.log\.(\d+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(b[1]) - Number(a[1]))
    .map((m) => m[0]);
  const out: { path: string; ino: number }[] = [];
  const seen = new Set<number>();
  // `.next` counts once conmon has taken it (it is no longer `.tmp`), an empty file until then.
  const next = ino(join(dir, NEXT));
  const taken = next !== undefined && next !== ino(join(dir, TMP));
  // `.cur`, then a taken `.next`, then the live file: when they differ, conmon has switched, oldest first.
  for (const n of [...rotated, CUR, ...(taken ? [NEXT] : []), LOG_FILE]) {
    const i = ino(join(dir, n));
    if (i === undefined || seen.has(i)) continue;
    seen.add(i);
    out.push({ path: join(dir, n), ino: i });
  }
  return out;
}

/**
 * Runs rotatePass for each watched container when conmon switches files
 * (an inotify rename in its directory) and on a slow sweep besides, so a
 * missed event only delays a pass.
 */
export class LogRotator {
  private readonly watched = new Map<string, { dir: string; maxFiles: number; watcher: FSWatcher | null; queued: boolean }>();
  private sweep: NodeJS.Timeout | null = null;

  constructor(private readonly log: pino.Logger) {}

  add(id: string, dir: string, maxFiles: number): void {
    if (this.watched.has(id)) return;
    const w = { dir, maxFiles, watcher: null as FSWatcher | null, queued: false };
    this.watched.set(id, w);
    try {
      w.watcher = watch(dir, (event, name) => {
        if (event === 'rename' && (name === LOG_FILE || name === TMP)) this.queue(id);
      });
      w.watcher.on('error', () => undefined);
    } catch (err) {
      this.log.warn({ err, container: id }, 'cannot watch the log directory: rotation runs on the sweep only');
    }
    rotatePass(dir, maxFiles);
    if (!this.sweep) {
      this.sweep = setInterval(() => {
        for (const [, x] of this.watched) rotatePass(x.dir, x.maxFiles);
      }, 1000);
      this.sweep.unref();
    }
  }

  private queue(id: string): void {
    const w = this.watched.get(id);
    if (!w || w.queued) return;
    w.queued = true;
    setImmediate(() => {
      w.queued = false;
      if (this.watched.get(id) === w) rotatePass(w.dir, w.maxFiles);
    });
  }

  remove(id: string): void {
    this.watched.get(id)?.watcher?.close();
    this.watched.delete(id);
  }

  close(): void {
    for (const id of [...this.watched.keys()]) this.remove(id);
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
  }
}
