// Shared fixtures of the storage tests: entries with readable payloads, the
// record sizes the WAL format documents, temp directories, a log catcher and
// a seeded random source.
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Entry, EntryType } from '../../../../proto/gen/raft.js';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export function ent(index: number, term = 1, data = `e${index}`): Entry {
  return Entry.create({ index, term, type: EntryType.ENTRY_NORMAL, data: enc(data) });
}

export function ents(from: number, to: number, term = 1, tag = 'e'): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term, `${tag}${i}`));
  return out;
}

/** Entries as plain values, for exact comparison. */
export function view(es: readonly Entry[]): { index: number; term: number; data: string }[] {
  return es.map((e) => ({ index: e.index, term: e.term, data: dec(e.data) }));
}

/** Bytes of a WAL record whose body is n bytes (format: 8-byte header, kind byte, body, padding to 8). */
export function recordBytes(n: number): number {
  return (8 + 1 + n + 7) & ~7;
}

/** The segment header record: a 24-byte body. */
export const SEGMENT_HEADER_BYTES = recordBytes(24);

export function entryRecordBytes(e: Entry): number {
  return recordBytes(Entry.encode(e).length);
}

export async function tempDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'tss-wal-'));
}

/** A pino logger that keeps its lines as objects. */
export function captureLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

/** mulberry32: a small seeded generator, uniform in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator that returns the given values, then `rest`. */
export function scripted(values: number[], rest = 0.99): () => number {
  let i = 0;
  return () => (i < values.length ? values[i++]! : rest);
}
