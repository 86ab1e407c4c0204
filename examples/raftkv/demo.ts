// The raft demo: three raftkv member processes on loopback; writes, a leader
// crash (SIGKILL) and re-election, linearizable reads from a follower, and the
// crashed member catching up after restart. Progress is printed as it goes.
import { LocalCluster } from './cluster.js';

export async function runDemo(say: (line: string) => void, opts: { logs?: boolean } = {}): Promise<void> {
  const cluster = new LocalCluster(3, { logs: opts.logs, prefix: 'tss-demo-' });
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  try {
    say('starting 3 raftkv members on 127.0.0.1 (WAL with fsync, gRPC transport)…');
    await cluster.start();
    let leader = await cluster.leader();
    let st = await leader.client.status();
    say(`member ${leader.id} leads term ${st.term}; voters ${st.voters.join(', ')}`);

    const t0 = performance.now();
    for (let i = 0; i < 100; i++) {
      await leader.client.put(`key${i}`, enc.encode(`value${i}`));
      if ((i + 1) % 25 === 0) say(`  wrote ${i + 1}/100 keys`);
    }
    say(`wrote 100 keys in ${(performance.now() - t0).toFixed(0)} ms, one at a time`);

    const victim = leader;
    say(`crashing the leader (member ${victim.id}, SIGKILL)…`);
    const tKill = performance.now();
    await cluster.kill(victim);
    leader = await cluster.leader(15_000);
    st = await leader.client.status();
    say(`member ${leader.id} leads term ${st.term}, elected ${(performance.now() - tKill).toFixed(0)} ms after the crash`);

    for (let i = 100; i < 150; i++) await leader.client.put(`key${i}`, enc.encode(`value${i}`));
    say('wrote 50 more keys to the new leader');

    const follower = cluster.members.find((m) => m.proc && m.id !== leader.id)!;
    let ok = 0;
    for (let i = 0; i < 150; i++) {
      const r = await follower.client.get(`key${i}`);
      if (r.found && dec.decode(r.value) === `value${i}`) ok++;
    }
    say(`read all 150 keys back from follower ${follower.id} (linearizable, by ReadIndex): ${ok}/150 correct`);
    if (ok !== 150) throw new Error(`only ${ok}/150 keys read back correctly`);

    say(`restarting member ${victim.id} from its WAL…`);
    await cluster.spawn(victim);
    const want = (await leader.client.status()).commit;
    const end = Date.now() + 10_000;
    let applied = 0;
    while (Date.now() < end) {
      applied = (await victim.client.status()).applied;
      if (applied >= want) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    say(`member ${victim.id} caught up: applied index ${applied} (leader's commit index ${want})`);
    const r = await victim.client.get('key149');
    say(`member ${victim.id} reads key149 = ${dec.decode(r.value)}`);
    say('demo done: stopping the members');
  } finally {
    await cluster.close();
  }
}
