// A small DER encoder and strict DER parser: just the ASN.1 that X.509
// certificates and PKCS#10 requests need. Node's crypto signs and verifies
// but cannot build either, and this keeps the CA free of dependencies.
// The parser refuses anything that is not canonical DER, because signatures
// are checked over exact bytes, and it reads input from strangers (CSRs at
// join, peer certificates) so every pass is linear and capped (DER_LIMITS).
import { TsswarmError } from '../lib/errors.js';

/** Malformed or oversized DER or PEM: the caller sent something we will not read. */
export class Asn1Error extends TsswarmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_ARGUMENT', message, options);
  }
}

/**
 * Caps on what the parser reads. A node certificate or CSR is well under
 * 1 KiB; the caps leave room for other tools' certificates while keeping
 * every parse small and its tree shallow.
 */
export const DER_LIMITS = {
  /** Bytes of one DER document (a certificate, a CSR). */
  maxBytes: 64 * 1024,
  /** Nesting of constructed elements; X.509 needs about 8. */
  maxDepth: 32,
  /** Content bytes of one OBJECT IDENTIFIER; each arc must also fit in 2^53. */
  maxOidBytes: 64,
  /** Characters of PEM text looked at, checked before any regex or base64 work. */
  maxPemChars: 256 * 1024,
} as const;

let workDone = 0;

/**
 * A running count of the parser's unit steps (element headers and length
 * bytes read, OID, string and PEM characters scanned). Tests take the
 * difference around a parse to prove the work is linear in the input size,
 * which wall-clock time on a shared machine cannot.
 */
export function parserWork(): number {
  return workDone;
}

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

// ------------------------------------------------------------------ encoding

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One element: identifier octet, definite length, content. */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export function sequence(...items: Buffer[]): Buffer {
  return tlv(Tag.SEQUENCE, Buffer.concat(items));
}

/** SET OF: DER wants the encodings in ascending byte order. */
export function setOf(...items: Buffer[]): Buffer {
  return tlv(Tag.SET, Buffer.concat([...items].sort(Buffer.compare)));
}

/** A non-negative INTEGER from a bigint or an unsigned big-endian magnitude. */
export function integer(v: bigint | number | Buffer): Buffer {
  let mag: Buffer;
  if (Buffer.isBuffer(v)) {
    mag = v;
  } else {
    const n = BigInt(v);
    if (n < 0n) throw new Asn1Error('negative INTEGERs are not supported');
    const hex = n.toString(16);
    mag = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  }
  let i = 0;
  while (i < mag.length - 1 && mag[i] === 0) i++;
  mag = mag.subarray(i);
  if (mag.length === 0) mag = Buffer.from([0]);
  if ((mag[0]! & 0x80) !== 0) mag = Buffer.concat([Buffer.from([0]), mag]);
  return tlv(Tag.INTEGER, mag);
}

export function boolean(v: boolean): Buffer {
  return tlv(Tag.BOOLEAN, Buffer.from([v ? 0xff : 0x00]));
}

export function nullValue(): Buffer {
  return tlv(Tag.NULL, Buffer.alloc(0));
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map((p) => {
    if (!/^\d+$/.test(p)) throw new Asn1Error(`bad OID ${dotted}`);
    return BigInt(p);
  });
  if (parts.length < 2 || parts[0]! > 2n) throw new Asn1Error(`bad OID ${dotted}`);
  const arcs = [parts[0]! * 40n + parts[1]!, ...parts.slice(2)];
  const out: number[] = [];
  for (const arc of arcs) {
    const group: number[] = [Number(arc & 0x7fn)];
    for (let v = arc >> 7n; v > 0n; v >>= 7n) group.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...group);
  }
  return tlv(Tag.OID, Buffer.from(out));
}

export function utf8String(s: string): Buffer {
  return tlv(Tag.UTF8_STRING, Buffer.from(s, 'utf8'));
}

export function ia5String(s: string): Buffer {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: IA5 is all of ASCII, control characters included
  if (!/^[\x00-\x7f]*$/.test(s)) throw new Asn1Error(`IA5String must be ASCII (got ${JSON.stringify(s)})`);
  return tlv(Tag.IA5_STRING, Buffer.from(s, 'latin1'));
}

export function octetString(b: Buffer): Buffer {
  return tlv(Tag.OCTET_STRING, b);
}

