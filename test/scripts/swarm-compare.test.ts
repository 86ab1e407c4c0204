// The comparison of scripts/swarm-compare.ts without clusters: its masking,
// its column, row and text checks, and its known differences, run on the
// outputs of a recorded run (fixtures/swarm-compare-run.json, what Swarm 20.10
// and tsswarm printed for the command list) and on those outputs altered, so
// that a tsswarm answer losing a row or a column would fail the comparison.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type ClusterLiterals,
  COMMANDS,
  compareAll,
  compareOutcomes,
  KNOWN,
  label,
  mask,
  type Outcome,
  type Recorded,
  renderReport,
} from '../../scripts/swarm-compare-lib.js';

const run = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/swarm-compare-run.json'), 'utf8')) as {
  swarm: Recorded;
  tsswarm: Recorded;
};

const indexOf = (command: string): number => {
  const i = COMMANDS.findIndex((c) => label(c) === command);
  if (i < 0) throw new Error(`no command ${command}`);
  return i;
};

/** The recorded tsswarm side with one command's outcome changed. */
const altered = (command: string, f: (o: Outcome) => Outcome): Recorded => ({
  ...run.tsswarm,
  outcomes: run.tsswarm.outcomes.map((o, i) => (i === indexOf(command) ? f(o) : o)),
});

const rowOf = (tss: Recorded, command: string) => compareAll(COMMANDS, run.swarm, tss)[indexOf(command)]!;

const lit: ClusterLiterals = { image: 'bb:latest', versions: ['0.1.0'], hosts: ['tssdk-h1'], paths: ['/tmp/tss-x/Swarm'] };

describe('masking', () => {
  it('replaces ids, times, tokens, addresses, host names, images, versions and CA material, and nothing else', () => {
    const text = [
      'r77q5s0233vw40o295n2gxsgv *   tssdk-h1   Ready   Active   Leader   0.1.0',
      'tsscmp-web.1   bb:latest   tssdk-h1   Running   Running 12 seconds ago   t5n3pd7pwd5j',
      'Running less than a second ago | About a minute ago | 2026-12-07T20:47:01.123456789Z',
      'docker swarm join --token SWMTKN-1-3x4mpl3abc-d3f4ult 10.231.0.1:2377',
      'Subnet 10.0.1.0/24 sha256:' + 'a'.repeat(64),
      ' Issuer Subject:\tMBMxETAPBgNVBAMTCHN3YXJtLWNh',
      '-----BEGIN CERTIFICATE-----\nMIIBazCCARCg\n-----END CERTIFICATE-----',
      '"Version": {\n  "Index": 25\n}',
      'availability replicated /tmp/tss-x/Swarm/compose.yml',
    ].join('\n');
    expect(mask(text, lit).split('\n')).toEqual([
      '<ID> *   <HOST>   Ready   Active   Leader   <VERSION>',
      'tsscmp-web.1   <IMAGE>   <HOST>   Running   Running <AGO>   <ID>',
      'Running <AGO> | <AGO> | <TIME>',
      'docker swarm join --token <TOKEN> <ADDR>',
      'Subnet <ADDR> <DIGEST>',
      ' Issuer Subject:\t<CA-SUBJECT>',
      '<CERT>',
      '"Version": {',
      '  "Index": "<N>"',
      '}',
      // 12 letters without a digit are a word, not an id
      'availability replicated <PATH>/compose.yml',
    ]);
  });
});

