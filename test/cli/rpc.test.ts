// The CLI's own gRPC client (cli/rpc.ts) against a real grpc-js server, as the
// daemon runs it, and against a raw HTTP/2 server that sends what a broken or
// hostile peer could: an oversized or compressed message, no status at all.
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSessions, rpc, type RpcMethod, unaryRpc } from '../../cli/rpc.js';
import { TsswarmError } from '../../lib/errors.js';
import { serverStream, unary } from '../../lib/grpc.js';
import { ControlService, type GetNodeRequest, type GetNodeResponse, LogChunk, type ServiceLogsRequest } from '../../proto/gen/control.js';
import { Meta, Node } from '../../proto/gen/objects.js';

const dir = mkdtempSync(join(tmpdir(), 'tss-rpc-'));
const sock = join(dir, 'grpc.sock');
const raw = join(dir, 'raw.sock');
const getNode = ControlService.getNode as unknown as RpcMethod<Partial<GetNodeRequest>, GetNodeResponse>;
const logs = ControlService.serviceLogs as unknown as RpcMethod<Partial<ServiceLogsRequest>, LogChunk>;

const server = new grpc.Server();
let rawServer: http2.Http2Server;
let rawBehaviour: (s: http2.ServerHttp2Stream) => void = () => {};

beforeAll(async () => {
  server.addService(ControlService, {
    getNode: unary<GetNodeRequest, GetNodeResponse>(async (req) => {
      if (req.ref === 'missing') throw new TsswarmError('NOT_FOUND', 'node missing not found');
      if (req.ref === 'plain') throw Object.assign(new Error('plain failure'), { code: grpc.status.PERMISSION_DENIED, details: 'no' });
      if (req.ref === 'slow') await new Promise((r) => setTimeout(r, 5_000));
      return { node: Node.create({ meta: Meta.create({ id: `id-of-${req.ref}` }) }), stale: false };
    }),
    serviceLogs: serverStream<ServiceLogsRequest, LogChunk>(async (req, write, signal) => {
      for (let i = 0; i < req.tail; i++) write(LogChunk.create({ taskId: `t${i}`, data: Buffer.from(`line ${i}\n`) }));
      if (req.follow) await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
    }),
  } as unknown as grpc.UntypedServiceImplementation);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  rawServer = http2.createServer();
  rawServer.on('stream', (s) => rawBehaviour(s));
  await new Promise<void>((r) => rawServer.listen(raw, r));
});