/** BIT STRING of whole bytes (keys, signatures). */
export function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(Tag.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

/**
 * A named-bit BIT STRING (KeyUsage): bit 0 is the most significant bit of the
 * first byte, and DER drops trailing zero bits.
 */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) return bitString(Buffer.alloc(0));
  const max = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(max / 8) + 1);
  for (const b of bits) bytes[Math.floor(b / 8)]! |= 0x80 >> (b % 8);
  return bitString(bytes, 7 - (max % 8));
}

/** X.509 Time: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
export function time(d: Date): Buffer {
  const t = d.getTime();
  if (!Number.isFinite(t)) throw new Asn1Error('invalid date');
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const year = d.getUTCFullYear();
  const rest = iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
  if (year >= 1950 && year < 2050) return tlv(Tag.UTC_TIME, Buffer.from(String(year % 100).padStart(2, '0') + rest, 'latin1'));
  if (year < 0 || year > 9999) throw new Asn1Error(`year ${year} cannot be encoded`);
  return tlv(Tag.GENERALIZED_TIME, Buffer.from(String(year).padStart(4, '0') + rest, 'latin1'));
}

/** [n] EXPLICIT: a constructed context tag wrapping one element. */
export function explicit(n: number, inner: Buffer): Buffer {
  return tlv(0xa0 | n, inner);
}

/** [n] IMPLICIT: the context tag replaces the element's own tag. */
export function implicit(n: number, content: Buffer, constructed = false): Buffer {
  return tlv((constructed ? 0xa0 : 0x80) | n, content);
}

// ------------------------------------------------------------------ parsing

export interface Element {
  /** The identifier octet (class, constructed bit, tag number). */
  tag: number;
  /** The element's content octets. */
  content: Buffer;
  /** The whole element, identifier and length included (what signatures cover). */
  raw: Buffer;
}

function readElement(buf: Buffer, pos: number): { el: Element; end: number } {
  workDone++;
  if (pos >= buf.length) throw new Asn1Error('unexpected end of data');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new Asn1Error('multi-byte tags are not supported');
  let p = pos + 1;
  if (p >= buf.length) throw new Asn1Error('unexpected end of data in length');
  const first = buf[p++]!;
  let len: number;
  if (first < 0x80) {
    len = first;
  } else {
    const n = first & 0x7f;
    if (n === 0) throw new Asn1Error('indefinite length is not DER');
    if (n > 4) throw new Asn1Error(`a length of ${n} bytes is too long: at most 4 length bytes are accepted`);
    if (p + n > buf.length) throw new Asn1Error('unexpected end of data in length');
    if (buf[p] === 0) throw new Asn1Error('non-minimal length encoding');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
    workDone += n;
    if (len < 0x80) throw new Asn1Error('non-minimal length encoding');
  }
  // Checked against what is left before anything is cut or copied: a declared
  // 4 GiB length costs nothing.
  if (len > buf.length - p) throw new Asn1Error(`element length ${len} runs past the end of the data (${buf.length - p} bytes left)`);
  const end = p + len;
  return { el: { tag, content: buf.subarray(p, end), raw: buf.subarray(pos, end) }, end };
}

/** The children of constructed elements, read once by parse()'s walk and handed out by children(). */
const childCache = new WeakMap<Element, Element[]>();

function readChildren(el: Element): Element[] {
  const out: Element[] = [];
  let pos = 0;
  while (pos < el.content.length) {
    const r = readElement(el.content, pos);
    out.push(r.el);
    pos = r.end;
  }
  return out;
}

/**
 * Parses exactly one element that fills `buf`, and walks its whole tree once
 * (iteratively, so deep input cannot overflow the stack) to refuse input over
 * DER_LIMITS before any caller looks inside.
 */
export function parse(buf: Buffer): Element {
  if (buf.length > DER_LIMITS.maxBytes)
    throw new Asn1Error(`DER data of ${buf.length} bytes is too large: at most ${DER_LIMITS.maxBytes} bytes are accepted`);
  const { el, end } = readElement(buf, 0);
  if (end !== buf.length) throw new Asn1Error(`${buf.length - end} bytes of trailing data`);
  const stack: Array<{ el: Element; depth: number }> = [{ el, depth: 1 }];
  for (let top = stack.pop(); top; top = stack.pop()) {
    if ((top.el.tag & 0x20) === 0) continue;
    if (top.depth > DER_LIMITS.maxDepth) throw new Asn1Error(`elements are nested more than ${DER_LIMITS.maxDepth} deep`);
    const kids = readChildren(top.el);
    childCache.set(top.el, kids);
    for (const k of kids) stack.push({ el: k, depth: top.depth + 1 });
  }
  return el;
}

