// agent/dns/wire.ts byte by byte: queries and answers written out by hand in
// hex (RFC 1035 layout) against what the codec parses and builds.
import { describe, expect, it } from 'vitest';
import {
  DnsFormatError,
  RCode,
  RRType,
  aRecordAddress,
  buildQuery,
  buildResponse,
  canonicalName,
  isTruncated,
  nameLabels,
  parseMessage,
  readName,
  recordName,
  udpLimit,
  withId,
  type Answer,
} from '../../../agent/dns/wire.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const toHex = (b: Buffer): string => b.toString('hex');

// id 0x1234, RD, one question: web IN A
const queryWebA = hex('1234 0100 0001 0000 0000 0000  03 776562 00  0001 0001');

describe('parsing a query', () => {
  it('reads the header flags, the question and no EDNS size', () => {
    const m = parseMessage(queryWebA);
    expect(m.header).toEqual({ id: 0x1234, qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, rcode: 0 });
    expect(m.questions).toEqual([{ name: 'web', type: RRType.A, class: 1 }]);
    expect(m.answers).toEqual([]);
    expect(m.ednsUdpSize).toBeUndefined();
    expect(udpLimit(m)).toBe(512);
  });

  it('reads the EDNS UDP size from an OPT record and caps the answer size at 1232', () => {
    const q = hex('0001 0100 0001 0000 0000 0001  03 776562 00 0001 0001  00 0029 1000 00000000 0000');
    const m = parseMessage(q);
    expect(m.ednsUdpSize).toBe(4096);
    expect(m.additionals).toEqual([]);
    expect(udpLimit(m)).toBe(1232);
  });

  it('keeps the case of the question name and canonicalName folds it and the trailing dot', () => {
    const q = hex('0001 0000 0001 0000 0000 0000  05 7461736b73 03 576542 00 0001 0001'); // tasks.WeB
    expect(parseMessage(q).questions[0]!.name).toBe('tasks.WeB');
    expect(canonicalName('tasks.WeB.')).toBe('tasks.web');
  });

  it('follows compression pointers in answers and decodes A and PTR data', () => {
    // answer to web A with two A records, the second owner name a pointer; then a PTR to "web" by pointer
    const msg = hex(
      'beef 8580 0001 0003 0000 0000  03 776562 00 0001 0001' +
        ' c00c 0001 0001 00000258 0004 0a000102' +
        ' c00c 0001 0001 00000258 0004 0a000103' +
        ' 01 32 c00c 000c 0001 0000003c 0002 c00c',
    );
    const m = parseMessage(msg);
    expect(m.header).toMatchObject({ id: 0xbeef, qr: true, aa: true, rd: true, ra: true, rcode: 0 });
    expect(m.answers.map((a) => [a.name, a.type, a.ttl])).toEqual([
      ['web', 1, 600],
      ['web', 1, 600],
      ['2.web', 12, 60],
    ]);
    expect(m.answers.slice(0, 2).map(aRecordAddress)).toEqual(['10.0.1.2', '10.0.1.3']);
    expect(recordName(msg, m.answers[2]!)).toBe('web');
  });

  it('escapes a dot and a non-printable byte inside a label, and writes them back as the same bytes', () => {
    const wire = hex('03 612e62 02 0a7a 00'); // labels "a.b" and "\nz"
    expect(readName(wire, 0)).toEqual({ name: 'a\\.b.\\010z', next: 8 });
    expect(nameLabels('a\\.b.\\010z').map((l) => toHex(l))).toEqual(['612e62', '0a7a']);
  });
});

describe('rejecting malformed messages', () => {
  it('a message shorter than a header has no id to answer', () => {
    expect(() => parseMessage(hex('1234 01'))).toThrow(DnsFormatError);
    try {
      parseMessage(hex('1234 01'));
    } catch (e) {
      expect((e as DnsFormatError).id).toBeUndefined();
    }
  });

  it('a question cut short names the question and keeps the id for a FORMERR', () => {
    let err: DnsFormatError | undefined;
    try {
      parseMessage(queryWebA.subarray(0, queryWebA.length - 2));
    } catch (e) {
      err = e as DnsFormatError;
    }
    expect(err).toBeInstanceOf(DnsFormatError);
    expect(err!.id).toBe(0x1234);
    expect(err!.message).toBe('question 1: question runs past the end of the message');
  });

  it('a compression pointer that does not point backwards is refused (no loops)', () => {
    const loop = hex('0001 0000 0001 0000 0000 0000  c00c 0001 0001');
    expect(() => parseMessage(loop)).toThrow('question 1: compression pointer to 12 does not point backwards');
  });

  it('names longer than 255 bytes and labels longer than 63 are refused when writing', () => {
    expect(() => nameLabels('a'.repeat(64))).toThrow('longer than 63 bytes');
    expect(() => nameLabels(Array(64).fill('abc').join('.'))).toThrow('longer than 255 bytes');
    expect(() => nameLabels('a..b')).toThrow('empty label');
  });
});

