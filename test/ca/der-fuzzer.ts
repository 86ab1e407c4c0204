// A seeded fuzzer for the CA's DER/PEM parsing: mutations of real CSRs and
// certificates, random DER and hand-made hostile documents, each fed to every
// entry point that reads input from outside. Shared by fuzz.test.ts (fixed
// seed, small count) and scripts/fuzz-der.sh (random seed, long run).
import { pathToFileURL } from 'node:url';
import { TsswarmError } from '../../lib/errors.js';
import * as asn1 from '../../ca/asn1.js';
import { type CertAndKey, createRootCA, parseNodeCert, signNodeCSR, verifyNodeCert } from '../../ca/index.js';
import { parseCertificateDer, parseCSR } from '../../ca/x509.js';

/** Real documents the mutations start from (made once by createCSR/signNodeCSR and by openssl; no keys kept). */
const CORPUS_B64 = {
  csr: [
    'MIHTMHoCAQAwGDEWMBQGA1UEAwwNdHNzLWZ1enotbm9kZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABMJhuUOD8j4CS93C',
    'c2c1kVUQ8dUOikYi+ERfWW0HGIDmWyvnLl5QSOwrFinqC6k2LvEol28Fo3eBBAH4HXaeVlmgADAKBggqhkjOPQQDAgNJADBG',
    'AiEAt/UnzV7ruR9BACe491ynFr0nGZYwEY1KasPANuTctqwCIQDX/yz5X0z5IiBzVVjpdK4znjorAFf72PJIMtji4snXcg==',
  ].join(''),
  nodeCert: [
    'MIICBjCCAaygAwIBAgIQZVLgZD97cIH4dxPcd8tTpjAKBggqhkjOPQQDAjAVMRMwEQYDVQQDDAp0c3N3YXJtLWNhMB4XDTI2',
    'MTEzMDIzMDAwMFoXDTI3MDMwMTAwMDAwMFowSjEZMBcGA1UECgwQdHNzLWZ1enotY2x1c3RlcjEWMBQGA1UECwwNc3dhcm0t',
    'bWFuYWdlcjEVMBMGA1UEAwwMdHNzZnV6em5vZGUxMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEPkivl+9FDJNhLUevVQ8+',
    'G9ZEDERwg/tZBqA5qLihIqmV7oOvrJYpXANPmOQK/SzDhKcFADyWtmUziouhtV3Q06OBqDCBpTAMBgNVHRMBAf8EAjAAMA4G',
    'A1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIwHQYDVR0OBBYEFIWaNOl32irKeyxprP9FIrDT',
    'mc8dMB8GA1UdIwQYMBaAFG4u3EXxRFNJFk11XgRIpDfBLgIyMCYGA1UdEQQfMB2CDHRzc2Z1enpub2RlMYINc3dhcm0tbWFu',
    'YWdlcjAKBggqhkjOPQQDAgNIADBFAiEA5xFqy9CgC79Gy8CD47jcv3LGu2Z5UVVTJyAE/RVO7SICIA1Bi8PPo4nruaf5ebT4',
    'itSy5cY5F66XQPqW800dMZVN',
  ].join(''),
  caCert: [
    'MIIBajCCARCgAwIBAgIQUBaq8DyKowYu8iIT5RskFTAKBggqhkjOPQQDAjAVMRMwEQYDVQQDDAp0c3N3YXJtLWNhMB4XDTI2',
    'MTEzMDIzMDAwMFoXDTQ2MTEyNjAwMDAwMFowFTETMBEGA1UEAwwKdHNzd2FybS1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH',
    'A0IABHKSpwSdEX2ZXHYDg9wwmUj/5QVlJwD8twRIsHsEWEBaLKcvOI2AMGPKDwqRCDtlFDf8SWH8dLM++PL0L0yz+ZyjQjBA',
    'MA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMB0GA1UdDgQWBBRuLtxF8URTSRZNdV4ESKQ3wS4CMjAKBggqhkjO',
    'PQQDAgNIADBFAiBi8sJP5XGN8Q+AL3hMcObgupTy+Ye5zXv9SFZ1L4OihQIhAJD1h70ucujeWPLsS13HqwolfMFAyNs9XCDE',
    'q+lUw9Eg',
  ].join(''),
  opensslCert: [
    'MIICdTCCAhugAwIBAgIUITg/kW0z4TQJSE4uxZdJ7ZPLXCEwCgYIKoZIzj0EAwIwVzELMAkGA1UEBhMCREUxDzANBgNVBAgM',
    'BkJlcmxpbjERMA8GA1UECgwIdHNzIGZ1enoxDjAMBgNVBAsMBXRlc3RzMRQwEgYDVQQDDAt0c3MuZXhhbXBsZTAeFw0yNjEy',
    'MDcwNjE4NTdaFw0zNjEyMDQwNjE4NTdaMFcxCzAJBgNVBAYTAkRFMQ8wDQYDVQQIDAZCZXJsaW4xETAPBgNVBAoMCHRzcyBm',
    'dXp6MQ4wDAYDVQQLDAV0ZXN0czEUMBIGA1UEAwwLdHNzLmV4YW1wbGUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASAcuHf',
    'O2buPQ+6e3WFCSCCb4vswR5NhqaOF552nTYa4kInkSfnXGM6y3BX/VGUbBjGU9OmySFZkb9gULMkaomWo4HEMIHBMB0GA1Ud',
    'DgQWBBRg8CxZOVJkhSd4i8zOkIJj6N2xqjAfBgNVHSMEGDAWgBRg8CxZOVJkhSd4i8zOkIJj6N2xqjAPBgNVHRMBAf8EBTAD',
    'AQH/MDwGA1UdEQQ1MDOCDWEudHNzLmV4YW1wbGWCDWIudHNzLmV4YW1wbGWHBH8AAAGBDXhAdHNzLmV4YW1wbGUwHQYDVR0l',
    'BBYwFAYIKwYBBQUHAwEGCCsGAQUFBwMCMBEGA1UdIAQKMAgwBgYEKgMEBTAKBggqhkjOPQQDAgNIADBFAiEA+SocJXY1Alyg',
    'mZx1wxYg38nTwGm2RGCszCUMRdDzZhoCIE3E7VRGlyLbDlBsDgvu0V3J8fLx5Hx/eI6HVBwqrBR1',
  ].join(''),
};

