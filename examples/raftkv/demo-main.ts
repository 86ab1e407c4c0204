// `npm run demo`: a 3-member Raft key-value cluster on loopback showing
// replication, leader failover and catch-up (an example of the Raft library,
// not part of the tsswarm command). `--logs` shows the members' pino logs on stderr.
import { runDemo } from './demo.js';

try {
  await runDemo((line) => process.stdout.write(line + '\n'), { logs: process.argv.slice(2).includes('--logs') });
} catch (e) {
  process.stderr.write(`raft demo failed: ${(e as Error).message}\n`);
  process.exitCode = 1;
}
