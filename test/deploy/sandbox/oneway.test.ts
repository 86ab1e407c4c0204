// One-way cuts in the sandbox's underlay: the nft table, the set elements the
// chaos nemesis adds and deletes, and reading the set back.
import { describe, expect, it } from 'vitest';
import { oneWayElementArgs, oneWayTableRuleset, parseOneWaySet } from '../../../deploy/sandbox/plan.js';

describe('one-way cuts', () => {
  it('drop frames entering on one port and leaving on the other, at the bridge', () => {
    const rules = oneWayTableRuleset();
    expect(rules).toContain('table bridge tss-sandbox-oneway {');
    expect(rules).toContain('set pairs { type ifname . ifname; }');
    expect(rules).toContain('type filter hook forward priority 0; policy accept;');
    expect(rules).toContain('iifname . oifname @pairs drop');
    expect(oneWayElementArgs('tss-ulh1', 'tss-ulh2', true)).toEqual([
      'add',
      'element',
      'bridge',
      'tss-sandbox-oneway',
      'pairs',
      '{ "tss-ulh1" . "tss-ulh2" }',
    ]);
    expect(oneWayElementArgs('tss-ulh1', 'tss-ulh2', false)).toEqual([
      'delete',
      'element',
      'bridge',
      'tss-sandbox-oneway',
      'pairs',
      '{ "tss-ulh1" . "tss-ulh2" }',
    ]);
  });

  it('the set is read from nft -j output, with its direction kept', () => {
    const meta = { metainfo: { version: '1.0.6', json_schema_version: 1 } };
    const set = (elem?: unknown[]) =>
      JSON.stringify({
        nftables: [
          meta,
          { set: { family: 'bridge', name: 'pairs', table: 'tss-sandbox-oneway', type: ['ifname', 'ifname'], ...(elem ? { elem } : {}) } },
        ],
      });
    expect(parseOneWaySet(set())).toEqual([]);
    expect(parseOneWaySet(set([{ concat: ['tss-ulh1', 'tss-ulh2'] }, { concat: ['tss-ulh3', 'tss-ulh1'] }]))).toEqual([
      ['tss-ulh1', 'tss-ulh2'],
      ['tss-ulh3', 'tss-ulh1'],
    ]);
  });
});
