// test/lib/wait.ts: `until` resolves with the first truthy value, retries
// through falsy values and thrown errors, and on timeout names what it waited
// for and the last error; `sleep` waits at least as long as asked.
import { describe, expect, it } from 'vitest';
import { sleep, until } from './wait.js';

describe('until', () => {
  it('resolves with the first truthy value, after falsy values and errors', async () => {
    const seen: number[] = [];
    let n = 0;
    const v = await until(
      'the third call',
      () => {
        seen.push(++n);
        if (n === 1) throw new Error('not yet');
        return n >= 3 ? { n } : 0;
      },
      { everyMs: 1 },
    );
    expect(v).toEqual({ n: 3 });
    expect(seen).toEqual([1, 2, 3]);
  });

  it('awaits an async condition', async () => {
    let n = 0;
    await expect(until('an async value', async () => (++n === 2 ? 'done' : ''), { everyMs: 1 })).resolves.toBe('done');
  });

  it('on timeout the error names what was awaited and the last error thrown', async () => {
    const start = Date.now();
    await expect(
      until(
        'the moon',
        () => {
          throw new Error('still night');
        },
        { timeoutMs: 50, everyMs: 5 },
      ),
    ).rejects.toThrow('timed out after 50 ms waiting for the moon: still night');
    expect(Date.now() - start).toBeGreaterThanOrEqual(45);
  });

  it('on timeout without any error the message names only what was awaited', async () => {
    await expect(until('a flag', () => false, { timeoutMs: 20, everyMs: 5 })).rejects.toThrow(/^timed out after 20 ms waiting for a flag$/);
  });
});

describe('sleep', () => {
  it('resolves after at least the given time', async () => {
    const start = performance.now();
    await sleep(30);
    expect(performance.now() - start).toBeGreaterThanOrEqual(29);
  });
});