/** The elements inside a constructed element. */
export function children(el: Element): Element[] {
  if ((el.tag & 0x20) === 0) throw new Asn1Error(`element with tag 0x${el.tag.toString(16)} is not constructed`);
  const cached = childCache.get(el);
  if (cached) return cached;
  // An element not made by parse() (built by hand): read it now, and only this level.
  const kids = readChildren(el);
  childCache.set(el, kids);
  return kids;
}

export function expectTag(el: Element | undefined, tag: number, what: string): Element {
  if (!el) throw new Asn1Error(`${what} is missing`);
  if (el.tag !== tag) throw new Asn1Error(`${what}: expected tag 0x${tag.toString(16)}, found 0x${el.tag.toString(16)}`);
  return el;
}

/** Children of a SEQUENCE (or of another constructed tag). */
export function expectSequence(el: Element | undefined, what: string, tag: number = Tag.SEQUENCE): Element[] {
  return children(expectTag(el, tag, what));
}

/** The magnitude of a non-negative INTEGER, minimal (no sign byte). */
export function readUnsignedInteger(el: Element | undefined, what: string): Buffer {
  const c = expectTag(el, Tag.INTEGER, what).content;
  if (c.length === 0) throw new Asn1Error(`${what}: empty INTEGER`);
  if (c.length > 1 && ((c[0] === 0 && (c[1]! & 0x80) === 0) || (c[0] === 0xff && (c[1]! & 0x80) !== 0))) {
    throw new Asn1Error(`${what}: non-minimal INTEGER`);
  }
  if ((c[0]! & 0x80) !== 0) throw new Asn1Error(`${what}: negative INTEGER`);
  return c[0] === 0 && c.length > 1 ? c.subarray(1) : c;
}

export function readSmallInteger(el: Element | undefined, what: string): number {
  const mag = readUnsignedInteger(el, what);
  if (mag.length > 4) throw new Asn1Error(`${what}: INTEGER too large`);
  return mag.reduce((n, b) => n * 256 + b, 0);
}

