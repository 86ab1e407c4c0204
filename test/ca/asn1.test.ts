// The DER encoder and strict parser under the CA: round trips, and refusal of
// encodings that are not canonical DER (signatures cover exact bytes).
import { describe, expect, it } from 'vitest';
import * as asn1 from '../../ca/asn1.js';

describe('asn1', () => {
  it('encodes and reads back integers, OIDs, strings, booleans and times', () => {
    expect(asn1.integer(0).toString('hex')).toBe('020100');
    expect(asn1.integer(127).toString('hex')).toBe('02017f');
    expect(asn1.integer(128).toString('hex')).toBe('02020080');
    expect(asn1.integer(Buffer.from('0000ff', 'hex')).toString('hex')).toBe('020200ff');
    expect(asn1.readUnsignedInteger(asn1.parse(asn1.integer(0x1234567890abcdefn)), 'n').toString('hex')).toBe('1234567890abcdef');
    expect(asn1.oid('1.2.840.10045.4.3.2').toString('hex')).toBe('06082a8648ce3d040302');
    for (const o of ['2.5.29.19', '1.3.6.1.5.5.7.3.2', '1.2.840.113549.1.1.11', '2.999.3'])
      expect(asn1.readOid(asn1.parse(asn1.oid(o)), 'o')).toBe(o);
    expect(asn1.readString(asn1.parse(asn1.utf8String('nœud-1')), 's')).toBe('nœud-1');
    expect(asn1.readBoolean(asn1.parse(asn1.boolean(true)), 'b')).toBe(true);
    const d = new Date('2046-11-17T15:42:35Z');
    expect(asn1.time(d)[0]).toBe(asn1.Tag.UTC_TIME);
    expect(asn1.readTime(asn1.parse(asn1.time(d)), 't')).toEqual(d);
    const far = new Date('2065-01-02T03:04:05Z');
    expect(asn1.time(far)[0]).toBe(asn1.Tag.GENERALIZED_TIME);
    expect(asn1.readTime(asn1.parse(asn1.time(far)), 't')).toEqual(far);
  });

  it('encodes named bits the DER way (KeyUsage)', () => {
    // keyCertSign(5) + cRLSign(6): one byte 0x06, one unused bit.
    expect(asn1.namedBits([5, 6]).toString('hex')).toBe('03020106');
    // digitalSignature(0) + keyEncipherment(2): 0xa0, five unused bits.
    expect(asn1.namedBits([0, 2]).toString('hex')).toBe('030205a0');
    expect(asn1.readNamedBits(asn1.parse(asn1.namedBits([0, 2])), 'ku')).toEqual([0, 2]);
  });

  it('uses long-form lengths for long content and parses nested sequences', () => {
    const big = asn1.octetString(Buffer.alloc(300, 1));
    expect(big.subarray(0, 4).toString('hex')).toBe('0482012c');
    const s = asn1.parse(asn1.sequence(asn1.integer(1), big, asn1.setOf(asn1.integer(2))));
    const [a, b, c] = asn1.children(s);
    expect(asn1.readSmallInteger(a, 'a')).toBe(1);
    expect(b!.content.length).toBe(300);
    expect(asn1.children(c!).length).toBe(1);
  });

  it('refuses what is not canonical DER', () => {
    expect(() => asn1.parse(Buffer.from('3080020101 0000'.replace(/ /g, ''), 'hex'))).toThrow(/indefinite length/);
    expect(() => asn1.parse(Buffer.from('30810302 0101'.replace(/ /g, ''), 'hex'))).toThrow(/non-minimal length/);
    expect(() => asn1.parse(Buffer.from('3005020101', 'hex'))).toThrow(/runs past the end/);
    expect(() => asn1.parse(Buffer.from('02010100', 'hex'))).toThrow(/trailing data/);
    expect(() => asn1.readUnsignedInteger(asn1.parse(Buffer.from('02020001', 'hex')), 'n')).toThrow(/non-minimal INTEGER/);
    expect(() => asn1.readUnsignedInteger(asn1.parse(Buffer.from('020180', 'hex')), 'n')).toThrow(/negative/);
    expect(() => asn1.readTime(asn1.parse(Buffer.from(`170d${Buffer.from('260230120000Z').toString('hex')}`, 'hex')), 't')).toThrow(
      /invalid date/,
    );
  });

  it('reads the first PEM block and writes 64-column PEM', () => {
    const der = asn1.sequence(asn1.octetString(Buffer.alloc(100, 7)));
    const pem = asn1.derToPem(der, 'CERTIFICATE');
    expect(pem.split('\n').every((l) => l.length <= 64)).toBe(true);
    expect(asn1.pemToDer(`junk before\n${pem}${pem}`, 'CERTIFICATE').equals(der)).toBe(true);
    expect(() => asn1.pemToDer(pem, 'CERTIFICATE REQUEST')).toThrow(/no "-----BEGIN CERTIFICATE REQUEST-----" block/);
  });
});
