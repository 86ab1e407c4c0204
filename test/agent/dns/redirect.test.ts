// agent/dns/redirect.ts: the nft program of redirect mode, line by line.
import { describe, expect, it } from 'vitest';
import { redirectProgram, removeRedirectProgram } from '../../../agent/dns/redirect.js';

describe('redirect program', () => {
  it('replaces the tss-dns table in one transaction and DNATs UDP and TCP :53 to their own ports', () => {
    expect(redirectProgram(40001, 40002).split('\n')).toEqual([
      'add table ip tss-dns',
      'delete table ip tss-dns',
      'table ip tss-dns {',
      '  chain output {',
      '    type nat hook output priority -100; policy accept;',
      '    ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40001',
      '    ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:40002',
      '  }',
      '}',
      '',
    ]);
  });

  it('removal works whether or not the table exists', () => {
    expect(removeRedirectProgram()).toBe('add table ip tss-dns\ndelete table ip tss-dns\n');
  });
});
