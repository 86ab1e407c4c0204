// The IPVS backend's firewall marks against the real kernel: this kernel has
// no IPVS, but the mark table is nftables and runs here. The planned program
// is loaded into a tss namespace, read back (the same table plans nothing),
// and packets sent from the namespace are counted by mark: an every-port VIP's
// TCP and UDP packets carry its mark, an ingress port's packets to a local
// address carry theirs, and other traffic carries none. Everything is named
// tss-* and removed when the file ends, pass or fail.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  emptyIpvsState,
  MARK_BASE,
  markTable,
  parseIpvsSave,
  parseMarkTable,
  planIpvs,
  planIpvsChanges,
  vipFrontends,
  type LbTable,
} from '../../../agent/lb/index.js';
import { isRoot } from '../../have.js';

const exec = promisify(execFile);
const ns = `tss-lbm-${process.pid % 10000}${randomBytes(2).toString('hex')}`;
const LOCAL = '10.77.9.1';
const VIP_ANY = '10.96.9.20';
const blocker = !isRoot ? 'needs root' : undefined;

const inNs = (cmd: string, args: string[], input?: string): Promise<{ stdout: string }> =>
  new Promise((resolve, reject) => {
    const c = execFile('ip', ['netns', 'exec', ns, cmd, ...args], (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve({ stdout }),
    );
    if (input !== undefined) c.stdin!.end(input);
  });
const nft = (program: string) => inNs('nft', ['-f', '-'], program);
const readMarks = async () => parseMarkTable((await inNs('nft', ['-j', 'list', 'table', 'ip', markTable])).stdout, parseIpvsSave(''));

/** Packets counted per mark by a chain that runs after the mark chains (priority filter > mangle). */
async function counted(): Promise<Map<number, number>> {
  const out = (await inNs('nft', ['-j', 'list', 'chain', 'ip', 'tss-lbm-count', 'out'])).stdout;
  const got = new Map<number, number>();
  for (const it of (JSON.parse(out) as { nftables: { rule?: { expr: Record<string, unknown>[] } }[] }).nftables) {
    const expr = it.rule?.expr ?? [];
    const mark = expr.find((e) => 'match' in e) as { match: { right: number } } | undefined;
    const counter = expr.find((e) => 'counter' in e) as { counter: { packets: number } } | undefined;
    if (mark && counter) got.set(mark.match.right, counter.counter.packets);
  }
  return got;
}

/** One UDP datagram, and one TCP SYN (refused or unanswered), from inside the namespace. */
async function send(addr: string, port: number): Promise<void> {
  await inNs('bash', ['-c', `echo x > /dev/udp/${addr}/${port}; timeout 1 bash -c 'echo x > /dev/tcp/${addr}/${port}' 2>/dev/null; true`]);
}

const table = (ingress: boolean): LbTable => ({
  services: [
    { id: 'any', vip: VIP_ANY, ports: [], backends: [{ ip: '10.77.9.11' }, { ip: '10.77.9.12' }] },
    { id: 'web', vip: '10.96.9.10', ports: [{ protocol: 'tcp', port: 80 }], backends: [{ ip: '10.77.9.11' }] },
  ],
  ingress: ingress ? [{ protocol: 'tcp', publishedPort: 8080, targetPort: 80, serviceId: 'web' }] : [],
});

beforeAll(async () => {
  if (blocker) return;
  await exec('ip', ['netns', 'add', ns]);
  await exec('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  await exec('ip', ['-n', ns, 'link', 'add', 'tssmd0', 'type', 'bridge']);
  await exec('ip', ['-n', ns, 'addr', 'add', `${LOCAL}/24`, 'dev', 'tssmd0']);
  await exec('ip', ['-n', ns, 'link', 'set', 'tssmd0', 'up']);
  await exec('ip', ['-n', ns, 'route', 'add', '10.96.0.0/16', 'dev', 'tssmd0']);
  const m1 = MARK_BASE + 1;
  const m2 = MARK_BASE + 2;
  await nft(`table ip tss-lbm-count {
\tchain out {
\t\ttype filter hook output priority filter; policy accept;
\t\tmeta mark ${m1} counter
\t\tmeta mark ${m2} counter
\t\tmeta mark 0 meta l4proto { tcp, udp } counter
\t}
}
`);
});

afterAll(async () => {
  if (!blocker) await exec('ip', ['netns', 'del', ns]).catch(() => undefined);
});

describe.skipIf(!!blocker)(`ipvs firewall marks in a tss namespace${blocker ? ` (skipped: ${blocker})` : ''}`, () => {
  it('the planned mark table loads, reads back as planned, and marks an every-port VIP and an ingress port', async () => {
    const p = planIpvs(table(true), emptyIpvsState());
    await nft(p.marks);
    const back = await readMarks();
    expect(back.markTable).toBe('ok');
    expect([...back.marks].map(([k, v]) => [k, v.mark])).toEqual([...p.next.marks].map(([k, v]) => [k, v.mark]));
    // With the IPVS services as planned, the read-back plans nothing.
    const st = parseMarkTable((await inNs('nft', ['-j', 'list', 'table', 'ip', markTable])).stdout, p.next);
    expect(planIpvs(table(true), st)).toMatchObject({ marks: '', program: '', ops: 0 });

    const vipMark = p.next.marks.get(`vip-any ${VIP_ANY}`)!.mark;
    const portMark = p.next.marks.get('ingress tcp 8080')!.mark;
    expect(new Set([vipMark, portMark])).toEqual(new Set([MARK_BASE + 1, MARK_BASE + 2]));
    const before = await counted();
    await send(VIP_ANY, 9999); // any port of the VIP: UDP and TCP marked
    await send(LOCAL, 8080); // the published port on a local address: only the TCP SYN is marked
    await send('10.96.9.10', 80); // a listed VIP port is a plain IPVS service: no mark
    const after = await counted();
    const delta = (m: number) => (after.get(m) ?? 0) - (before.get(m) ?? 0);
    expect(delta(vipMark)).toBe(2);
    expect(delta(portMark)).toBeGreaterThanOrEqual(1);
    // Unmarked: the UDP datagram to 8080, and both packets to the listed VIP port (TCP retries may add more).
    expect(delta(0)).toBeGreaterThanOrEqual(3);
  });

  it('removing the every-port VIP one service at a time deletes its element; a hook rule deleted by hand makes the table broken and a rebuild restores it', async () => {
    const st = await readMarks();
    const svc = { ...table(true).services[0]!, backends: [] };
    const gone = planIpvsChanges(vipFrontends(svc), st);
    await nft(gone.marks);
    gone.commit(st);
    expect([...(await readMarks()).marks.keys()]).toEqual(['ingress tcp 8080']);

    const handle = /handle (\d+)/.exec(
      (await inNs('nft', ['-a', 'list', 'chain', 'ip', markTable, 'tss-mark-output'])).stdout
        .split('\n')
        .find((l) => l.includes('tss-vip-marks'))!,
    )![1]!;
    await inNs('nft', ['delete', 'rule', 'ip', markTable, 'tss-mark-output', 'handle', handle]);
    const broken = await readMarks();
    expect(broken.markTable).toBe('broken');
    const rebuilt = planIpvs(table(false), broken);
    await nft(rebuilt.marks);
    const back = await readMarks();
    expect(back.markTable).toBe('ok');
    expect([...back.marks.keys()]).toEqual([`vip-any ${VIP_ANY}`]);
  });
});
