// The DNS message format (RFC 1035, OPT from RFC 6891): parse a message, build
// a query or an answer to one. Pure functions over Buffers, no sockets; the
// embedded server and its tests are the only users.

/** Record types the embedded server reads or writes (others pass through as numbers). */
export const RRType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  ANY: 255,
} as const;

export const RCode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

export const CLASS_IN = 1;
export const OPCODE_QUERY = 0;
/** Largest UDP answer to a client that did not say it takes more (RFC 1035 4.2.1). */
export const CLASSIC_UDP_SIZE = 512;
/** What we advertise in our OPT record and the most we send over UDP (the DNS flag day 2020 value). */
export const EDNS_UDP_SIZE = 1232;

export interface Header {
  id: number;
  /** true in a response */
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  rcode: number;
}

export interface Question {
  /** Presentation form without the trailing dot (`tasks.web`, the root is ``), `\.` and `\DDD` escapes for odd bytes. */
  name: string;
  type: number;
  class: number;
}

export interface ResourceRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** RDATA as it was on the wire (names inside it may hold compression pointers into the message). */
  data: Buffer;
  /** Offset of `data` within the message, for decoding names inside it. */
  dataOffset: number;
}

export interface Message {
  header: Header;
  questions: Question[];
  answers: ResourceRecord[];
  authorities: ResourceRecord[];
  /** Additional records other than OPT. */
  additionals: ResourceRecord[];
  /** The sender's EDNS(0) UDP payload size; undefined when there was no OPT record. */
  ednsUdpSize: number | undefined;
}

/** A message that cannot be parsed; `id` is set when the header was readable (so FORMERR can be sent back). */
export class DnsFormatError extends Error {
  constructor(
    message: string,
    readonly id: number | undefined,
  ) {
    super(message);
    this.name = 'DnsFormatError';
  }
}

// ---------------------------------------------------------------- names

const MAX_NAME = 255;
const MAX_LABEL = 63;

/** Wire bytes of one label → presentation text (RFC 4343 escapes). */
function labelText(bytes: Buffer): string {
  let s = '';
  for (const b of bytes) {
    if (b === 0x2e || b === 0x5c) s += `\\${String.fromCharCode(b)}`;
    else if (b > 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += `\\${b.toString().padStart(3, '0')}`;
  }
  return s;
}

/** Presentation text → label byte arrays; a trailing dot is allowed. Throws on a malformed name. */
export function nameLabels(name: string): Buffer[] {
  const labels: Buffer[] = [];
  let cur: number[] = [];
  let i = 0;
  const text = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  if (text === '') return [];
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (cur.length === 0) throw new RangeError(`DNS name "${name}" has an empty label`);
      labels.push(Buffer.from(cur));
      cur = [];
      i++;
    } else if (c === 0x5c) {
      const d = text.slice(i + 1, i + 4);
      if (/^\d{3}$/.test(d)) {
        const v = Number(d);
        if (v > 255) throw new RangeError(`DNS name "${name}" has an escape above \\255`);
        cur.push(v);
        i += 4;
      } else if (i + 1 < text.length) {
        cur.push(text.charCodeAt(i + 1) & 0xff);
        i += 2;
      } else {
        throw new RangeError(`DNS name "${name}" ends in a lone backslash`);
      }
    } else {
      if (c > 0x7f) throw new RangeError(`DNS name "${name}" has a non-ASCII character; use its punycode form`);
      cur.push(c);
      i++;
    }
  }
  if (cur.length === 0) throw new RangeError(`DNS name "${name}" has an empty label`);
  labels.push(Buffer.from(cur));
  for (const l of labels) {
    if (l.length > MAX_LABEL) throw new RangeError(`DNS name "${name}" has a label longer than ${MAX_LABEL} bytes`);
  }
  if (labels.reduce((n, l) => n + l.length + 1, 1) > MAX_NAME) {
    throw new RangeError(`DNS name "${name}" is longer than ${MAX_NAME} bytes`);
  }
  return labels;
}

