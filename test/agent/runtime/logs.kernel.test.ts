import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { Runtime } from '../../../agent/runtime/index.js';
import { conmonFileSize } from '../../../agent/runtime/logrotate.js';
import type { LogLine } from '../../../agent/runtime/types.js';
import { have, isRoot } from '../../have.js';
import { useBusyboxRuntime } from './busybox-runtime.js';
import { until } from '../../lib/wait.js';

const log = pino({ level: 'silent' });
const canRun = isRoot && have('runc') && have('conmon') && existsSync('/bin/busybox');
if (!canRun) console.log('log rotation tests skipped: need root, runc, conmon and busybox-static');

/** The container's log files on disk, each inode once (our second links share theirs): count and total bytes. */
function onDisk(dir: string): { files: number; bytes: number; largest: number } {
  const seen = new Map<number, number>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return { files: 0, bytes: 0, largest: 0 };
  }
  for (const n of names) {
    if (!n.startsWith('ctr.log')) continue;
    try {
      const s = statSync(join(dir, n));
      seen.set(s.ino, s.size);
    } catch {
      /* renamed by the rotator meanwhile */
    }
  }
  const sizes = [...seen.values()].filter((s) => s > 0);
  return { files: sizes.length, bytes: sizes.reduce((a, b) => a + b, 0), largest: Math.max(0, ...sizes) };
}