export function readOid(el: Element | undefined, what: string): string {
  const c = expectTag(el, Tag.OID, what).content;
  if (c.length > DER_LIMITS.maxOidBytes)
    throw new Asn1Error(`${what}: an OID of ${c.length} bytes is too long (at most ${DER_LIMITS.maxOidBytes})`);
  workDone += c.length;
  if (c.length === 0 || (c[c.length - 1]! & 0x80) !== 0) throw new Asn1Error(`${what}: malformed OID`);
  const arcs: number[] = [];
  let v = 0;
  let start = true;
  for (const b of c) {
    if (start && b === 0x80) throw new Asn1Error(`${what}: non-minimal OID arc`);
    // Plain numbers, not bigints: an arc past 2^53 is refused rather than grown.
    if (v > (Number.MAX_SAFE_INTEGER - 0x7f) / 0x80) throw new Asn1Error(`${what}: an OID arc is larger than 2^53`);
    v = v * 0x80 + (b & 0x7f);
    start = (b & 0x80) === 0;
    if (start) {
      arcs.push(v);
      v = 0;
    }
  }
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

export function readBoolean(el: Element | undefined, what: string): boolean {
  const c = expectTag(el, Tag.BOOLEAN, what).content;
  if (c.length !== 1 || (c[0] !== 0 && c[0] !== 0xff)) throw new Asn1Error(`${what}: malformed BOOLEAN`);
  return c[0] === 0xff;
}

/** The bytes of a BIT STRING with no unused bits (keys, signatures). */
export function readBitStringBytes(el: Element | undefined, what: string): Buffer {
  const c = expectTag(el, Tag.BIT_STRING, what).content;
  if (c.length === 0 || c[0] !== 0) throw new Asn1Error(`${what}: expected a BIT STRING of whole bytes`);
  return c.subarray(1);
}

/** The set bit numbers of a named-bit BIT STRING. */
export function readNamedBits(el: Element | undefined, what: string): number[] {
  const c = expectTag(el, Tag.BIT_STRING, what).content;
  if (c.length === 0 || c[0]! > 7 || (c.length === 1 && c[0] !== 0)) throw new Asn1Error(`${what}: malformed BIT STRING`);
  const bits: number[] = [];
  for (let i = 1; i < c.length; i++) {
    for (let j = 0; j < 8; j++) if ((c[i]! & (0x80 >> j)) !== 0) bits.push((i - 1) * 8 + j);
  }
  return bits;
}

const stringTags = new Set<number>([Tag.UTF8_STRING, Tag.PRINTABLE_STRING, Tag.IA5_STRING, Tag.T61_STRING, Tag.BMP_STRING]);

/** A directory string (UTF8String, PrintableString, IA5String, BMPString, T61String as Latin-1). */
export function readString(el: Element | undefined, what: string): string {
  if (!el) throw new Asn1Error(`${what} is missing`);
  if (!stringTags.has(el.tag)) throw new Asn1Error(`${what}: expected a string, found tag 0x${el.tag.toString(16)}`);
  workDone += el.content.length;
  if (el.tag === Tag.BMP_STRING) {
    if (el.content.length % 2) throw new Asn1Error(`${what}: malformed BMPString`);
    return Buffer.from(el.content).swap16().toString('utf16le');
  }
  if (el.tag === Tag.UTF8_STRING) {
    const s = el.content.toString('utf8');
    if (!Buffer.from(s, 'utf8').equals(el.content)) throw new Asn1Error(`${what}: invalid UTF-8`);
    return s;
  }
  return el.content.toString('latin1');
}

export function readTime(el: Element | undefined, what: string): Date {
  if (!el) throw new Asn1Error(`${what} is missing`);
  if (el.content.length > 15)
    throw new Asn1Error(`${what}: a time of ${el.content.length} bytes is malformed (want YYMMDDHHMMSSZ or YYYYMMDDHHMMSSZ)`);
  const s = el.content.toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (el.tag === Tag.UTC_TIME && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (el.tag === Tag.GENERALIZED_TIME && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    year = Number(m[1]);
  } else {
    throw new Asn1Error(`${what}: malformed time ${JSON.stringify(s)}`);
  }
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  const t = Date.UTC(year, mo - 1, d, h, mi, se);
  const back = new Date(t);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
    throw new Asn1Error(`${what}: invalid date ${JSON.stringify(s)}`);
  }
  return back;
}

// ------------------------------------------------------------------ PEM

/** The DER of the first PEM block with this label (`CERTIFICATE`, `CERTIFICATE REQUEST`). */
export function pemToDer(pem: string, label: string): Buffer {
  if (pem.length > DER_LIMITS.maxPemChars)
    throw new Asn1Error(`PEM text of ${pem.length} characters is too long: at most ${DER_LIMITS.maxPemChars} are read`);
  workDone += pem.length;
  // indexOf, not a lazy regex: a regex retries from every BEGIN line that has
  // no END after it, which is quadratic in crafted input.
  const begin = `-----BEGIN ${label}-----`;
  const endMark = `-----END ${label}-----`;
  const b = pem.indexOf(begin);
  if (b < 0) throw new Asn1Error(`no "${begin}" block found`);
  const e = pem.indexOf(endMark, b + begin.length);
  if (e < 0) throw new Asn1Error(`the ${label} PEM block has no "${endMark}" line`);
  const b64 = pem.slice(b + begin.length, e).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new Asn1Error(`the ${label} PEM block is not valid base64`);
  const size = (b64.length / 4) * 3;
  if (size > DER_LIMITS.maxBytes + 2)
    throw new Asn1Error(`the ${label} PEM block holds about ${size} bytes: at most ${DER_LIMITS.maxBytes} are accepted`);
  const der = Buffer.from(b64, 'base64');
  if (der.length === 0) throw new Asn1Error(`the ${label} PEM block is empty`);
  return der;
}

/**
 * The DER of every PEM block with this label, in order: a trust bundle of
 * several roots, or a certificate followed by its chain. At most `max` blocks
 * are read; text between blocks is ignored, as openssl does.
 */
export function pemBlocksToDer(pem: string, label: string, max = 16): Buffer[] {
  if (pem.length > DER_LIMITS.maxPemChars)
    throw new Asn1Error(`PEM text of ${pem.length} characters is too long: at most ${DER_LIMITS.maxPemChars} are read`);
  const begin = `-----BEGIN ${label}-----`;
  const endMark = `-----END ${label}-----`;
  const out: Buffer[] = [];
  for (let at = pem.indexOf(begin); at >= 0; at = pem.indexOf(begin, at)) {
    if (out.length >= max) throw new Asn1Error(`more than ${max} ${label} PEM blocks: at most ${max} are read`);
    const e = pem.indexOf(endMark, at + begin.length);
    if (e < 0) throw new Asn1Error(`the ${label} PEM block has no "${endMark}" line`);
    out.push(pemToDer(pem.slice(at, e + endMark.length), label));
    at = e + endMark.length;
  }
  if (out.length === 0) throw new Asn1Error(`no "${begin}" block found`);
  return out;
}

export function derToPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}