/** Reads a possibly compressed name at `offset`; returns it and the offset just past it in the original position. */
export function readName(buf: Buffer, offset: number): { name: string; next: number } {
  const parts: string[] = [];
  let pos = offset;
  let next = -1;
  let wireLength = 1;
  // Each pointer must go strictly backwards, so a loop is impossible and the walk ends.
  let limit = offset;
  for (;;) {
    if (pos >= buf.length) throw new RangeError('name runs past the end of the message');
    const len = buf[pos]!;
    if (len === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= buf.length) throw new RangeError('compression pointer runs past the end of the message');
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= limit) throw new RangeError(`compression pointer to ${target} does not point backwards`);
      if (next < 0) next = pos + 2;
      limit = target;
      pos = target;
      continue;
    }
    if (kind !== 0) throw new RangeError(`label type 0x${kind.toString(16)} is not supported`);
    if (pos + 1 + len > buf.length) throw new RangeError('label runs past the end of the message');
    wireLength += len + 1;
    if (wireLength > MAX_NAME) throw new RangeError(`name is longer than ${MAX_NAME} bytes`);
    parts.push(labelText(buf.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  return { name: parts.join('.'), next };
}

/** Canonical form for comparing names: lower case (ASCII only, RFC 4343), no trailing dot. */
export function canonicalName(name: string): string {
  const n = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  return n.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

// ---------------------------------------------------------------- parsing

function readHeader(buf: Buffer): Header {
  const flags = buf.readUInt16BE(2);
  return {
    id: buf.readUInt16BE(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    rcode: flags & 0xf,
  };
}

/** Parses a whole message. Throws DnsFormatError (with the id when the header was there). */
export function parseMessage(buf: Buffer): Message {
  if (buf.length < 12) throw new DnsFormatError(`message of ${buf.length} bytes is shorter than a header (12)`, undefined);
  const header = readHeader(buf);
  const counts = [4, 6, 8, 10].map((o) => buf.readUInt16BE(o)) as [number, number, number, number];
  let pos = 12;
  const fail = (what: string, err: unknown): never => {
    throw new DnsFormatError(`${what}: ${(err as Error).message}`, header.id);
  };
  const questions: Question[] = [];
  for (let i = 0; i < counts[0]; i++) {
    try {
      const { name, next } = readName(buf, pos);
      if (next + 4 > buf.length) throw new RangeError('question runs past the end of the message');
      questions.push({ name, type: buf.readUInt16BE(next), class: buf.readUInt16BE(next + 2) });
      pos = next + 4;
    } catch (err) {
      fail(`question ${i + 1}`, err);
    }
  }
  const sections: ResourceRecord[][] = [[], [], []];
  let ednsUdpSize: number | undefined;
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s + 1]!; i++) {
      try {
        const { name, next } = readName(buf, pos);
        if (next + 10 > buf.length) throw new RangeError('record header runs past the end of the message');
        const type = buf.readUInt16BE(next);
        const klass = buf.readUInt16BE(next + 2);
        const ttl = buf.readUInt32BE(next + 4);
        const rdlen = buf.readUInt16BE(next + 8);
        const dataOffset = next + 10;
        if (dataOffset + rdlen > buf.length) throw new RangeError('record data runs past the end of the message');
        pos = dataOffset + rdlen;
        if (s === 2 && type === RRType.OPT) {
          // The OPT pseudo-record carries the sender's UDP size in its class field.
          ednsUdpSize = Math.max(klass, CLASSIC_UDP_SIZE);
          continue;
        }
        sections[s]!.push({ name, type, class: klass, ttl, data: buf.subarray(dataOffset, pos), dataOffset });
      } catch (err) {
        fail(`${['answer', 'authority', 'additional'][s]} record ${i + 1}`, err);
      }
    }
  }
  return {
    header,
    questions,
    answers: sections[0]!,
    authorities: sections[1]!,
    additionals: sections[2]!,
    ednsUdpSize,
  };
}

/** The id of a message, or undefined when it is too short to have one. */
export function messageId(buf: Buffer): number | undefined {
  return buf.length >= 2 ? buf.readUInt16BE(0) : undefined;
}

/** A copy of `buf` with its id replaced (the forwarder swaps ids on the way out and back). */
export function withId(buf: Buffer, id: number): Buffer {
  const out = Buffer.from(buf);
  out.writeUInt16BE(id, 0);
  return out;
}

/** Whether a message has the truncated (TC) flag. */
export function isTruncated(buf: Buffer): boolean {
  return buf.length >= 4 && (buf[2]! & 0x02) !== 0;
}

/** The IPv4 address in an A record's data. */
export function aRecordAddress(rr: ResourceRecord): string {
  if (rr.type !== RRType.A || rr.data.length !== 4)
    throw new RangeError(`record of type ${rr.type} with ${rr.data.length} bytes is not an A record`);
  return [...rr.data].join('.');
}

/** The target name in a PTR (or CNAME, NS) record's data; needs the whole message for compression. */
export function recordName(message: Buffer, rr: ResourceRecord): string {
  return readName(message, rr.dataOffset).name;
}

// ---------------------------------------------------------------- writing

/** Records we answer with. */
export type Answer = { type: 'A'; name: string; ttl: number; address: string } | { type: 'PTR'; name: string; ttl: number; target: string };

class Writer {
  private chunks: Buffer[] = [];
  length = 0;
  /** Canonical suffix → offset of its first occurrence, for compression. */
  private readonly suffixes = new Map<string, number>();

  constructor(private readonly compress: boolean) {}

  bytes(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }

