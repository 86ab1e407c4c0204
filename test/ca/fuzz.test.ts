// Hostile DER and PEM against the CA's parsers: a fixed-seed fuzz run over
// mutated real CSRs and certificates and random DER, and the named attacks
// (deep nesting, a 1 MB OID, a 100 MB declared length, oversized PEM). Every
// parse must end in a result or a clean TsswarmError, within a work bound
// counted by the parser (asn1.parserWork), never by the clock.
// Longer runs with a random seed: scripts/fuzz-der.sh --count N [--seed S].
import { describe, expect, it } from 'vitest';
import { TsswarmError } from '../../lib/errors.js';
import * as asn1 from '../../ca/asn1.js';
import { BadCSRError, BadCertificateError, parseNodeCert, verifyNodeCert } from '../../ca/index.js';
import { parseCertificateDer, parseCSR } from '../../ca/x509.js';
import { checkInput, corpus, FuzzFinding, fuzzCase, makeTargets, nested, runFuzz, runTarget } from './der-fuzzer.js';

const targets = makeTargets();
const der = (name: string): Buffer => corpus.find((c) => c.name === name)!.der;

/** The work one call costs, and the error it threw (undefined when it returned). */
function measure(fn: () => unknown): { work: number; err: unknown } {
  const before = asn1.parserWork();
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  return { work: asn1.parserWork() - before, err };
}

describe('DER fuzzing', () => {
  it('the real CSR and certificates of the corpus are accepted, so refusals below mean something', () => {
    expect(() => parseCSR(asn1.derToPem(der('csr'), 'CERTIFICATE REQUEST'))).not.toThrow();
    expect(parseNodeCert(asn1.derToPem(der('nodeCert'), 'CERTIFICATE')).role).toBe('manager');
    for (const c of corpus) expect(() => asn1.parse(c.der), c.name).not.toThrow();
    expect(parseCertificateDer(der('opensslCert')).extensions.size).toBe(6);
  });

  it('400 mutated and random inputs (fixed seed) each end in a result or a clean error within the work bound', () => {
    const s = runFuzz({ seed: 0x7355_2026, count: 400 });
    expect(s.cases).toBe(400);
    // Both outcomes occur: the mutations are neither all harmless nor all rejected at the first byte.
    expect(s.accepted).toBeGreaterThan(0);
    expect(s.refused).toBeGreaterThan(s.accepted);
    for (const m of [
      'bitFlips',
      'truncate',
      'lengthEdit',
      'nestWhole',
      'nestElement',
      'duplicate',
      'splice',
      'byteSet',
      'randomDer',
      'randomBytes',
    ]) {
      expect(s.mutatorsUsed[m], m).toBeGreaterThan(0);
    }
    expect(s.worstRatio).toBeLessThan(1);
  });

  it('a certificate our parser reads but OpenSSL refuses is a BadCertificateError (found by seed 449551247 case 2963)', () => {
    // Seven flipped bits, among them the inner signature algorithm's OID tag (0x06 → 0x07), which our parser does not read.
    const { der: doc } = fuzzCase(449551247, 2963);
    expect(() => parseCertificateDer(doc)).not.toThrow();
    expect(() => verifyNodeCert(targets.ca.certPem, asn1.derToPem(doc, 'CERTIFICATE'), { now: targets.now })).toThrow(BadCertificateError);
  });

  it('the oracle reports a crash and a parse that costs more than the bound', () => {
    expect(() =>
      runTarget(
        't',
        10,
        () => {
          throw new TypeError('boom');
        },
        'crash',
      ),
    ).toThrow(FuzzFinding);
    const doc = der('nodeCert');
    // Parsing the same certificate once per byte is the shape of a quadratic path.
    expect(() =>
      runTarget(
        't',
        doc.length,
        () => {
          for (let i = 0; i < doc.length; i++) asn1.parse(doc);
        },
        'slow',
      ),
    ).toThrow(/more than the bound/);
    expect(runTarget('t', doc.length, () => asn1.parse(doc), 'once').accepted).toBe(true);
  });
});

