import { describe, expect, it } from 'vitest';
import { ago, table } from '../../cli/table.js';

describe('table', () => {
  it('pads every column but the last to its widest cell, three spaces apart', () => {
    expect(
      table(
        ['ID', 'HOSTNAME', 'STATUS'],
        [
          ['abc', 'tss-h1', 'Ready'],
          ['d', 'h', 'Down'],
        ],
      ),
    ).toBe('ID    HOSTNAME   STATUS\nabc   tss-h1     Ready\nd     h          Down\n');
  });
  it('leaves no trailing blanks when the last cells are empty', () => {
    expect(table(['A', 'B'], [['x', '']])).toBe('A   B\nx\n');
  });
  it('says relative times as docker does', () => {
    expect(ago(0, 500)).toBe('Less than a second ago');
    expect(ago(0, 5_000)).toBe('5 seconds ago');
    expect(ago(0, 60_000)).toBe('About a minute ago');
    expect(ago(0, 3 * 3600_000)).toBe('3 hours ago');
  });
});
