// Process entry of one raftkv member: `tsx examples/raftkv/main.ts --id 1
// --dir D --raft 127.0.0.1:P --kv 127.0.0.1:Q --peers 1=addr,2=addr,3=addr`.
// Prints one JSON line {"ready":true,...} on stdout once serving.
import pino from 'pino';
import { startMember } from './member.js';

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v) {
    console.error(`--${name} is required (see examples/raftkv/main.ts for the flags)`);
    process.exit(2);
  }
  return v;
}

const peers: Record<string, string> = {};
for (const p of arg('peers').split(',')) {
  const [id, addr] = p.split('=');
  if (!id || !addr) {
    console.error(`--peers must be id=host:port,... (got "${p}")`);
    process.exit(2);
  }
  peers[id] = addr;
}
const logger = pino({ level: process.env.TSSWARM_LOG_LEVEL ?? 'info', base: { pid: process.pid } }, pino.destination(2));
const m = await startMember({
  id: arg('id'),
  dir: arg('dir'),
  raftListen: arg('raft'),
  kvListen: arg('kv'),
  peers,
  tickMs: Number(process.env.RAFTKV_TICK_MS ?? 100),
  logger,
});
process.stdout.write(JSON.stringify({ ready: true, id: m.node.id, kv: m.kvAddress, raft: m.raftAddress }) + '\n');
const shutdown = (): void => {
  void m.close().then(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
