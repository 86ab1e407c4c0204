// The session send queue on a scripted stream: it honours write()'s
// backpressure and the in-flight window, keeps order, and closes itself once
// the bytes it holds pass the cap.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Outbox, type OutboxStream } from '../../../manager/dispatcher/outbox.js';
import type { ManagerMessage } from '../../../proto/gen/control.js';

/** A stream that accepts `room` writes before saying false, and flushes only when told. */
class ScriptedStream extends EventEmitter implements OutboxStream {
  written: string[] = [];
  private pending: Array<() => void> = [];
  constructor(private room: number) {
    super();
  }
  write(m: ManagerMessage, cb: () => void): boolean {
    this.written.push(m.relay!.requestId);
    this.pending.push(cb);
    return this.pending.length < this.room;
  }
  /** The connection took `n` writes: their callbacks run, and 'drain' once below room. */
  flush(n = Infinity): void {
    const done = this.pending.splice(0, n);
    for (const cb of done) cb();
    if (done.length) this.emit('drain');
  }
}

const msg = (id: string): ManagerMessage => ({ relay: { requestId: id } }) as ManagerMessage;

describe('session outbox', () => {
  it('stops writing when the stream says false and resumes in order on drain', () => {
    const s = new ScriptedStream(2);
    const out = new Outbox(s, { maxBytes: 1e9, windowBytes: 1e9 }, () => expect.unreachable());
    for (let i = 0; i < 5; i++) out.send(msg(`m${i}`), 10);
    expect(s.written).toEqual(['m0', 'm1']);
    expect(out.bytes).toBe(50);
    s.flush();
    expect(s.written).toEqual(['m0', 'm1', 'm2', 'm3']);
    s.flush();
    s.flush();
    expect(s.written).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(out.bytes).toBe(0);
  });

  it('keeps at most the window in flight even when the stream never pushes back', () => {
    const s = new ScriptedStream(Infinity);
    const out = new Outbox(s, { maxBytes: 1e9, windowBytes: 250 }, () => expect.unreachable());
    for (let i = 0; i < 10; i++) out.send(msg(`m${i}`), 100);
    expect(s.written).toHaveLength(3);
    s.flush(1);
    expect(s.written).toHaveLength(4);
  });

  it('closes once the bytes held pass the cap, frees its queue and reports it once', () => {
    const s = new ScriptedStream(1);
    const overflows: Array<[number, number]> = [];
    const out = new Outbox(s, { maxBytes: 1000, windowBytes: 1e9 }, (b, cap) => overflows.push([b, cap]));
    for (let i = 0; i < 10; i++) out.send(msg(`m${i}`), 100);
    expect(overflows).toEqual([]);
    out.send(msg('m10'), 100);
    expect(overflows).toEqual([[1100, 1000]]);
    expect(out.isClosed).toBe(true);
    for (let i = 0; i < 100; i++) out.send(msg(`late${i}`), 100);
    s.flush();
    expect(s.written).toEqual(['m0']);
    expect(overflows).toHaveLength(1);
    expect(out.bytes).toBe(0);
  });

  it('allow() raises the cap for a full set larger than it', () => {
    const s = new ScriptedStream(1);
    const out = new Outbox(s, { maxBytes: 1000, windowBytes: 1e9 }, () => expect.unreachable());
    out.allow(5000);
    for (let i = 0; i < 40; i++) out.send(msg(`m${i}`), 100);
    expect(out.isClosed).toBe(false);
    out.allow(10); // never lowers it
    out.send(msg('m40'), 100);
    expect(out.isClosed).toBe(false);
  });
});
