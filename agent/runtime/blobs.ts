// The image store's guards against what an archive or a registry sends: digest
// form checks, size caps, capped JSON reads, and streams that hash and count
// what passes through them, so no blob, layer or document is ever held whole.
import { createHash, randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { TsswarmError } from '../../lib/errors.js';

/** Caps on one load or pull; every one of them fails the operation with an error naming it. */
export interface ImageLimits {
  /** A compressed blob (a layer as stored, a registry blob, an archive member). */
  maxBlobBytes: number;
  /** A layer's uncompressed tar (zip bombs stop here). */
  maxLayerBytes: number;
  /** Everything one load or pull reads and writes: archive members plus uncompressed layers. */
  maxLoadBytes: number;
  /** Entries in one layer. */
  maxLayerEntries: number;
  /** Entries in one archive given to `image load`. */
  maxArchiveEntries: number;
  /** Layers in one image. */
  maxLayers: number;
  /** Each JSON document (index, manifest, config, manifest.json). */
  maxJsonBytes: number;
}

const GiB = 1024 ** 3;
export const DEFAULT_IMAGE_LIMITS: Readonly<ImageLimits> = Object.freeze({
  maxBlobBytes: 8 * GiB,
  maxLayerBytes: 16 * GiB,
  maxLoadBytes: 32 * GiB,
  maxLayerEntries: 1_000_000,
  maxArchiveEntries: 100_000,
  maxLayers: 256,
  maxJsonBytes: 4 * 1024 * 1024,
});

/** A cap was hit. The message names the cap; it is a constant, set through ImageStore's `limits`. */
export class ImageCapError extends TsswarmError {
  constructor(
    readonly cap: keyof ImageLimits,
    what: string,
    limit: number,
  ) {
    const unit = cap === 'maxLayerEntries' || cap === 'maxArchiveEntries' || cap === 'maxLayers' ? '' : ' bytes';
    super(
      'INVALID_ARGUMENT',
      `${what} exceeds the image store's ${cap} cap of ${limit}${unit} (a constant: raise limits.${cap} of the agent's ImageStore if the image is genuine)`,
    );
  }
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** `sha256:` and 64 lowercase hex digits, or an error naming `field`; returns the hex. */
export function checkDigest(value: unknown, field: string): string {
  if (typeof value !== 'string' || !DIGEST_RE.test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : typeof value;
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `${field} must be a digest of the form sha256:<64 lowercase hex digits> (got ${shown}): the image is malformed`,
    );
  }
  return value.slice(7);
}

export const isDigest = (v: unknown): v is string => typeof v === 'string' && DIGEST_RE.test(v);

/** A name no archive or registry chose: scratch directories and staged files. */
export const randomName = (): string => randomBytes(12).toString('hex');

/** Counts bytes against a cap shared by several streams (the per-load total). */
export class ByteBudget {
  used = 0;
  constructor(
    private readonly limit: number,
    private readonly cap: keyof ImageLimits,
    private readonly what: string,
  ) {}
  take(n: number): void {
    this.used += n;
    if (this.used > this.limit) throw new ImageCapError(this.cap, this.what, this.limit);
  }
}

/**
 * Passes `input` on, hashing and counting it; throws an ImageCapError once more
 * than `max` bytes went by (the bytes past the cap are never passed on).
 */
export async function* metered(
  input: AsyncIterable<Buffer>,
  o: { max: number; cap: keyof ImageLimits; what: string; budget?: ByteBudget; onDone?: (hex: string, bytes: number) => void },
): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let n = 0;
  for await (const chunk of input) {
    n += chunk.length;
    if (n > o.max) throw new ImageCapError(o.cap, o.what, o.max);
    o.budget?.take(chunk.length);
    hash.update(chunk);
    yield chunk;
  }
  o.onDone?.(hash.digest('hex'), n);
}

/** Writes `input` to a new file at `path` (exclusive create), returning its sha256 hex and length. */
export async function writeFileStream(input: AsyncIterable<Buffer>, path: string): Promise<{ hex: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  const out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const c of input) {
      hash.update(c);
      bytes += c.length;
      yield c;
    }
  };
  await new Promise<void>((resolve, reject) => pipeline(Readable.from(counted()), out, (e) => (e ? reject(e) : resolve())));
  return { hex: hash.digest('hex'), bytes };
}

/**
 * A regular file opened for streaming, refused when it is anything else: a
 * FIFO or device in a layout directory must not block or feed the store forever.
 */
export async function openRegular(path: string, what: string): Promise<{ stream: Readable; size: number }> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK).catch((e: NodeJS.ErrnoException) => {
    throw new TsswarmError('INVALID_ARGUMENT', `${what} (${path}) cannot be opened: ${e.code ?? e.message}`);
  });
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new TsswarmError('INVALID_ARGUMENT', `${what} (${path}) is not a regular file`);
  }
  return { stream: fh.createReadStream({ autoClose: true }), size: st.size };
}

/** Reads a JSON document from a stream, refusing more than `max` bytes; the text and its sha256 hex. */
export async function readCapped(
  input: AsyncIterable<Buffer | Uint8Array>,
  max: number,
  what: string,
): Promise<{ buf: Buffer; hex: string }> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of input) {
    n += c.length;
    if (n > max) throw new ImageCapError('maxJsonBytes', what, max);
    parts.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  }
  const buf = Buffer.concat(parts);
  return { buf, hex: createHash('sha256').update(buf).digest('hex') };
}

export function parseJson(buf: Buffer, what: string): unknown {
  try {
    return JSON.parse(buf.toString('utf8')) as unknown;
  } catch (e) {
    throw new TsswarmError('INVALID_ARGUMENT', `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The bytes of `input`, gunzipped when they start with gzip's magic number. */
export async function* maybeGunzip(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let have = 0;
  let done = false;
  while (have < 2) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head.push(r.value);
    have += r.value.length;
  }
  const first = Buffer.concat(head);
  const rest = async function* (): AsyncGenerator<Buffer> {
    if (first.length) yield first;
    if (done) return;
    for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
  };
  if (!(first[0] === 0x1f && first[1] === 0x8b)) {
    yield* rest();
    return;
  }
  const gunzip = createGunzip();
  const src = Readable.from(rest());
  const out = pipeline(src, gunzip, () => {
    /* errors reach the reader through the destroyed stream */
  });
  try {
    for await (const c of out) yield c as Buffer;
  } finally {
    src.destroy();
    gunzip.destroy();
    await it.return?.();
  }
}

// Shape checks for the JSON documents an image is described by: a wrong type is
// an error naming the field, never a TypeError deep in the store.

export type Json = unknown;
export function asObject(v: Json, field: string): Record<string, Json> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new TsswarmError('INVALID_ARGUMENT', `${field} must be a JSON object: the image is malformed`);
  return v as Record<string, Json>;
}
export function asArray(v: Json, field: string): Json[] {
  if (!Array.isArray(v)) throw new TsswarmError('INVALID_ARGUMENT', `${field} must be a JSON array: the image is malformed`);
  return v;
}
export function asString(v: Json, field: string): string {
  if (typeof v !== 'string') throw new TsswarmError('INVALID_ARGUMENT', `${field} must be a string: the image is malformed`);
  return v;
}
export function optStrings(v: Json, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  return asArray(v, field).map((x, i) => asString(x, `${field}[${i}]`));
}
export function optString(v: Json, field: string): string | undefined {
  return v === undefined || v === null ? undefined : asString(v, field);
}
export function optNumber(v: Json, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new TsswarmError('INVALID_ARGUMENT', `${field} must be a number ≥ 0: the image is malformed`);
  return v;
}
