// A real manager's Raft state at rest: the root CA's private key it stores in
// the cluster object is in none of the files of its Raft directory, the WAL
// and snapshot files are sealed with its data key, and it restarts from them.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createCSR, createRootCA, generateNodeKey, parseNodeCert, signNodeCSR } from '../../../ca/index.js';
import { newRaftId } from '../../../lib/ids.js';
import { silentLogger } from '../../../lib/log.js';
import { Manager } from '../../../manager/manager.js';
import { until } from '../../lib/wait.js';

const root = mkdtempSync(join(tmpdir(), 'tss-test-at-rest-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function files(d: string): string[] {
  return readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

function containing(d: string, needle: string): string[] {
  const b = Buffer.from(needle);
  return files(d).filter((f) => readFileSync(f).includes(b));
}

describe('a manager at rest', () => {
  it('never writes the root CA key in plaintext to its Raft directory, and restarts from the sealed state', async () => {
    const raftDir = join(root, 'raft');
    const nodeId = 'tss-at-rest-1';
    const clusterId = 'tss-at-rest';
    const now = Date.now();
    const ca = createRootCA({ commonName: `${nodeId}-ca`, now });
    const key = generateNodeKey();
    const cert = parseNodeCert(signNodeCSR(ca, createCSR(key.privateKeyPem, { nodeId }), { nodeId, role: 'manager', clusterId, now }));
    const raftId = newRaftId();
    const start = async (bootstrap: boolean): Promise<{ manager: Manager; server: grpc.Server }> => {
      const server = new grpc.Server();
      const manager = await Manager.start({
        raftDir,
        nodeId,
        raftId,
        clusterId,
        advertiseAddr: '127.0.0.1:1',
        server,
        credentials: { server: grpc.ServerCredentials.createInsecure(), client: grpc.credentials.createInsecure() },
        logger: silentLogger(),
        bootstrap: bootstrap
          ? {
              clusterId,
              caCertPem: ca.certPem,
              caKeyPem: ca.keyPem,
              hostname: nodeId,
              certSerial: cert.serial,
              certExpiryMs: cert.notAfter.getTime(),
              nodeCertValidityMs: 0,
            }
          : undefined,
        heartbeatPeriodMs: 60_000,
        version: 'test',
        caCertPem: () => ca.certPem,
      });
      await until('the manager to lead with the cluster object', () => manager.consensus.isLeader && manager.cluster(), {
        timeoutMs: 15_000,
        everyMs: 20,
      });
      return { manager, server };
    };

    const a = await start(true);
    // The key is in the store, so in the Raft log.
    expect(a.manager.cluster()?.spec?.rootCaKeyPem).toBe(ca.keyPem);
    await a.manager.close();
    a.server.forceShutdown();

    // The key's base64 body, line by line: no line of it in any file.
    const body = ca.keyPem.split('\n').filter((l) => l && !l.startsWith('-----'));
    expect(body.length).toBeGreaterThan(0);
    for (const line of body) expect(containing(raftDir, line)).toEqual([]);
    expect(containing(raftDir, 'PRIVATE KEY')).toEqual([]);
    expect(readdirSync(raftDir).sort()).toEqual(['raft-dek.json', 'raft-kek.json', 'snap', 'wal']);

    // A data key rotation while it serves: the next writes use key 2, the old key stays until a snapshot releases its segments.
    const b = await start(false);
    expect(b.manager.cluster()).toBeTruthy();
    expect(await b.manager.consensus.rotateDataKey()).toBe(2);
    await b.manager.close();
    b.server.forceShutdown();
    const dek = JSON.parse(readFileSync(join(raftDir, 'raft-dek.json'), 'utf8')) as { current: number; deks: { id: number }[] };
    expect(dek.current).toBe(2);
    expect(dek.deks.map((k) => k.id)).toEqual([2, 1]);

    const c = await start(false);
    expect(c.manager.cluster()?.spec?.rootCaKeyPem).toBe(ca.keyPem);
    await c.manager.close();
    c.server.forceShutdown();
    for (const line of body) expect(containing(raftDir, line)).toEqual([]);
  }, 60_000);
});
