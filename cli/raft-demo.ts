// `tsswarm raft-demo`: the main job at this stage, a 3-member Raft key-value
// cluster on loopback showing replication, leader failover and catch-up.
// `--logs` shows the members' pino logs on stderr.
import { runDemo } from '../manager/raftkv/demo.js';

export async function raftDemo(args: string[]): Promise<number> {
  try {
    await runDemo((line) => process.stdout.write(line + '\n'), { logs: args.includes('--logs') });
    return 0;
  } catch (e) {
    process.stderr.write(`raft-demo failed: ${(e as Error).message}\n`);
    return 1;
  }
}
