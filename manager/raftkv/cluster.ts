// Runs a raftkv cluster of member processes on loopback, and a client for it.
// Used by the raft demo and the Raft benchmark; every process it starts is
// stopped by close(), and every directory it makes is removed.
import * as grpc from '@grpc/grpc-js';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetRequest, GetResponse, KVService, PutRequest, PutResponse, StatusRequest, StatusResponse, WriteRequest, WriteResponse } from '../../proto/gen/raftkv.js';

const here = dirname(fileURLToPath(import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

type Unary<Req, Res> = (req: Req, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Res) => void) => grpc.ClientUnaryCall;

export class KvClient {
  private readonly c: grpc.Client & {
    put: Unary<PutRequest, PutResponse>;
    get: Unary<GetRequest, GetResponse>;
    status: Unary<StatusRequest, StatusResponse>;
  };
  constructor(readonly address: string) {
    const Ctor = grpc.makeGenericClientConstructor(KVService, 'KV');
    this.c = new Ctor(address, grpc.credentials.createInsecure()) as unknown as KvClient['c'];
  }
  private call<Req, Res>(fn: Unary<Req, Res>, req: Req, timeoutMs: number): Promise<Res> {
    return new Promise((resolve, reject) => {
      fn.call(this.c, req, { deadline: Date.now() + timeoutMs }, (e, r) => (e ? reject(e) : resolve(r!)));
    });
  }
  put(key: string, value: Uint8Array, timeoutMs = 5000): Promise<PutResponse> {
    return this.call(this.c.put, PutRequest.create({ key, value }), timeoutMs);
  }
  get(key: string, timeoutMs = 5000): Promise<GetResponse> {
    return this.call(this.c.get, GetRequest.create({ key }), timeoutMs);
  }
  status(timeoutMs = 2000): Promise<StatusResponse> {
    return this.call(this.c.status, StatusRequest.create(), timeoutMs);
  }
  /**
   * Puts over the pipelined Write stream: one stream carries every write in
   * flight; a broken stream fails its pending writes and the next write opens
   * a new one. Deadlines are checked by one sweep timer, not a timer per write.
   */
  write(key: string, value: Uint8Array, timeoutMs = 5000): Promise<number> {
    const s = this.openWriter();
    const id = ++this.writeSeq;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: Date.now() + timeoutMs });
      s.write(WriteRequest.create({ id, put: { key, value } }));
    });
  }
  private writeSeq = 0;
  private writer: grpc.ClientDuplexStream<WriteRequest, WriteResponse> | null = null;
  private readonly pending = new Map<number, { resolve: (index: number) => void; reject: (e: Error) => void; deadline: number }>();
  private sweep: NodeJS.Timeout | null = null;
  private openWriter(): grpc.ClientDuplexStream<WriteRequest, WriteResponse> {
    if (this.writer) return this.writer;
    const s = (this.c as unknown as { write(): grpc.ClientDuplexStream<WriteRequest, WriteResponse> }).write();
    this.writer = s;
    s.on('data', (r: WriteResponse) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.error) p.reject(Object.assign(new Error(r.error), { code: r.code }));
      else p.resolve(r.index);
    });
    const fail = (e: Error): void => {
      if (this.writer !== s) return;
      this.writer = null;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    s.on('error', fail);
    s.on('end', () => fail(new Error(`write stream to ${this.address} ended`)));
    this.sweep ??= setInterval(() => {
      const now = Date.now();
      for (const [id, p] of this.pending) {
        if (p.deadline > now) continue;
        this.pending.delete(id);
        p.reject(Object.assign(new Error(`write ${id} to ${this.address} timed out`), { code: grpc.status.DEADLINE_EXCEEDED }));
      }
    }, 250);
    this.sweep.unref();
    return s;
  }
  close(): void {
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = null;
    this.writer?.cancel();
    this.writer = null;
    this.c.close();
  }
}

export interface LocalMember {
  id: string;
  kv: string;
  raft: string;
  dir: string;
  proc?: ChildProcess;
  client: KvClient;
}

export class LocalCluster {
  readonly members: LocalMember[] = [];
  private root = '';
  private logFd: 'ignore' | 'inherit';

  constructor(
    readonly size: number,
    opts: { logs?: boolean; prefix?: string } = {},
  ) {
    this.logFd = opts.logs ? 'inherit' : 'ignore';
    this.root = mkdtempSync(join(tmpdir(), opts.prefix ?? 'tss-raftkv-'));
  }

  async start(): Promise<void> {
    const ids = Array.from({ length: this.size }, (_, i) => String(i + 1));
    const ports = [];
    for (let i = 0; i < this.size * 2; i++) ports.push(await freePort());
    for (const [i, id] of ids.entries()) {
      const kv = `127.0.0.1:${ports[2 * i]}`;
      this.members.push({ id, raft: `127.0.0.1:${ports[2 * i + 1]}`, kv, dir: join(this.root, `m${id}`), client: new KvClient(kv) });
    }
    await Promise.all(this.members.map((m) => this.spawn(m)));
  }

  /** Starts (or restarts) one member's process and waits until it serves. */
  spawn(m: LocalMember): Promise<void> {
    const peers = this.members.map((x) => `${x.id}=${x.raft}`).join(',');
    // RAFTKV_NODE_ARGS passes extra flags to each member's node (e.g. `--cpu-prof --cpu-prof-dir=/tmp/x`).
    const nodeArgs = (process.env.RAFTKV_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(here, 'main.ts'), '--id', m.id, '--dir', m.dir, '--raft', m.raft, '--kv', m.kv, '--peers', peers], {
      stdio: ['ignore', 'pipe', this.logFd],
      env: { ...process.env },
    });
    m.proc = proc;
    return new Promise((resolve, reject) => {
      let buf = '';
      proc.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('"ready":true')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`member ${m.id} exited with code ${code} before it was ready`)));
    });
  }

  /** SIGKILL: a crash, with no chance to flush anything. */
  kill(m: LocalMember): Promise<void> {
    const p = m.proc;
    m.proc = undefined;
    if (!p || p.exitCode !== null) return Promise.resolve();
    return new Promise((r) => {
      p.once('exit', () => r());
      p.kill('SIGKILL');
    });
  }

  async leader(timeoutMs = 10_000): Promise<LocalMember> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      for (const m of this.members) {
        if (!m.proc) continue;
        try {
          const st = await m.client.status(500);
          if (st.state === 'StateLeader') return m;
        } catch {
          // not up, or not answering: ask the next one
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no leader elected within ${timeoutMs} ms`);
  }

  async close(): Promise<void> {
    for (const m of this.members) {
      m.client.close();
      const p = m.proc;
      m.proc = undefined;
      if (p && p.exitCode === null) {
        await new Promise<void>((r) => {
          const t = setTimeout(() => p.kill('SIGKILL'), 3000);
          p.once('exit', () => {
            clearTimeout(t);
            r();
          });
          p.kill('SIGTERM');
        });
      }
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}
