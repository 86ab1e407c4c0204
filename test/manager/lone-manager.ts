// One in-process manager that bootstraps its own cluster and leads it, on an
// insecure loopback server and its own temporary Raft directory: what tests
// of node operations, join checks and reads need without mTLS or an agent;
// with `tls`, it listens on a loopback port with mTLS, for agents to join.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CertAndKey, createCSR, createRootCA, generateNodeKey, parseNodeCert, signNodeCSR } from '../../ca/index.js';
import { newRaftId } from '../../lib/ids.js';
import { silentLogger } from '../../lib/log.js';
import { Manager, type ManagerOptions } from '../../manager/manager.js';
import { MemoryCertificateProvider, channelCredentials, serverCredentials } from '../../lib/tls.js';
import { until } from '../lib/wait.js';

export interface LoneManager {
  manager: Manager;
  ca: CertAndKey;
  clusterId: string;
  /** Where it listens with mTLS (opts.tls), host:port; '' without. */
  addr: string;
  /** The manager's Raft directory (its WAL, snapshots and key files). */
  raftDir: string;
  /** Stops the manager and its server and removes its directory. */
  close(): Promise<void>;
}

/** Starts a manager named `nodeId` that bootstraps cluster `clusterId`; resolves once it leads with its node and the cluster object stored. */
export async function startLoneManager(
  nodeId: string,
  clusterId: string,
  opts: Pick<ManagerOptions, 'onLockChange'> & {
    unlockKey?: string;
    /** Serve on a loopback port with mTLS, as a daemon does, so agents can join and open sessions. */
    tls?: boolean;
    heartbeatPeriodMs?: number;
  } = {},
): Promise<LoneManager> {
  const dir = mkdtempSync(join(tmpdir(), `tss-${nodeId}-`));
  const server = new grpc.Server();
  const now = Date.now();
  const ca = createRootCA({ commonName: `${nodeId}-ca`, now });
  const key = generateNodeKey();
  const certPem = signNodeCSR(ca, createCSR(key.privateKeyPem, { nodeId }), { nodeId, role: 'manager', clusterId, now });
  const cert = parseNodeCert(certPem);
  let addr = '';
  let credentials = { server: grpc.ServerCredentials.createInsecure(), client: grpc.credentials.createInsecure() };
  if (opts.tls) {
    const tls = new MemoryCertificateProvider();
    tls.set(ca.certPem, certPem, key.privateKeyPem);
    credentials = { server: serverCredentials(tls), client: channelCredentials(tls) };
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', credentials.server, (err, n) => (err ? reject(err) : resolve(n))),
    );
    addr = `127.0.0.1:${port}`;
  }
  const manager = await Manager.start({
    raftDir: join(dir, 'raft'),
    nodeId,
    raftId: newRaftId(),
    clusterId,
    advertiseAddr: addr || '127.0.0.1:1',
    server,
    credentials,
    logger: silentLogger(),
    bootstrap: {
      clusterId,
      caCertPem: ca.certPem,
      caKeyPem: ca.keyPem,
      hostname: nodeId,
      certSerial: cert.serial,
      certExpiryMs: cert.notAfter.getTime(),
      nodeCertValidityMs: 0,
      unlockKey: opts.unlockKey,
    },
    heartbeatPeriodMs: opts.heartbeatPeriodMs ?? 60_000,
    version: 'test',
    caCertPem: () => ca.certPem,
    onLockChange: opts.onLockChange,
  });
  const close = async (): Promise<void> => {
    await manager.close();
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until(
      'the manager to lead with its node and the cluster object',
      () => manager.consensus.isLeader && manager.cluster() && manager.store.view((tx) => tx.nodes.get(nodeId)),
      { timeoutMs: 15_000, everyMs: 20 },
    );
  } catch (e) {
    await close();
    throw e;
  }
  return { manager, ca, clusterId, addr, raftDir: join(dir, 'raft'), close };
}
