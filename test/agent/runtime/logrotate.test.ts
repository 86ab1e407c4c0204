// The rotator's passes against a simulated conmon (its switch to a new file
// is open(ctr.log.tmp, O_CREAT|O_TRUNC) then rename over ctr.log, as conmon
// 2.1's reopen_k8s_file): what is kept, in which order, and how many files
// can exist however late the pass comes. The real conmon is in logs.kernel.test.ts.
import { appendFileSync, closeSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { conmonFileSize, logFiles, rotatePass } from '../../../agent/runtime/logrotate.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function container(): { dir: string; write(s: string): void; switchFile(): void; kept(): string[]; names(): string[] } {
  const dir = mkdtempSync('/tmp/tss-logrotate-');
  dirs.push(dir);
  const live = join(dir, 'ctr.log');
  closeSync(openSync(live, 'a'));
  return {
    dir,
    write: (s) => appendFileSync(live, s),
    switchFile: () => {
      closeSync(openSync(join(dir, 'ctr.log.tmp'), 'w'));
      renameSync(join(dir, 'ctr.log.tmp'), live);
    },
    kept: () => logFiles(dir).map((f) => readFileSync(f.path, 'utf8')),
    names: () => readdirSync(dir).sort(),
  };
}

/** Distinct files with data under any name. */
const dataFiles = (dir: string): number =>
  new Set(
    readdirSync(dir)
      .map((n) => statSync(join(dir, n)))
      .filter((s) => s.size > 0)
      .map((s) => s.ino),
  ).size;

describe('log rotation passes', () => {
  it('a switch seen by a pass shifts the finished file to .1; the oldest past max-file goes', () => {
    const c = container();
    rotatePass(c.dir, 3);
    for (const x of ['a', 'b', 'c', 'd']) {
      c.write(x);
      c.switchFile();
      rotatePass(c.dir, 3);
    }
    c.write('e');
    expect(c.kept()).toEqual(['c', 'd', 'e']);
    expect(c.names()).toEqual(['ctr.log', 'ctr.log.1', 'ctr.log.2', 'ctr.log.cur', 'ctr.log.next', 'ctr.log.tmp']);
  });

  it('two switches before a pass lose nothing: conmon took the prepared file, and the one before is still ours', () => {
    const c = container();
    rotatePass(c.dir, 5);
    c.write('a');
    expect(c.kept()).toEqual(['a']); // the prepared file is not read while conmon has not taken it
    c.switchFile();
    c.write('b');
    c.switchFile();
    c.write('c');
    expect(c.kept()).toEqual(['a', 'b', 'c']); // read in order before the pass too
    rotatePass(c.dir, 5);
    expect(c.kept()).toEqual(['a', 'b', 'c']);
  });

  it('a third switch before a pass drops the file no name of ours held: at most max-file + 2 files ever hold data', () => {
    const c = container();
    const maxFiles = 2;
    rotatePass(c.dir, maxFiles);
    let most = 0;
    for (let round = 0; round < 5; round++) {
      for (const x of ['a', 'b', 'c', 'd']) {
        c.write(`${x}${round}`);
        c.switchFile();
        most = Math.max(most, dataFiles(c.dir));
      }
      c.write(`e${round}`);
      most = Math.max(most, dataFiles(c.dir));
      rotatePass(c.dir, maxFiles);
      most = Math.max(most, dataFiles(c.dir));
      expect(c.kept()).toEqual([`b${round}`, `e${round}`]);
    }
    expect(most).toBe(maxFiles + 2);
  });

  it('max-file 1 keeps the live file only', () => {
    const c = container();
    rotatePass(c.dir, 1);
    c.write('a');
    c.switchFile();
    c.write('b');
    rotatePass(c.dir, 1);
    expect(c.kept()).toEqual(['b']);
  });

  it("conmon's file size leaves room for the two files a late pass has not rotated", () => {
    expect(conmonFileSize(20 * 2 ** 20, 5)).toBe(Math.floor((100 * 2 ** 20) / 7));
    for (const [size, n] of [
      [32 * 1024, 1],
      [64 * 1024, 3],
      [10 * 2 ** 20, 100],
    ] as const) {
      expect(conmonFileSize(size, n) * (n + 2)).toBeLessThanOrEqual(size * n);
      expect(conmonFileSize(size, n)).toBeGreaterThan(8192 + 64);
    }
  });
});
