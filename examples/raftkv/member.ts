// One member of a replicated key-value service on the Raft library, in its
// own process: WAL on disk, gRPC transport to its peers, and a gRPC KV API for
// clients. The raft demo (npm run demo) and the Raft benchmark
// run three of these.
import { grpcServerOptions, serverNoDelay } from '../../lib/grpc.js';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type pino from 'pino';
import {
  type GetRequest,
  GetResponse,
  KVService,
  PutRequest,
  PutResponse,
  type StatusRequest,
  StatusResponse,
  type WriteRequest,
  WriteResponse,
} from '../../proto/gen/raftkv.js';
import { RaftError } from '../../manager/raft/errors.js';
import { RaftNode, type StateMachine } from '../../manager/raft/node.js';
import { DiskStorage, realVfs } from '../../manager/raft/storage/index.js';
import { GrpcTransport } from '../../manager/raft/transport/index.js';

export interface MemberOptions {
  id: string;
  dir: string;
  /** host:port for Raft traffic between members. */
  raftListen: string;
  /** host:port for the KV API. */
  kvListen: string;
  /** Raft addresses of every member, this one included. */
  peers: Record<string, string>;
  /** Founding members on first start (all of peers by default). */
  bootstrap?: string[];
  tickMs?: number;
  logger: pino.Logger;
}

