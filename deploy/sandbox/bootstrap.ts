// Forms a cluster out of a fresh sandbox: the first host inits, the other
// managers and then the workers join with tokens from the first, each through
// the real CLI inside its own host (as a person would type it there).
import { TsswarmError } from '../../lib/errors.js';
import { DAEMON_PORT } from './layout.js';
import type { Sandbox } from './sandbox.js';

export async function bootstrapCluster(sb: Sandbox, progress: (line: string) => void = () => undefined): Promise<void> {
  const hosts = sb.hosts();
  const first = hosts[0];
  if (!first) return;
  const run = async (host: string, argv: string[]): Promise<string> => {
    const r = await sb.execCapture(host, argv, { timeoutMs: 60_000 });
    if (r.code !== 0)
      throw new TsswarmError('UNAVAILABLE', `${host}: \`${argv.join(' ')}\` failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
    return r.stdout.trim();
  };
  progress(`Initializing the cluster on ${first.name} (${first.addr})`);
  await run(first.name, ['tsswarm', 'init', '--advertise-addr', first.addr]);
  const managerToken = await run(first.name, ['tsswarm', 'join-token', '-q', 'manager']);
  const workerToken = await run(first.name, ['tsswarm', 'join-token', '-q', 'worker']);
  for (const h of hosts.slice(1)) {
    progress(`Joining ${h.name} as a ${h.role}`);
    await run(h.name, ['tsswarm', 'join', '--token', h.role === 'manager' ? managerToken : workerToken, `${first.addr}:${DAEMON_PORT}`]);
  }
}