describe('the recorded run', () => {
  it('compares every command as the recorded report says: same, or a documented difference with its reason', () => {
    const rows = compareAll(COMMANDS, run.swarm, run.tsswarm);
    const { unexplained, text } = renderReport(rows);
    expect(unexplained, text).toBe(0);
    for (const k of KNOWN.filter((x) => x.kind === 'deliberate')) expect(rows.find((r) => r.command === k.command)?.known).toBe(k);
    expect(rows.filter((r) => r.verdict.same).map((r) => r.command)).toEqual(
      expect.arrayContaining(['docker node ls', 'docker service ls', 'docker network inspect tsscmp', 'docker service inspect tsscmp-web']),
    );
  });

  it('reports the open stop-first difference of the recorded run as an open tsswarm bug', () => {
    const cmd = "docker service ps tsscmp-web --filter desired-state=shutdown --format '{{.Name}} {{.CurrentState}}'";
    const rows = compareAll(COMMANDS, run.swarm, run.tsswarm);
    const row = rows.find((r) => r.command === cmd)!;
    expect(row.verdict.same).toBe(false);
    expect(row.known?.kind).toBe('open');
    expect(renderReport(rows).text).toContain(`DIFFERS (open)   ${cmd}`);
  });

  it('fails a table that lost a row, naming the counts', () => {
    const r = rowOf(
      altered('docker node ls', (o) => ({ ...o, stdout: o.stdout.trimEnd().split('\n').slice(0, -1).join('\n') })),
      'docker node ls',
    );
    expect(r.verdict.same).toBe(false);
    expect(r.known).toBeUndefined();
    expect(r.verdict.differences).toContain('3 rows on Swarm, 2 on tsswarm');
  });

  it('fails a table whose columns differ, naming both headers', () => {
    const r = rowOf(
      altered('docker service ls', (o) => ({ ...o, stdout: o.stdout.replace('REPLICAS', 'RUNNING ') })),
      'docker service ls',
    );
    expect(r.verdict.differences[0]).toBe(
      'columns ID, NAME, MODE, REPLICAS, IMAGE, PORTS on Swarm, ID, NAME, MODE, RUNNING, IMAGE, PORTS on tsswarm',
    );
  });

  it('fails a different exit status, and a changed cell once masked', () => {
    const code = rowOf(
      altered('docker network rm tsscmp', (o) => ({ ...o, code: 1 })),
      'docker network rm tsscmp',
    );
    expect(code.verdict.differences).toContain('exit status 0 on Swarm, 1 on tsswarm');
    const cell = rowOf(
      altered('docker node ls', (o) => ({ ...o, stdout: o.stdout.replace('Ready', 'Down ') })),
      'docker node ls',
    );
    expect(cell.verdict.differences).toEqual(['output differs once masked']);
    expect(cell.verdict.diff.some((l) => l.startsWith('+ ') && l.includes('| Down |'))).toBe(true);
  });

  it('fails a JSON answer that gained or lost a field, naming its path', () => {
    const r = rowOf(
      altered('docker service inspect tsscmp-web', (o) => ({
        ...o,
        stdout: o.stdout.replace('"Isolation": "default"', '"Isolation": ""'),
      })),
      'docker service inspect tsscmp-web',
    );
    expect(r.verdict.diff).toContain('+ $[].Spec.TaskTemplate.ContainerSpec.Isolation = ""');
  });

  it('a known difference explains only itself: another change in the same command still fails', () => {
    const r = rowOf(
      altered('docker node inspect self --pretty', (o) => ({
        ...o,
        stdout: o.stdout.replace(/Raft Status:\s+Reachable/, 'Raft Status:\tUnreachable'),
      })),
      'docker node inspect self --pretty',
    );
    expect(r.verdict.same).toBe(false);
    expect(r.known).toBeUndefined();
  });
});

describe('shapes', () => {
  const out = (stdout: string): Outcome => ({ code: 0, stdout, stderr: '' });

  it('tables compare cells, not the padding the longer names bring', () => {
    const a = out('ID    NAME\nabc   web\n');
    const b = out('ID    NAME\nabc   web          \n');
    expect(compareOutcomes({ shape: 'table' }, a, out('ID      NAME\nabc     web\n')).same).toBe(true);
    expect(compareOutcomes({ shape: 'table' }, a, b).same).toBe(true);
  });

  it('a progress display compares its distinct lines, not how often it redrew them', () => {
    const once =
      'id\noverall progress: 0 out of 1 tasks\n1/1: running   [==>]\noverall progress: 1 out of 1 tasks\nverify: Service converged\n';
    const often = `id\n${'overall progress: 0 out of 1 tasks\n1/1: starting  [=>]\n'.repeat(5)}1/1: running   [==>]\noverall progress: 1 out of 1 tasks\nverify: Waiting 5 seconds to verify that tasks are stable...\nverify: Service converged\n`;
    expect(compareOutcomes({ shape: 'progress' }, out(once), out(often)).same).toBe(true);
    expect(compareOutcomes({ shape: 'progress' }, out(once), out(once.replace('Service converged', 'Detected task failure'))).same).toBe(
      false,
    );
  });

  it('task slots compare as any slot only where asked', () => {
    const a = out('ID   NAME\n<ID>   web.1\n');
    const b = out('ID   NAME\n<ID>   web.2\n');
    expect(compareOutcomes({ shape: 'table', anySlot: true }, a, b).same).toBe(true);
    expect(compareOutcomes({ shape: 'table' }, a, b).same).toBe(false);
  });
});