class KvStore implements StateMachine {
  data = new Map<string, Uint8Array>();
  apply(data: Uint8Array): void {
    const req = PutRequest.decode(data);
    this.data.set(req.key, req.value);
  }
  restore(data: Uint8Array): void {
    this.data = new Map();
    if (data.length === 0) return;
    // Snapshot format: a sequence of length-prefixed PutRequests.
    let off = 0;
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    while (off < data.length) {
      const len = dv.getUint32(off);
      const req = PutRequest.decode(data.subarray(off + 4, off + 4 + len));
      this.data.set(req.key, req.value);
      off += 4 + len;
    }
  }
  snapshot(): Uint8Array {
    const parts: Uint8Array[] = [];
    let size = 0;
    for (const [key, value] of this.data) {
      const b = PutRequest.encode(PutRequest.create({ key, value }));
      const hdr = new Uint8Array(4);
      new DataView(hdr.buffer).setUint32(0, b.length);
      parts.push(hdr, b);
      size += 4 + b.length;
    }
    const out = new Uint8Array(size);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

export interface Member {
  node: RaftNode;
  kvAddress: string;
  raftAddress: string;
  close(): Promise<void>;
}

function grpcError(code: grpc.status, message: string): grpc.ServiceError {
  return Object.assign(new Error(message), { code, details: message, metadata: new grpc.Metadata() }) as grpc.ServiceError;
}

export async function startMember(o: MemberOptions): Promise<Member> {
  const log = o.logger.child({ component: 'raftkv', member: o.id });
  // RAFTKV_ENCRYPTION=1 seals the WAL and snapshots as a tsswarm manager does (bench/raft.ts compares both).
  const { storage, state } = await DiskStorage.open(realVfs, o.dir, { logger: log, encryption: process.env.RAFTKV_ENCRYPTION === '1' });
  const kv = new KvStore();
  let node: RaftNode | undefined;
  const transport = new GrpcTransport(
    { id: o.id, cluster: 'raftkv', listen: o.raftListen, logger: log },
    {
      onMessage: (m) => node?.step(m),
      onUnreachable: (peer) => node?.reportUnreachable(peer),
      onSnapshotStatus: (peer, ok) => node?.reportSnapshot(peer, ok),
    },
  );
  const raftAddress = await transport.start();
  for (const [id, addr] of Object.entries(o.peers)) if (id !== o.id) transport.addPeer(id, addr);
  node = await RaftNode.open({
    id: o.id,
    loaded: state,
    persistence: storage,
    transport,
    stateMachine: kv,
    bootstrap: o.bootstrap ?? Object.keys(o.peers).sort(),
    electionTick: 10,
    heartbeatTick: 1,
    // etcd 3.4's --snapshot-count default. Capturing the whole state is synchronous: with 128k keys
    // (35 MB) every 10,000 entries it stalled commits every 1.5 s at c128 (p99 226 ms, 34 ms without).
    snapshotEntries: Number(process.env.RAFTKV_SNAPSHOT_ENTRIES ?? 100_000),
    keepEntries: 500,
    maxSizePerMsg: 1 << 20,
    maxInflightMsgs: 256,
    rand: (n) => Math.floor(Math.random() * n),
    nonce: randomBytes(8).readBigUInt64BE() >> 1n,
    logger: {
      debug: (m) => log.debug(m),
      info: (m) => log.info(m),
      warn: (m) => log.warn(m),
    },
    onLeaderChange: (lead, term) => log.info({ lead, term }, 'leader changed'),
    onFatal: (err) => {
      log.fatal({ err }, 'raft loop failed; exiting');
      process.exit(70);
    },
  });
  const n = node;
  const ticker = setInterval(() => n.tick(), o.tickMs ?? 100);

  const server = new grpc.Server(grpcServerOptions());
  const toStatus = (e: unknown): grpc.ServiceError => {
    if (e instanceof RaftError && e.code === 'PROPOSAL_DROPPED') return grpcError(grpc.status.UNAVAILABLE, e.message);
    if (e instanceof RaftError && e.code === 'STOPPED') return grpcError(grpc.status.UNAVAILABLE, e.message);
    return grpcError(grpc.status.INTERNAL, (e as Error).message);
  };
  server.addService(KVService, {
    put: (call: grpc.ServerUnaryCall<PutRequest, PutResponse>, cb: grpc.sendUnaryData<PutResponse>) => {
      if (call.request.key === '') {
        cb(grpcError(grpc.status.INVALID_ARGUMENT, 'key must not be empty: give the key to write'));
        return;
      }
      n.propose(PutRequest.encode(call.request)).then(
        (index) => cb(null, PutResponse.create({ index })),
        (e: unknown) => cb(toStatus(e)),
      );
    },
    write: (call: grpc.ServerDuplexStream<WriteRequest, WriteResponse>) => {
      call.on('data', (req: WriteRequest) => {
        const put = req.put;
        if (!put || put.key === '') {
          call.write(
            WriteResponse.create({ id: req.id, error: 'key must not be empty: give the key to write', code: grpc.status.INVALID_ARGUMENT }),
          );
          return;
        }
        n.propose(PutRequest.encode(put)).then(
          (index) => {
            if (!call.destroyed) call.write(WriteResponse.create({ id: req.id, index }));
          },
          (e: unknown) => {
            const st = toStatus(e);
            if (!call.destroyed) call.write(WriteResponse.create({ id: req.id, error: st.details ?? st.message, code: st.code }));
          },
        );
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined); // the client went away; its writes still commit
    },
    get: (call: grpc.ServerUnaryCall<GetRequest, GetResponse>, cb: grpc.sendUnaryData<GetResponse>) => {
      n.readBarrier().then(
        () => {
          const v = kv.data.get(call.request.key);
          cb(null, GetResponse.create({ value: v ?? new Uint8Array(0), found: v !== undefined, index: n.appliedIndex }));
        },
        (e: unknown) => cb(toStatus(e)),
      );
    },
    status: (_call: grpc.ServerUnaryCall<StatusRequest, StatusResponse>, cb: grpc.sendUnaryData<StatusResponse>) => {
      const st = n.status();
      cb(
        null,
        StatusResponse.create({
          id: st.id,
          leader: st.lead,
          term: st.term,
          commit: st.commit,
          applied: st.applied,
          state: st.raftState,
          fsyncs: storage.stats.fsyncs,
          entriesWritten: storage.stats.entriesWritten,
          proposals: n.stats.proposalsBatched,
          proposeBatches: n.stats.proposeBatches,
          voters: st.config.voters,
        }),
      );
    },
  });
  const kvPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(o.kvListen, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  serverNoDelay(server);
  const host = o.kvListen.slice(0, o.kvListen.lastIndexOf(':'));
  log.info({ raft: raftAddress, kv: `${host}:${kvPort}` }, 'member started');
  return {
    node: n,
    raftAddress,
    kvAddress: `${host}:${kvPort}`,
    async close() {
      clearInterval(ticker);
      await new Promise<void>((r) => server.tryShutdown(() => r()));
      await n.stop();
      await transport.stop();
      await storage.close();
    },
  };
}