afterAll(async () => {
  closeSessions();
  server.forceShutdown();
  await new Promise((r) => rawServer.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('cli/rpc against grpc-js', () => {
  it('makes a unary call', async () => {
    const r = await unaryRpc(sock, getNode, { ref: 'n1' }, 5_000);
    expect(r.node.meta.id).toBe('id-of-n1');
  });

  it('gives the stable code and message the server named', async () => {
    const e = (await unaryRpc(sock, getNode, { ref: 'missing' }, 5_000).catch((x: unknown) => x)) as TsswarmError;
    expect(e).toBeInstanceOf(TsswarmError);
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toBe('node missing not found');
  });

  it('derives the code from the status when the server named none, prefixing what was called', async () => {
    const e = (await unaryRpc(sock, getNode, { ref: 'plain' }, 5_000, 'tsswarm daemon').catch((x: unknown) => x)) as TsswarmError;
    expect(e.code).toBe('PERMISSION_DENIED');
    expect(e.message).toBe('tsswarm daemon: no');
  });

  it('keeps its deadline', async () => {
    const e = (await unaryRpc(sock, getNode, { ref: 'slow' }, 200).catch((x: unknown) => x)) as TsswarmError;
    expect(e.code).toBe('DEADLINE_EXCEEDED');
  });

  it('reads a server stream to its end, in order', async () => {
    const got: string[] = [];
    await rpc(sock, logs, { tail: 50 }, (c) => got.push(Buffer.from(c.data).toString()));
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `line ${i}\n`));
  });

  it('ends a following stream when its signal aborts', async () => {
    const ac = new AbortController();
    const got: string[] = [];
    await rpc(
      sock,
      logs,
      { tail: 3, follow: true },
      (c) => {
        got.push(c.taskId);
        if (got.length === 3) ac.abort();
      },
      { signal: ac.signal },
    );
    expect(got).toEqual(['t0', 't1', 't2']);
  });

  it('names the socket when no daemon listens there', async () => {
    const e = (await unaryRpc(join(dir, 'none.sock'), getNode, {}, 2_000).catch((x: unknown) => x)) as TsswarmError;
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toContain(`Cannot connect to the tsswarm daemon at unix://${join(dir, 'none.sock')}`);
  });
});

describe('cli/rpc against a hostile server', () => {
  const respond = (s: http2.ServerHttp2Stream, body: Buffer, trailers: http2.OutgoingHttpHeaders | null): void => {
    s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: trailers !== null });
    if (trailers) s.on('wantTrailers', () => s.sendTrailers(trailers));
    s.end(body);
  };
  const prefix = (flag: number, len: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = flag;
    b.writeUInt32BE(len, 1);
    return b;
  };

  it('reassembles messages however the bytes arrive: split across many small chunks, several in one, empty ones', async () => {
    const msgs = [
      LogChunk.create({ taskId: 'a', data: Buffer.alloc(3000, 1) }),
      LogChunk.create(),
      LogChunk.create({ taskId: 'b', data: Buffer.from('x') }),
    ];
    const body = Buffer.concat(
      msgs.map((m) => {
        const b = Buffer.from(LogChunk.encode(m));
        return Buffer.concat([prefix(0, b.length), b]);
      }),
    );
    rawBehaviour = (s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      // 7-byte pieces on separate turns of the event loop, then the end.
      void (async () => {
        for (let at = 0; at < body.length; at += 7) {
          s.write(body.subarray(at, at + 7));
          await new Promise((r) => setImmediate(r));
        }
        s.end();
      })();
    };
    const got: Array<[string, number]> = [];
    await rpc(raw, logs, {}, (c) => got.push([c.taskId, c.data.length]), { timeoutMs: 10_000 });
    expect(got).toEqual([
      ['a', 3000],
      ['', 0],
      ['b', 1],
    ]);
    rawBehaviour = (s) => respond(s, body, { 'grpc-status': '0' });
    const again: string[] = [];
    await rpc(raw, logs, {}, (c) => again.push(c.taskId), { timeoutMs: 10_000 });
    expect(again).toEqual(['a', '', 'b']);
  });

  it('refuses a message announced over 16 MiB without waiting for it', async () => {
    rawBehaviour = (s) => respond(s, prefix(0, 64 << 20), { 'grpc-status': '0' });
    const e = (await unaryRpc(raw, getNode, {}, 5_000).catch((x: unknown) => x)) as TsswarmError;
    expect(e.code).toBe('RESOURCE_EXHAUSTED');
  });

  it('refuses a compressed message it did not ask for', async () => {
    rawBehaviour = (s) => respond(s, Buffer.concat([prefix(1, 1), Buffer.from([0])]), { 'grpc-status': '0' });
    const e = (await unaryRpc(raw, getNode, {}, 5_000).catch((x: unknown) => x)) as TsswarmError;
    expect(e.message).toMatch(/compressed/);
  });

  it('fails a call that ends without a status', async () => {
    rawBehaviour = (s) => respond(s, Buffer.alloc(0), null);
    const e = (await unaryRpc(raw, getNode, {}, 5_000).catch((x: unknown) => x)) as TsswarmError;
    expect(e.code).toBe('UNAVAILABLE');
    expect(e.message).toMatch(/without a status/);
  });

  it('fails a call that ends inside a message', async () => {
    rawBehaviour = (s) => respond(s, Buffer.concat([prefix(0, 10), Buffer.from([1, 2])]), { 'grpc-status': '0' });
    const e = (await unaryRpc(raw, getNode, {}, 5_000).catch((x: unknown) => x)) as TsswarmError;
    expect(e.message).toMatch(/ended inside a message/);
  });

  it('refuses an OK unary answer without a message', async () => {
    rawBehaviour = (s) => respond(s, Buffer.alloc(0), { 'grpc-status': '0' });
    const e = (await unaryRpc(raw, getNode, {}, 5_000).catch((x: unknown) => x)) as TsswarmError;
    expect(e.message).toMatch(/expected one response message, got 0/);
  });

  it('decodes a percent-encoded grpc-message', async () => {
    rawBehaviour = (s) => respond(s, Buffer.alloc(0), { 'grpc-status': '5', 'grpc-message': 'no%20such%20node' });
    const e = (await unaryRpc(raw, getNode, {}, 5_000, 'x').catch((x: unknown) => x)) as TsswarmError;
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toBe('x: no such node');
  });
});