describe.skipIf(!canRun)('container logs rotate and read back in order', () => {
  const env = useBusyboxRuntime('/tmp/tss-logs-');
  const made = env.made;
  let rt: Runtime;
  let dir = '';
  const cdir = (id: string): string => join(dir, 'root', 'containers', id);

  beforeAll(() => {
    rt = env.rt;
    dir = env.dir;
  });

  const run = async (id: string, cfg: Partial<Parameters<Runtime['create']>[0]>): Promise<void> => {
    made.push(id);
    await rt.create({ id, image: 'tsswarm/busybox:latest', ...cfg });
    await rt.start(id);
  };
  const read = async (id: string, o: Parameters<Runtime['logs']>[1] = {}): Promise<LogLine[]> => {
    const out: LogLine[] = [];
    for await (const l of rt.logs(id, o)) out.push(l);
    return out;
  };
  const text = (ls: LogLine[]): string[] => ls.map((l) => l.line.toString().trimEnd());

  it('a task writing as fast as it can stays within max-size × max-file, and the files go with the container', async () => {
    const maxSize = 64 * 1024;
    const maxFiles = 3;
    await run('tss-lg-yes', { command: ['yes', 'tsswarm log rotation'], log: { kind: 'file', maxSize, maxFiles } });
    const d = cdir('tss-lg-yes');
    const lives = new Set<number>();
    let worst = { files: 0, bytes: 0, largest: 0 };
    // Until conmon has switched files 30 times (each switch is a new inode at ctr.log), sampling the disk all along.
    await until(
      '30 log rotations',
      () => {
        const s = onDisk(d);
        if (s.bytes > worst.bytes) worst = s;
        if (s.largest > worst.largest) worst = { ...worst, largest: s.largest };
        try {
          lives.add(statSync(join(d, 'ctr.log')).ino);
        } catch {
          /* between conmon's open and rename */
        }
        return lives.size >= 30;
      },
      { timeoutMs: 60_000, everyMs: 5 },
    );
    await rt.stop('tss-lg-yes', 5000);
    console.log(
      `fast writer: at most ${worst.bytes} bytes in ${worst.files} files on disk (bound ${maxSize * maxFiles}), largest file ${worst.largest}`,
    );
    // conmon never writes a file past its size; at most max-file + 2 of them exist however far the rotator lags.
    const fileSize = conmonFileSize(maxSize, maxFiles);
    expect(worst.largest).toBeLessThanOrEqual(fileSize);
    expect(worst.bytes).toBeLessThanOrEqual(maxSize * maxFiles);
    await until('the rotator settles after the stop', () => onDisk(d).files <= maxFiles, { timeoutMs: 5000 });
    const end = onDisk(d);
    expect(end.files).toBe(maxFiles);
    expect(end.bytes).toBeGreaterThan(fileSize * (maxFiles - 1));
    // What is kept reads back as whole lines, oldest file first.
    const lines = text(await read('tss-lg-yes'));
    expect(lines.length).toBeGreaterThan(1000);
    // The oldest file may begin with the end of a line whose start was in a dropped file (conmon splits long writes into partial records).
    const odd = lines.flatMap((l, i) => (l === 'tsswarm log rotation' ? [] : [`${i}:${l}`]));
    expect(odd.filter((x) => !x.startsWith('0:'))).toEqual([]);
    await rt.remove('tss-lg-yes');
    expect(existsSync(d)).toBe(false);
  });

  it('reads every line in order across rotations, with and without follow; tail counts across files', async () => {
    // 3000 numbered lines (about 160 KB of records) in batches, so the files rotate several times while a follower reads.
    const script = 'i=0; while [ $i -lt 3000 ]; do echo line$i; i=$((i+1)); [ $((i % 100)) -eq 0 ] && usleep 30000; done; echo done >&2';
    await run('tss-lg-seq', { command: ['sh', '-c', script], log: { kind: 'file', maxSize: 32 * 1024, maxFiles: 20 } });
    const want = [...Array.from({ length: 3000 }, (_, i) => `line${i}`), 'done'];
    const followed = text(await read('tss-lg-seq', { follow: true }));
    expect(followed).toEqual(want);
    const d = cdir('tss-lg-seq');
    expect(readdirSync(d).filter((n) => /^ctr\.log\.\d+$/.test(n)).length).toBeGreaterThanOrEqual(3);
    expect(text(await read('tss-lg-seq'))).toEqual(want);
    expect(text(await read('tss-lg-seq', { tail: 1500 }))).toEqual(want.slice(-1500));
  });

  it('since and until keep the lines written in [since, until)', async () => {
    await run('tss-lg-time', { command: ['sh', '-c', 'echo early; sleep 1; echo late'] });
    const all = await until('both lines', async () => {
      const ls = await read('tss-lg-time');
      return ls.length === 2 ? ls : null;
    });
    expect(text(all)).toEqual(['early', 'late']);
    const [a, b] = all as [LogLine, LogLine];
    expect(b.time).toBeGreaterThan(a.time);
    expect(text(await read('tss-lg-time', { since: b.time }))).toEqual(['late']);
    expect(text(await read('tss-lg-time', { until: b.time }))).toEqual(['early']);
    expect(text(await read('tss-lg-time', { since: a.time, until: a.time + 1 }))).toEqual(['early']);
    expect(text(await read('tss-lg-time', { since: b.time + 1 }))).toEqual([]);
  });

  it('a new Runtime on the same root (a restarted agent) goes on rotating the containers it adopts', async () => {
    const maxFiles = 2;
    await run('tss-lg-adopt', {
      command: ['sh', '-c', 'while true; do echo tsswarm adoption line; done'],
      log: { kind: 'file', maxSize: 32 * 1024, maxFiles },
    });
    const d = cdir('tss-lg-adopt');
    const ino = (n: string): number | undefined => {
      try {
        return statSync(join(d, n)).ino;
      } catch {
        return undefined;
      }
    };
    await until('a first rotation', () => ino('ctr.log.1') !== undefined, { timeoutMs: 30_000 });
    rt.close(); // the agent goes; conmon and the container stay
    const before = ino('ctr.log.1');
    const rt2 = new Runtime({ root: join(dir, 'root'), logger: log });
    try {
      await rt2.init();
      await until('ctr.log.1 replaced by the new Runtime', () => ino('ctr.log.1') !== undefined && ino('ctr.log.1') !== before, {
        timeoutMs: 30_000,
      });
      await rt2.stop('tss-lg-adopt', 5000);
      await until('the rotator settles after the stop', () => onDisk(d).files <= maxFiles, { timeoutMs: 5000 });
    } finally {
      rt2.close();
      rt = new Runtime({ root: join(dir, 'root'), logger: log });
      env.rt = rt;
      await rt.init();
    }
  });

  it('the none driver keeps nothing, and reading says so', async () => {
    await run('tss-lg-none', { command: ['sh', '-c', 'echo lost; sleep 30'], log: { kind: 'none' } });
    await expect(read('tss-lg-none')).rejects.toThrow(/^configured logging driver does not support reading/);
    expect(readdirSync(cdir('tss-lg-none')).filter((n) => n.startsWith('ctr.log'))).toEqual([]);
  });
});