  u16(v: number): void {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v, 0);
    this.bytes(b);
  }

  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0, 0);
    this.bytes(b);
  }

  name(name: string): void {
    const labels = nameLabels(name);
    for (let i = 0; i < labels.length; i++) {
      if (this.compress) {
        const key = labels
          .slice(i)
          .map((l) => l.toString('latin1').toLowerCase())
          .join('\0');
        const at = this.suffixes.get(key);
        if (at !== undefined) {
          this.u16(0xc000 | at);
          return;
        }
        if (this.length < 0x4000) this.suffixes.set(key, this.length);
      }
      this.bytes(Buffer.from([labels[i]!.length]));
      this.bytes(labels[i]!);
    }
    this.bytes(Buffer.from([0]));
  }

  result(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

function flagsWord(h: Omit<Header, 'id'>): number {
  return (
    (h.qr ? 0x8000 : 0) |
    ((h.opcode & 0xf) << 11) |
    (h.aa ? 0x0400 : 0) |
    (h.tc ? 0x0200 : 0) |
    (h.rd ? 0x0100 : 0) |
    (h.ra ? 0x0080 : 0) |
    (h.rcode & 0xf)
  );
}

function ipv4Bytes(address: string): Buffer {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new RangeError(`A record address must be an IPv4 dotted quad (got "${address}")`);
  }
  return Buffer.from(parts);
}

function writeAnswer(w: Writer, a: Answer): void {
  w.name(a.name);
  w.u16(a.type === 'A' ? RRType.A : RRType.PTR);
  w.u16(CLASS_IN);
  w.u32(a.ttl);
  if (a.type === 'A') {
    w.u16(4);
    w.bytes(ipv4Bytes(a.address));
  } else {
    // The length is known only after the (maybe compressed) name is written.
    const sub = new Writer(false);
    sub.name(a.target);
    const rdata = sub.result();
    w.u16(rdata.length);
    w.bytes(rdata);
  }
}

function writeOpt(w: Writer): void {
  w.bytes(Buffer.from([0]));
  w.u16(RRType.OPT);
  w.u16(EDNS_UDP_SIZE);
  w.u32(0);
  w.u16(0);
}

export interface QueryOptions {
  id: number;
  rd?: boolean;
  /** Adds an OPT record advertising this UDP size. */
  ednsUdpSize?: number;
}

/** A query for one name (used by tests and health checks; the server forwards client queries as they came). */
export function buildQuery(name: string, type: number, options: QueryOptions): Buffer {
  const w = new Writer(false);
  w.u16(options.id);
  w.u16(flagsWord({ qr: false, opcode: OPCODE_QUERY, aa: false, tc: false, rd: options.rd ?? true, ra: false, rcode: 0 }));
  w.u16(1);
  w.u16(0);
  w.u16(0);
  w.u16(options.ednsUdpSize !== undefined ? 1 : 0);
  w.name(name);
  w.u16(type);
  w.u16(CLASS_IN);
  if (options.ednsUdpSize !== undefined) {
    w.bytes(Buffer.from([0]));
    w.u16(RRType.OPT);
    w.u16(options.ednsUdpSize);
    w.u32(0);
    w.u16(0);
  }
  return w.result();
}

export interface ResponseOptions {
  rcode: number;
  answers?: readonly Answer[];
  /** Authoritative: set for names we own. */
  aa?: boolean;
  /** Recursion available: we forward, so true unless told otherwise. */
  ra?: boolean;
  /** The most bytes the answer may take (UDP); whole answers are dropped from the end and TC set until it fits. */
  maxSize?: number;
  /** Use compression pointers for repeated names (default true). */
  compress?: boolean;
}

/** Builds the answer to `query`: same id, opcode, RD and question; an OPT record when the query had one. */
export function buildResponse(query: Message, options: ResponseOptions): Buffer {
  const answers = options.answers ?? [];
  const edns = query.ednsUdpSize !== undefined;
  const build = (n: number, tc: boolean): Buffer => {
    const w = new Writer(options.compress ?? true);
    w.u16(query.header.id);
    w.u16(
      flagsWord({
        qr: true,
        opcode: query.header.opcode,
        aa: options.aa ?? false,
        tc,
        rd: query.header.rd,
        ra: options.ra ?? true,
        rcode: options.rcode,
      }),
    );
    w.u16(query.questions.length);
    w.u16(n);
    w.u16(0);
    w.u16(edns ? 1 : 0);
    for (const q of query.questions) {
      w.name(q.name);
      w.u16(q.type);
      w.u16(q.class);
    }
    for (let i = 0; i < n; i++) writeAnswer(w, answers[i]!);
    if (edns) writeOpt(w);
    return w.result();
  };
  let out = build(answers.length, false);
  const max = options.maxSize;
  if (max === undefined || out.length <= max) return out;
  // Drop whole records from the end until it fits; a client that gets TC asks again over TCP.
  let n = answers.length;
  while (n > 0) {
    n--;
    out = build(n, true);
    if (out.length <= max) return out;
  }
  return out;
}

/** The UDP size limit for answering `query` (RFC 6891: the client's size, at most ours, at least 512). */
export function udpLimit(query: Message): number {
  return query.ednsUdpSize === undefined ? CLASSIC_UDP_SIZE : Math.min(Math.max(query.ednsUdpSize, CLASSIC_UDP_SIZE), EDNS_UDP_SIZE);
}
