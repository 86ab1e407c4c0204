// Membership changes through the manager's Raft member, on a real WAL and a
// loopback gRPC server: a change the leader refuses settles its caller with a
// TsswarmError saying why, before anything is proposed, and the member goes on.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, expect, it } from 'vitest';
import { Consensus } from '../../../manager/consensus/index.js';
import type { StateMachine } from '../../../manager/raft/node.js';
import { until } from '../../lib/wait.js';

const root = mkdtempSync(join(tmpdir(), 'tss-test-membership-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const sm: StateMachine = { apply: () => undefined, snapshot: () => new Uint8Array(0), restore: () => undefined };

it('removing the last voter, or a member not in the configuration, is refused with an error, and the manager keeps writing', async () => {
  const server = new grpc.Server();
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  const c = await Consensus.open({
    dir: join(root, 'm1'),
    raftId: 'r1',
    nodeId: 'n1',
    advertiseAddr: `127.0.0.1:${port}`,
    clusterId: 'c1',
    server,
    credentials: { server: grpc.ServerCredentials.createInsecure(), client: grpc.credentials.createInsecure() },
    store: sm,
    logger: pino({ level: 'silent' }),
    bootstrap: true,
    tickMs: 50,
  });
  try {
    await until('a leader', () => c.isLeader, { timeoutMs: 10_000, everyMs: 10 });
    // A new leader's own empty entry commits just after it leads; a read barrier waits for it, so `last` holds still.
    await c.readBarrier();
    const last = c.status().commit;
    await expect(c.removeMember('r1')).rejects.toMatchObject({
      code: 'FAILED_PRECONDITION',
      message: expect.stringMatching(/removing raft member r1 was refused: removed all voters/),
    });
    await expect(c.removeMember('nobody')).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringMatching(/raft member nobody is not in the configuration/),
    });
    expect(c.status().commit).toBe(last);
    expect(c.status().config.voters).toEqual(['r1']);
    await expect(c.proposeStore(new Uint8Array([1]))).resolves.toBeGreaterThan(last);
  } finally {
    await c.close();
    server.forceShutdown();
  }
});
