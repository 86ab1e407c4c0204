// Known answers for CRC-32C (the check value, and the RFC 3720 iSCSI test
// vectors), and agreement of the slice-by-8 code with a bit-at-a-time one.
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../../../manager/raft/storage/index.js';

/** The definition, one bit at a time: the reference the tables must agree with. */
function bitwise(data: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

const bytes = (n: number, f: (i: number) => number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => f(i) & 0xff);

describe('crc32c', () => {
  it('gives the catalogue check value for "123456789"', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('matches the RFC 3720 test vectors', () => {
    expect(crc32c(bytes(32, () => 0))).toBe(0x8a9136aa);
    expect(crc32c(bytes(32, () => 0xff))).toBe(0x62a8ab43);
    expect(crc32c(bytes(32, (i) => i))).toBe(0x46dd794e);
    expect(crc32c(bytes(32, (i) => 31 - i))).toBe(0x113fdb5c);
  });

  it('is 0 for no bytes', () => {
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it('agrees with the bitwise definition at every length and alignment from 0 to 40', () => {
    const data = bytes(48, (i) => i * 37 + 11);
    for (let start = 0; start < 8; start++) {
      for (let n = 0; n + start <= 48 && n <= 40; n++) {
        expect(crc32c(data, 0, start, start + n)).toBe(bitwise(data.subarray(start, start + n)));
      }
    }
  });

  it('continues a CRC across split points: crc32c(b, crc32c(a)) equals crc32c(a ++ b)', () => {
    const data = bytes(100, (i) => i * 7 + 3);
    const whole = crc32c(data);
    for (const cut of [0, 1, 7, 8, 9, 50, 99, 100]) {
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
      expect(crc32c(data, crc32c(data, 0, 0, cut), cut)).toBe(whole);
    }
  });
});
