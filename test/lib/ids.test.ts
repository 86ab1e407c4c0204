// Object ids: fixed length, base-36, and no repeats in a large batch.
import { describe, expect, it } from 'vitest';
import { newId } from '../../lib/ids.js';

describe('newId', () => {
  it('gives 25 base-36 characters, with no repeat among 20,000 ids', () => {
    const ids = Array.from({ length: 20_000 }, newId);
    for (const id of ids) expect(id).toMatch(/^[0-9a-z]{25}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('uses every character of the alphabet in every position over many ids (no stuck bytes from the pool)', () => {
    const first = new Set(Array.from({ length: 5_000 }, () => newId()[0]));
    const last = new Set(Array.from({ length: 5_000 }, () => newId()[24]));
    expect(first.size).toBe(36);
    expect(last.size).toBe(36);
  });
});
