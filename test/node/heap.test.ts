// node/heap.ts: the C heap's free pages are released once the collector has
// been quiet for a while (once for a run of collections), at most once per
// interval under a steady load, and the watch stops where releasing cannot
// be done.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { releaseHeapAfterGc } from '../../node/heap.js';
import { sleep, until } from '../lib/wait.js';

// The test drives the collections itself (the daemon never does).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (o?: { type: 'major' | 'minor' }) => void;

const QUIET = 50;
let stop: (() => void) | undefined;
afterEach(() => stop?.());

/** A watch whose releases are counted; `answer` is what each release returns. */
function watch(o: { quietMs?: number; minIntervalMs?: number; answer?: boolean | undefined } = {}): { calls: () => number } {
  let calls = 0;
  stop = releaseHeapAfterGc({
    release: () => {
      calls++;
      return 'answer' in o ? o.answer : true;
    },
    quietMs: o.quietMs ?? QUIET,
    minIntervalMs: o.minIntervalMs ?? 0,
  });
  return { calls: () => calls };
}

describe('releaseHeapAfterGc', () => {
  it('releases once after a run of collections, full or not', async () => {
    // A long interval: a collection of the test runner's own cannot add a release.
    const w = watch({ minIntervalMs: 60_000 });
    gc();
    gc({ type: 'minor' });
    gc();
    await until('a release after the collections', () => w.calls() > 0);
    await sleep(QUIET * 3);
    expect(w.calls()).toBe(1);
  });

  it('releases again after the next collections', async () => {
    const w = watch();
    gc({ type: 'minor' });
    await until('a release', () => w.calls() > 0);
    const n = w.calls();
    gc({ type: 'minor' });
    await until('another release', () => w.calls() > n);
  });

  it('waits while collections keep coming', async () => {
    const w = watch({ quietMs: 400 });
    for (let i = 0; i < 8; i++) {
      gc({ type: 'minor' });
      await sleep(30);
    }
    expect(w.calls()).toBe(0);
    await until('a release once they stop', () => w.calls() > 0);
  });

  it('releases at most once per interval', async () => {
    const w = watch({ minIntervalMs: 600 });
    gc();
    await until('the first release', () => w.calls() > 0);
    const t0 = performance.now();
    gc();
    await until('the second release', () => w.calls() > 1);
    expect(performance.now() - t0).toBeGreaterThan(400);
  });

  it('stops watching where releasing cannot be done', async () => {
    const w = watch({ answer: undefined });
    gc();
    await until('the first release', () => w.calls() > 0);
    gc();
    await sleep(QUIET * 4);
    expect(w.calls()).toBe(1);
  });

  it('stops when told to', async () => {
    const w = watch();
    stop!();
    gc();
    await sleep(QUIET * 4);
    expect(w.calls()).toBe(0);
  });
});
