// native/libc.ts loadFfi: ffi-rs loads without the diagnostic report its
// loader would generate to tell glibc from musl (the C library mapped into
// the process answers that), and process.report is left as it was; and
// releaseFreeHeap hands the C heap's free pages back where glibc runs.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadFfi, nativeAvailable, releaseFreeHeap } from '../../native/libc.js';

// This file runs in its own process (vitest forks per file): nothing has loaded ffi-rs yet.
const real = Object.getOwnPropertyDescriptor(process, 'report')!;
let reports = 0;
const spy: PropertyDescriptor = {
  configurable: true,
  enumerable: true,
  get() {
    const r = real.get!.call(process) as NodeJS.ProcessReport;
    const getReport: NodeJS.ProcessReport['getReport'] = (...a) => {
      reports++;
      return r.getReport(...a);
    };
    return { ...r, getReport };
  },
};

/** Loads ffi-rs with `spy` standing in for process.report; what loadFfi returned or threw, and process.report after. */
function loadWatched(): { loaded?: unknown; error?: unknown; after?: PropertyDescriptor } {
  Object.defineProperty(process, 'report', spy);
  try {
    return { loaded: loadFfi(), after: Object.getOwnPropertyDescriptor(process, 'report') };
  } catch (error) {
    return { error };
  } finally {
    Object.defineProperty(process, 'report', real);
  }
}
const { loaded, error: loadError, after } = loadWatched();
const glibc = /\/libc\.so\.6$/m.test(readFileSync('/proc/self/maps', 'utf8'));

describe.skipIf(loadError !== undefined)(`loadFfi${loadError ? ` (skipped: ${(loadError as Error).message})` : ''}`, () => {
  it('loads ffi-rs once, without generating a report, and puts process.report back', () => {
    expect(reports).toBe(0);
    expect(after).toEqual(spy);
    expect(loadFfi()).toBe(loaded);
    expect(typeof (loaded as { load?: unknown }).load).toBe('function');
  });

  it.skipIf(!glibc || !nativeAvailable().ok)('releaseFreeHeap calls malloc_trim on glibc', () => {
    // Garbage on the C heap first, so there is something to return.
    for (let i = 0; i < 64; i++) Buffer.allocUnsafeSlow(64 * 1024).fill(i);
    expect(typeof releaseFreeHeap()).toBe('boolean');
  });
});