export const corpus: ReadonlyArray<{ name: string; der: Buffer }> = Object.entries(CORPUS_B64).map(([name, b64]) => ({
  name,
  der: Buffer.from(b64, 'base64'),
}));

/**
 * Most parser steps one input may cost, per byte of input handed to a
 * target (DER, its PEM text and the CA certificate it is checked against).
 * Real runs stay under 1 step per byte; a quadratic path blows far past this.
 */
export const WORK_PER_BYTE = 4;
export const WORK_BASE = 1_000;

// ------------------------------------------------------------------ randomness

/** xorshift32: small, seedable, the same sequence on every platform. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** 0 ≤ n < max */
  int(max: number): number {
    return max <= 0 ? 0 : this.next() % max;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

/** Each case has its own generator, so one failing case replays alone from (seed, index). */
export function caseRng(seed: number, index: number): Rng {
  return new Rng((Math.imul(seed >>> 0, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0);
}

// ------------------------------------------------------------------ hand-built DER

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return Buffer.from([0x80 | out.length, ...out]);
}

const header = (tag: number, len: number): Buffer => Buffer.concat([Buffer.from([tag]), lengthBytes(len)]);

/**
 * `levels` SEQUENCEs, each holding the next, around `inner`: written back to
 * front into one buffer, so building 10,000 levels is linear too.
 */
export function nested(levels: number, inner: Buffer = Buffer.from([0x05, 0x00]), tag = 0x30): Buffer {
  const heads: Buffer[] = [];
  let len = inner.length;
  for (let i = 0; i < levels; i++) {
    const h = header(tag, len);
    heads.push(h);
    len += h.length;
  }
  const out = Buffer.alloc(len);
  let pos = 0;
  for (let i = heads.length - 1; i >= 0; i--) {
    heads[i]!.copy(out, pos);
    pos += heads[i]!.length;
  }
  inner.copy(out, pos);
  return out;
}

/** Offsets of every element header in well-formed DER (the fuzzer's own walk, not the parser's). */
export function headerOffsets(der: Buffer): number[] {
  const out: number[] = [];
  const walk = (start: number, end: number): void => {
    let p = start;
    while (p < end) {
      out.push(p);
      const tag = der[p]!;
      const first = der[p + 1]!;
      let len = first;
      let h = 2;
      if (first & 0x80) {
        const n = first & 0x7f;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + der[p + 2 + i]!;
        h += n;
      }
      if (tag & 0x20) walk(p + h, p + h + len);
      p += h + len;
    }
  };
  walk(0, der.length);
  return out;
}

const TAGS = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x1e, 0x30, 0x31, 0xa0, 0xa3, 0x80, 0x82];

/** Random DER-shaped data: mostly valid framing, sometimes a wrong length, within a byte budget. */
export function randomDer(r: Rng, budget: number, depth = 0): Buffer {
  const tag = r.int(10) === 0 ? r.int(256) : r.pick(TAGS);
  let content: Buffer;
  if (tag & 0x20 && depth < 40 && budget > 4) {
    const parts: Buffer[] = [];
    let left = budget - 4;
    for (let n = r.int(5); n > 0 && left > 2; n--) {
      const p = randomDer(r, r.int(left) + 1, depth + 1);
      parts.push(p);
      left -= p.length;
    }
    content = Buffer.concat(parts);
  } else if (tag === 0x06) {
    content = r.bytes(r.int(Math.min(budget, 80)) + 1);
  } else {
    content = r.bytes(r.int(Math.min(budget, 64)));
  }
  const wrongLength = r.int(20) === 0;
  return Buffer.concat([header(tag, wrongLength ? r.int(0x10000) : content.length), content]);
}

// ------------------------------------------------------------------ mutations

type Mutator = (r: Rng, b: Buffer, offsets: readonly number[]) => Buffer;

const mutators: Record<string, Mutator> = {
  bitFlips: (r, b) => {
    const out = Buffer.from(b);
    for (let n = r.int(8) + 1; n > 0 && out.length; n--) out[r.int(out.length)]! ^= 1 << r.int(8);
    return out;
  },
  truncate: (r, b) => b.subarray(0, r.int(b.length)),
  lengthEdit: (r, b, offs) => {
    const at = offs.length ? r.pick(offs) : 0;
    if (at + 1 >= b.length) return b;
    const first = b[at + 1]!;
    const oldLen = first & 0x80 ? 1 + (first & 0x7f) : 1;
    const choices: Buffer[] = [
      Buffer.from([r.int(0x80)]),
      Buffer.from([0x80]),
      Buffer.from([0x81, r.int(256)]),
      Buffer.from([0x82, r.int(256), r.int(256)]),
      Buffer.concat([Buffer.from([0x84]), r.bytes(4)]),
      Buffer.from([0x84, 0x05, 0xf5, 0xe1, 0x00]), // 100 MB
      Buffer.from([0x81, 0x05]), // non-minimal
      Buffer.concat([Buffer.from([0x85 + r.int(0x7a)]), r.bytes(8)]),
    ];
    return Buffer.concat([b.subarray(0, at + 1), r.pick(choices), b.subarray(Math.min(b.length, at + 1 + oldLen))]);
  },
  nestWhole: (r, b) => nested(r.int(64) + 1, b, r.pick([0x30, 0x31, 0xa0, 0xa3])),
  nestElement: (r, b, offs) => {
    const at = offs.length ? r.pick(offs) : 0;
    return Buffer.concat([
      b.subarray(0, at),
      nested(r.int(40) + 1, b.subarray(at, Math.min(b.length, at + 2 + r.int(64)))),
      b.subarray(at),
    ]);
  },
  duplicate: (r, b) => {
    const start = r.int(b.length);
    const end = Math.min(b.length, start + r.int(128) + 1);
    return Buffer.concat([b.subarray(0, end), b.subarray(start, end), b.subarray(end)]);
  },
  splice: (r, b) => {
    const other = r.pick(corpus).der;
    const s = r.int(other.length);
    const chunk = other.subarray(s, Math.min(other.length, s + r.int(200) + 1));
    const at = r.int(b.length + 1);
    return r.int(2)
      ? Buffer.concat([b.subarray(0, at), chunk, b.subarray(at)])
      : Buffer.concat([b.subarray(0, at), chunk, b.subarray(Math.min(b.length, at + chunk.length))]);
  },
  byteSet: (r, b) => {
    const out = Buffer.from(b);
    for (let n = r.int(4) + 1; n > 0 && out.length; n--) out[r.int(out.length)] = r.pick([0x00, 0x7f, 0x80, 0x81, 0x84, 0xff, 0x30, 0x06]);
    return out;
  },
  randomDer: (r) => randomDer(r, r.int(600) + 1),
  randomBytes: (r) => r.bytes(r.int(400)),
};
const mutatorNames = Object.keys(mutators);

/** The input of case `index` under `seed`: a real document with one to three mutations, or random DER. */
export function fuzzCase(seed: number, index: number): { der: Buffer; how: string } {
  const r = caseRng(seed, index);
  const base = r.pick(corpus);
  let der: Buffer = base.der;
  const steps: string[] = [base.name];
  for (let n = r.int(3) + 1; n > 0; n--) {
    const name = r.pick(mutatorNames);
    der = mutators[name]!(r, der, der === base.der ? headerOffsets(der) : []);
    steps.push(name);
  }
  return { der, how: steps.join(' → ') };
}

// ------------------------------------------------------------------ targets and the oracle

export interface Targets {
  ca: CertAndKey;
  now: number;
}

export function makeTargets(): Targets {
  const now = Date.parse('2026-12-01T00:00:00Z');
  return { ca: createRootCA({ now, commonName: 'tss-fuzz-ca' }), now };
}

/** Reads every element the way callers do, so each reader meets hostile content. */
function readEverything(el: asn1.Element): void {
  const stack = [el];
  for (let e = stack.pop(); e; e = stack.pop()) {
    if (e.tag & 0x20) {
      stack.push(...asn1.children(e));
      continue;
    }
    const attempt = (fn: () => unknown): void => {
      try {
        fn();
      } catch (err) {
        if (!(err instanceof asn1.Asn1Error)) throw err;
      }
    };
    if (e.tag === asn1.Tag.OID) attempt(() => asn1.readOid(e, 'oid'));
    else if (e.tag === asn1.Tag.INTEGER) attempt(() => asn1.readSmallInteger(e, 'int'));
    else if (e.tag === asn1.Tag.BOOLEAN) attempt(() => asn1.readBoolean(e, 'bool'));
    else if (e.tag === asn1.Tag.BIT_STRING) attempt(() => asn1.readBitStringBytes(e, 'bits'));
    else if (e.tag === asn1.Tag.UTC_TIME || e.tag === asn1.Tag.GENERALIZED_TIME) attempt(() => asn1.readTime(e, 'time'));
    else attempt(() => asn1.readString(e, 'string'));
  }
}

export interface Outcome {
  target: string;
  /** True when the target accepted the input (rare after a mutation, common for the corpus itself). */
  accepted: boolean;
  work: number;
  /** The bound `work` must stay under. */
  bound: number;
}

/** A finding: an input that crashed a parser, or cost more work than its size allows. */
export class FuzzFinding extends Error {
  override name = 'FuzzFinding';
}

/**
 * Feeds one input to every entry point. Each must return or throw a
 * TsswarmError (Asn1Error, CAError), within WORK_PER_BYTE × its input.
 * Throws FuzzFinding otherwise.
 */
export function checkInput(t: Targets, der: Buffer, label: string): Outcome[] {
  const certPem = asn1.derToPem(der, 'CERTIFICATE');
  const csrPem = asn1.derToPem(der, 'CERTIFICATE REQUEST');
  const caBytes = t.ca.certPem.length + t.ca.keyPem.length;
  const runs: Array<[string, number, () => unknown]> = [
    ['asn1.parse', der.length, () => readEverything(asn1.parse(der))],
    ['parseCertificateDer', der.length, () => parseCertificateDer(der)],
    ['parseNodeCert', der.length + certPem.length, () => parseNodeCert(certPem)],
    ['verifyNodeCert', der.length + certPem.length + caBytes, () => verifyNodeCert(t.ca.certPem, certPem, { now: t.now })],
    ['parseCSR', der.length + csrPem.length, () => parseCSR(csrPem)],
    [
      'signNodeCSR',
      der.length + csrPem.length + caBytes,
      () => signNodeCSR(t.ca, csrPem, { nodeId: 'tssfuzz1', role: 'worker', clusterId: 'tss-fuzz', now: t.now }),
    ],
  ];
  return runs.map(([target, size, fn]) =>
    runTarget(target, size, fn, `${label} (${der.length} bytes, hex ${der.subarray(0, 48).toString('hex')}…)`),
  );
}

/** Runs one target on one input: it must return or throw a TsswarmError, within the work bound for `size` bytes. */
export function runTarget(target: string, size: number, fn: () => unknown, label: string): Outcome {
  const before = asn1.parserWork();
  let accepted = true;
  try {
    fn();
  } catch (err) {
    if (!(err instanceof TsswarmError)) throw new FuzzFinding(`${target} crashed on ${label}: ${(err as Error)?.stack ?? String(err)}`);
    accepted = false;
  }
  const work = asn1.parserWork() - before;
  const bound = WORK_PER_BYTE * size + WORK_BASE;
  if (work > bound) throw new FuzzFinding(`${target} did ${work} steps of work on ${label}: more than the bound ${bound}`);
  return { target, accepted, work, bound };
}

export interface FuzzSummary {
  seed: number;
  cases: number;
  accepted: number;
  refused: number;
  /** The largest work / bound ratio seen (1 would be at the bound). */
  worstRatio: number;
  /** How often each mutator ran (the fixed-seed test checks each is exercised). */
  mutatorsUsed: Record<string, number>;
}

/** Runs `count` cases from `seed`; throws FuzzFinding (naming seed and case) on the first finding. */
export function runFuzz(opts: { seed: number; count: number; onProgress?: (done: number) => void }): FuzzSummary {
  const t = makeTargets();
  const s: FuzzSummary = { seed: opts.seed, cases: 0, accepted: 0, refused: 0, worstRatio: 0, mutatorsUsed: {} };
  for (let i = 0; i < opts.count; i++) {
    const { der, how } = fuzzCase(opts.seed, i);
    for (const m of how.split(' → ').slice(1)) s.mutatorsUsed[m] = (s.mutatorsUsed[m] ?? 0) + 1;
    const outcomes = checkInput(t, der, `seed ${opts.seed} case ${i} (${how})`);
    for (const o of outcomes) {
      if (o.accepted) s.accepted++;
      else s.refused++;
      s.worstRatio = Math.max(s.worstRatio, o.work / o.bound);
    }
    s.cases++;
    if (opts.onProgress && i % 1000 === 999) opts.onProgress(i + 1);
  }
  return s;
}

// ------------------------------------------------------------------ command line (scripts/fuzz-der.sh)

function main(argv: readonly string[]): number {
  let count = 20_000;
  let seed = Math.floor(Math.random() * 0xffffffff);
  let only: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    const num = (flag: string): number => {
      if (v === undefined || !/^\d+$/.test(v)) throw new Error(`${flag} needs a whole number (got ${JSON.stringify(v ?? '')})`);
      i++;
      return Number(v);
    };
    if (a === '--count') count = num('--count');
    else if (a === '--seed') seed = num('--seed') >>> 0;
    else if (a === '--case') only = num('--case');
    else throw new Error(`unknown argument ${JSON.stringify(a)}: use --count N, --seed S, --case I (replay one case)`);
  }
  process.stdout.write(`fuzz-der: seed ${seed}, ${only === undefined ? `${count} cases` : `case ${only} only`}\n`);
  try {
    if (only !== undefined) {
      const { der, how } = fuzzCase(seed, only);
      const outcomes = checkInput(makeTargets(), der, `seed ${seed} case ${only} (${how})`);
      process.stdout.write(
        `${how}\n${der.toString('hex')}\n${outcomes.map((o) => `${o.target}: ${o.accepted ? 'accepted' : 'refused'}, work ${o.work}/${o.bound}`).join('\n')}\n`,
      );
      return 0;
    }
    const started = Date.now();
    const s = runFuzz({ seed, count, onProgress: (n) => process.stdout.write(`  ${n} cases\n`) });
    process.stdout.write(
      `fuzz-der: seed ${seed}: ${s.cases} cases, ${s.accepted} accepted and ${s.refused} refused parses, worst work ${(s.worstRatio * 100).toFixed(1)}% of the bound, ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  } catch (e) {
    process.stdout.write(
      `fuzz-der: FINDING with seed ${seed} (replay: scripts/fuzz-der.sh --seed ${seed} --case I, with I from the message)\n${(e as Error).message}\n`,
    );
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`fuzz-der: ${(e as Error).message}\n`);
    process.exitCode = 2;
  }
}
