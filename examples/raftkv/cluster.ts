// Runs a raftkv cluster of member processes on loopback, and a client for it.
// Used by the raft demo and the Raft benchmark; every process it starts is
// stopped by close(), and every directory it makes is removed.
import * as grpc from '@grpc/grpc-js';
import { grpcChannelOptions } from '../../lib/grpc.js';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../lib/paths.js';
import {
  GetRequest,
  type GetResponse,
  KVService,
  PutRequest,
  type PutResponse,
  StatusRequest,
  type StatusResponse,
  WriteRequest,
  type WriteResponse,
} from '../../proto/gen/raftkv.js';

// Members run the TypeScript source through tsx (a development dependency): the demo is for a checkout.
const here = join(packageRoot(), 'examples', 'raftkv');

/**
 * A loopback TCP port that is free now, picked below the kernel's ephemeral
 * range (net.ipv4.ip_local_port_range, 32768-60999 here): a port taken from
 * that range by a bind to 0 can be handed, between our check and the
 * member's bind, to the local end of any outgoing connection on the machine
 * (a CI run has hundreds), and the member then dies with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canBind(port)) return port;
  }
  throw new Error('no free loopback port found in 20000-31999 after 200 tries');
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
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
    this.c = new Ctor(address, grpc.credentials.createInsecure(), grpcChannelOptions()) as unknown as KvClient['c'];
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

  /**
   * Starts every member. A member that dies before it serves (most often a
   * port some other process took since we picked it) fails the attempt; the
   * cluster is then started again on fresh ports, up to three times, and the
   * last error quotes the member's stderr.
   */
  async start(): Promise<void> {
    let last: Error | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      const ids = Array.from({ length: this.size }, (_, i) => String(i + 1));
      const ports = new Set<number>();
      while (ports.size < this.size * 2) ports.add(await freePort());
      const p = [...ports];
      this.members.length = 0;
      for (const [i, id] of ids.entries()) {
        const kv = `127.0.0.1:${p[2 * i]}`;
        this.members.push({
          id,
          raft: `127.0.0.1:${p[2 * i + 1]}`,
          kv,
          dir: join(this.root, `a${attempt}-m${id}`),
          client: new KvClient(kv),
        });
      }
      const results = await Promise.allSettled(this.members.map((m) => this.spawn(m)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (!failed) return;
      last = failed.reason as Error;
      await this.stopAll();
    }
    throw last!;
  }

  /** Starts (or restarts) one member's process and waits until it serves. */
  spawn(m: LocalMember): Promise<void> {
    const peers = this.members.map((x) => `${x.id}=${x.raft}`).join(',');
    // RAFTKV_NODE_ARGS passes extra flags to each member's node (e.g. `--cpu-prof --cpu-prof-dir=/tmp/x`).
    const nodeArgs = (process.env.RAFTKV_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const proc = spawn(
      process.execPath,
      [
        ...nodeArgs,
        '--import',
        'tsx',
        join(here, 'main.ts'),
        '--id',
        m.id,
        '--dir',
        m.dir,
        '--raft',
        m.raft,
        '--kv',
        m.kv,
        '--peers',
        peers,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env },
      },
    );
    m.proc = proc;
    // stderr is kept (its last 4 KiB) to explain an early exit, and echoed when logs were asked for.
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => {
      if (this.logFd === 'inherit') process.stderr.write(d);
      err = (err + d.toString()).slice(-4096);
    });
    return new Promise((resolve, reject) => {
      let buf = '';
      proc.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('"ready":true')) resolve();
      });
      proc.once('exit', (code, signal) => {
        const why = err.trim() ? `; its stderr ends:\n${err.trim()}` : '';
        reject(new Error(`member ${m.id} (raft ${m.raft}, kv ${m.kv}) exited with ${signal ?? `code ${code}`} before it was ready${why}`));
      });
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
    await this.stopAll();
    rmSync(this.root, { recursive: true, force: true });
  }

  private async stopAll(): Promise<void> {
    for (const m of this.members) {
      m.client.close();
      const p = m.proc;
      m.proc = undefined;
      if (p && p.exitCode === null && p.signalCode === null) {
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
  }
}