describe('DER limits', () => {
  it('10,000 levels of nesting are refused at depth 32, after reading only those levels', () => {
    const deep = nested(10_000);
    expect(deep.length).toBeLessThan(asn1.DER_LIMITS.maxBytes); // so the depth cap, not the size cap, is what refuses it
    const m = measure(() => asn1.parse(deep));
    expect(m.err).toBeInstanceOf(asn1.Asn1Error);
    expect((m.err as Error).message).toMatch(/nested more than 32 deep/);
    expect(m.work).toBeLessThan(200);
    expect(measure(() => asn1.parse(nested(31))).err).toBeUndefined();
    for (const o of checkInput(targets, deep, '10,000 levels')) expect(o.accepted, o.target).toBe(false);
  });

  it('a 1 MB OID is refused before it is read, as a document and as an element', () => {
    const body = Buffer.alloc(1024 * 1024, 0x81);
    body[body.length - 1] = 0x01;
    const doc = Buffer.concat([Buffer.from([0x06, 0x83, 0x10, 0x00, 0x00]), body]);
    const m = measure(() => asn1.parse(doc));
    expect((m.err as Error).message).toMatch(/DER data of 1048581 bytes is too large: at most 65536/);
    expect(m.work).toBeLessThan(10);
    const el: asn1.Element = { tag: asn1.Tag.OID, content: body, raw: doc };
    const r = measure(() => asn1.readOid(el, 'algorithm'));
    expect((r.err as Error).message).toMatch(/algorithm: an OID of 1048576 bytes is too long \(at most 64\)/);
    expect(r.work).toBe(0);
    for (const o of checkInput(targets, doc, '1 MB OID')) expect(o.accepted, o.target).toBe(false);
  });

  it('a 60 KB OID inside a certificate-shaped document is refused by the OID cap with a clean error', () => {
    const big = Buffer.alloc(60_000, 0x81);
    big[big.length - 1] = 0x01;
    const cert = asn1.sequence(asn1.sequence(asn1.integer(1)), asn1.sequence(asn1.tlv(asn1.Tag.OID, big)), asn1.bitString(Buffer.alloc(8)));
    expect(() => parseCertificateDer(cert)).toThrow(/signatureAlgorithm: an OID of 60000 bytes is too long/);
    expect(() => parseNodeCert(asn1.derToPem(cert, 'CERTIFICATE'))).toThrow(BadCertificateError);
    // asn1.parse alone accepts it (an OID is primitive); every reader of certificates refuses it.
    for (const o of checkInput(targets, cert, '60 KB OID')) expect(o.accepted, o.target).toBe(o.target === 'asn1.parse');
  });

  it('OID arcs up to 2^53 - 1 are read and larger ones refused', () => {
    expect(asn1.readOid(asn1.parse(asn1.oid('1.2.9007199254740991')), 'o')).toBe('1.2.9007199254740991');
    expect(() => asn1.readOid(asn1.parse(asn1.oid('1.2.9007199254740992')), 'o')).toThrow(/arc is larger than 2\^53/);
    expect(() => asn1.readOid(asn1.parse(asn1.oid(`1.2.${'9'.repeat(40)}`)), 'o')).toThrow(/larger than 2\^53/);
  });

  it('a declared length of 100 MB is refused without reading or allocating it, and so are 5-byte lengths', () => {
    const doc = Buffer.concat([Buffer.from([0x30, 0x84, 0x05, 0xf5, 0xe1, 0x00]), Buffer.alloc(16)]);
    const m = measure(() => asn1.parse(doc));
    expect((m.err as Error).message).toMatch(/element length 100000000 runs past the end of the data \(16 bytes left\)/);
    expect(m.work).toBeLessThan(10);
    expect(() => asn1.parse(Buffer.from('30850100000000', 'hex'))).toThrow(/a length of 5 bytes is too long: at most 4/);
    expect(() => parseCSR(asn1.derToPem(doc, 'CERTIFICATE REQUEST'))).toThrow(BadCSRError);
  });

  it('DER over 64 KiB is refused whole, and parse work grows linearly with the number of elements', () => {
    expect(() => asn1.parse(asn1.octetString(Buffer.alloc(asn1.DER_LIMITS.maxBytes)))).toThrow(/too large: at most 65536/);
    const flat = (n: number): Buffer => asn1.tlv(asn1.Tag.SEQUENCE, Buffer.alloc(2 * n).fill(Buffer.from([0x05, 0x00])));
    const small = measure(() => asn1.children(asn1.parse(flat(1000))));
    const large = measure(() => asn1.children(asn1.parse(flat(30_000))));
    expect(small.err).toBeUndefined();
    expect(large.err).toBeUndefined();
    // One header read per element, children() served from the walk: no re-reading.
    expect(small.work).toBeLessThanOrEqual(1000 + 3);
    expect(large.work).toBeLessThanOrEqual(30_000 + 3);
  });

  it('PEM is capped before any regex or base64 work, and a BEGIN without END is refused in one pass', () => {
    const huge = `-----BEGIN CERTIFICATE-----\n${'A'.repeat(300_000)}\n-----END CERTIFICATE-----\n`;
    const h = measure(() => asn1.pemToDer(huge, 'CERTIFICATE'));
    expect((h.err as Error).message).toMatch(/PEM text of 300055 characters is too long: at most 262144/);
    expect(h.work).toBe(0);
    expect(() => parseCSR(huge.replaceAll('CERTIFICATE', 'CERTIFICATE REQUEST'))).toThrow(BadCSRError);
    // Thousands of BEGIN lines with no END: a lazy regex would rescan from each one.
    const begins = '-----BEGIN CERTIFICATE-----\nAAAA\n'.repeat(7000);
    const b = measure(() => asn1.pemToDer(begins, 'CERTIFICATE'));
    expect((b.err as Error).message).toMatch(/has no "-----END CERTIFICATE-----" line/);
    expect(b.work).toBe(begins.length);
    // Under the text cap but decoding to more than the DER cap: refused before decoding.
    const big = asn1.derToPem(Buffer.alloc(100_000, 1), 'CERTIFICATE');
    expect(() => asn1.pemToDer(big, 'CERTIFICATE')).toThrow(/holds about 100002 bytes: at most 65536/);
  });

  it('every parse failure is an INVALID_ARGUMENT TsswarmError', () => {
    for (const bad of ['', '30', '3080', '0500ff', '1f0100', '3003020200', '3084ffffffff00']) {
      const m = measure(() => asn1.parse(Buffer.from(bad, 'hex')));
      expect(m.err, bad).toBeInstanceOf(TsswarmError);
      expect((m.err as TsswarmError).code).toBe('INVALID_ARGUMENT');
    }
  });
});
