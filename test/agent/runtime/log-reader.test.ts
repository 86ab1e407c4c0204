// The log reader's bounds: conmon's partial records joined into lines of at
// most 16 KiB (a container that never writes a newline cannot make a reader
// hold its whole output), and `--tail N` holding at most N lines and 8 MiB.
import { describe, expect, it } from 'vitest';
import { K8sFileParser, MAX_LOG_LINE_BYTES, TAIL_MAX_BYTES, TailRing } from '../../../agent/runtime/runtime.js';
import type { LogLine } from '../../../agent/runtime/types.js';

const rec = (stream: string, flag: 'P' | 'F', text: string): string => `2026-01-02T03:04:05.000000000Z ${stream} ${flag} ${text}\n`;

describe('conmon records into lines', () => {
  it('joins partial records into one line, and a full record ends it', () => {
    const p = new K8sFileParser();
    expect(p.push(Buffer.from(rec('stdout', 'P', 'hel') + rec('stdout', 'P', 'lo ')))).toEqual([]);
    const out = p.push(Buffer.from(rec('stdout', 'F', 'world')));
    expect(out.map((l) => l.line.toString())).toEqual(['hello world\n']);
  });

  it('output without newlines comes in lines of at most 16 KiB, nothing lost, nothing held past the bound', () => {
    const p = new K8sFileParser();
    const chunk = 'x'.repeat(8000);
    const lines: LogLine[] = [];
    // 100 partial records of 8000 bytes: 800 kB with no newline at all.
    for (let i = 0; i < 100; i++) lines.push(...p.push(Buffer.from(rec('stdout', 'P', chunk))));
    expect(lines.length).toBeGreaterThan(40);
    for (const l of lines) expect(l.line.length).toBeLessThanOrEqual(MAX_LOG_LINE_BYTES + 1);
    lines.push(...p.push(Buffer.from(rec('stdout', 'F', 'end'))));
    expect(lines.map((l) => l.line.toString().slice(0, -1)).join('')).toBe(`${chunk.repeat(100)}end`);
  });

  it('never splits a UTF-8 character at the bound', () => {
    const p = new K8sFileParser();
    const text = 'é'.repeat(MAX_LOG_LINE_BYTES); // 2 bytes each
    const out = p.push(Buffer.from(rec('stdout', 'F', text)));
    expect(out.length).toBe(2);
    for (const l of out) expect(l.line.toString()).toMatch(/^é+\n$/);
    expect(out.map((l) => l.line.toString().slice(0, -1)).join('')).toBe(text);
  });

  it('a partial line of one stream is not lost when the other stream writes', () => {
    const p = new K8sFileParser();
    const out = p.push(Buffer.from(rec('stdout', 'P', 'half') + rec('stderr', 'F', 'oops')));
    expect(out.map((l) => [l.stream, l.line.toString()])).toEqual([
      ['stdout', 'half\n'],
      ['stderr', 'oops\n'],
    ]);
  });
});

describe('--tail N', () => {
  const line = (s: string): LogLine => ({ stream: 'stdout', time: 0, line: Buffer.from(`${s}\n`) });

  it('keeps the last N lines', () => {
    const t = new TailRing(3, TAIL_MAX_BYTES);
    for (let i = 0; i < 5000; i++) t.push(line(String(i)));
    expect(t.lines().map((l) => l.line.toString())).toEqual(['4997\n', '4998\n', '4999\n']);
  });

  it('a huge N holds no more than the byte budget, the newest lines kept', () => {
    const t = new TailRing(2 ** 32 - 1, 1024 * 1024);
    const big = 'y'.repeat(1000);
    for (let i = 0; i < 20_000; i++) {
      t.push(line(`${i} ${big}`));
      expect(t.size).toBeLessThanOrEqual(1024 * 1024);
    }
    const kept = t.lines();
    expect(kept.length).toBeGreaterThan(900);
    expect(kept.length).toBeLessThan(1100);
    expect(kept.at(-1)!.line.toString()).toMatch(/^19999 /);
  });
});
