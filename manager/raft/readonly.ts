// Linearizable reads by ReadIndex (Raft thesis §6.4): the leader records its
// commit index for a request, confirms it is still leader with a heartbeat
// round acknowledged by a quorum, then releases the read at that index.
import type { Message } from '../../proto/gen/raft.js';

export type ReadOnlyOption = 'safe' | 'lease-based';

export interface ReadIndexStatus {
  req: Message;
  index: number;
  acks: Map<string, boolean>;
}

/** Request contexts are bytes; they are keyed by their hex form. */
export function ctxKey(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('hex');
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];
  private queueCtx: Uint8Array[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  addRequest(index: number, m: Message): void {
    const ctx = m.entries[0]!.data;
    const k = ctxKey(ctx);
    if (this.pending.has(k)) return;
    this.pending.set(k, { index, req: m, acks: new Map() });
    this.queue.push(k);
    this.queueCtx.push(ctx);
  }

  /** Records a heartbeat acknowledgement carrying ctx; returns the acks so far, or undefined if ctx is unknown. */
  recvAck(id: string, ctx: Uint8Array): Map<string, boolean> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (!rs) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /** Releases every request up to and including the one with ctx (a later confirmation confirms the earlier ones too). */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const k = ctxKey(ctx);
    const i = this.queue.indexOf(k);
    if (i < 0) return [];
    const keys = this.queue.splice(0, i + 1);
    this.queueCtx.splice(0, i + 1);
    const out: ReadIndexStatus[] = [];
    for (const key of keys) {
      out.push(this.pending.get(key)!);
      this.pending.delete(key);
    }
    return out;
  }

  lastPendingRequestCtx(): Uint8Array | undefined {
    return this.queueCtx[this.queueCtx.length - 1];
  }

  get size(): number {
    return this.queue.length;
  }
}