describe('building messages', () => {
  it('buildQuery writes the header, name and type exactly', () => {
    expect(toHex(buildQuery('web', RRType.A, { id: 0x1234 }))).toBe(toHex(queryWebA));
    expect(toHex(buildQuery('web.', RRType.AAAA, { id: 1, rd: false, ednsUdpSize: 4096 }))).toBe(
      toHex(hex('0001 0000 0001 0000 0000 0001  03 776562 00 001c 0001  00 0029 1000 00000000 0000')),
    );
  });

  it('an A answer is authoritative, echoes id, RD and question, and points its owner name at the question', () => {
    const r = buildResponse(parseMessage(queryWebA), {
      rcode: RCode.NOERROR,
      aa: true,
      answers: [{ type: 'A', name: 'web', ttl: 600, address: '10.0.1.2' }],
    });
    expect(toHex(r)).toBe(toHex(hex('1234 8580 0001 0001 0000 0000  03 776562 00 0001 0001  c00c 0001 0001 00000258 0004 0a000102')));
  });

  it('without compression every owner name is written in full', () => {
    const r = buildResponse(parseMessage(queryWebA), {
      rcode: RCode.NOERROR,
      aa: true,
      compress: false,
      answers: [{ type: 'A', name: 'web', ttl: 600, address: '10.0.1.2' }],
    });
    expect(toHex(r)).toBe(
      toHex(hex('1234 8580 0001 0001 0000 0000  03 776562 00 0001 0001  03 776562 00 0001 0001 00000258 0004 0a000102')),
    );
  });

  it('compression matches names case-insensitively and reuses a suffix', () => {
    const q = parseMessage(buildQuery('2.1.0.10.in-addr.arpa', RRType.PTR, { id: 7 }));
    const r = buildResponse(q, {
      rcode: RCode.NOERROR,
      aa: true,
      answers: [{ type: 'PTR', name: '2.1.0.10.IN-ADDR.arpa', ttl: 600, target: 'web' }],
    });
    const question = '01 32 01 31 01 30 02 3130 07 696e2d61646472 04 61727061 00 000c 0001';
    expect(toHex(r)).toBe(toHex(hex(`0007 8580 0001 0001 0000 0000 ${question}  c00c 000c 0001 00000258 0005 03776562 00`)));
    const m = parseMessage(r);
    expect(recordName(r, m.answers[0]!)).toBe('web');
  });

  it('NXDOMAIN and SERVFAIL carry their rcode and the question, with no answers', () => {
    const q = parseMessage(queryWebA);
    expect(toHex(buildResponse(q, { rcode: RCode.NXDOMAIN, aa: true }))).toBe(
      toHex(hex('1234 8583 0001 0000 0000 0000  03 776562 00 0001 0001')),
    );
    expect(toHex(buildResponse(q, { rcode: RCode.SERVFAIL }))).toBe(toHex(hex('1234 8182 0001 0000 0000 0000  03 776562 00 0001 0001')));
  });

  it('a query with an OPT record gets an OPT record back advertising 1232 bytes', () => {
    const q = parseMessage(buildQuery('web', RRType.A, { id: 2, ednsUdpSize: 4096 }));
    expect(toHex(buildResponse(q, { rcode: RCode.NXDOMAIN, aa: true }))).toBe(
      toHex(hex('0002 8583 0001 0000 0000 0001  03 776562 00 0001 0001  00 0029 04d0 00000000 0000')),
    );
  });

  it('an answer over the UDP limit keeps as many whole records as fit and sets TC', () => {
    const q = parseMessage(buildQuery('tasks.web', RRType.A, { id: 3 }));
    const answers: Answer[] = Array.from({ length: 40 }, (_, i) => ({ type: 'A', name: 'tasks.web', ttl: 0, address: `10.0.0.${i + 1}` }));
    const full = buildResponse(q, { rcode: RCode.NOERROR, aa: true, answers });
    // 12 header + 15 question + 40 × 16 = 667 bytes
    expect(full.length).toBe(667);
    expect(isTruncated(full)).toBe(false);
    const cut = buildResponse(q, { rcode: RCode.NOERROR, aa: true, answers, maxSize: udpLimit(q) });
    // (512 - 27) / 16 = 30 whole records
    expect(cut.length).toBe(27 + 30 * 16);
    expect(isTruncated(cut)).toBe(true);
    const m = parseMessage(cut);
    expect(m.header.tc).toBe(true);
    expect(m.answers.map(aRecordAddress)).toEqual(answers.slice(0, 30).map((a) => (a as { address: string }).address));
    // the same answer under EDNS fits whole
    const qe = parseMessage(buildQuery('tasks.web', RRType.A, { id: 3, ednsUdpSize: 1232 }));
    expect(isTruncated(buildResponse(qe, { rcode: RCode.NOERROR, answers, maxSize: udpLimit(qe) }))).toBe(false);
  });

  it('withId replaces only the id', () => {
    expect(toHex(withId(queryWebA, 0xabcd))).toBe(toHex(queryWebA).replace(/^1234/, 'abcd'));
  });
});
