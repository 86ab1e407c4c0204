// The generated codecs on proto/runtime.ts: proto3 defaults on create, and an
// unset bytes field decodes as an empty Uint8Array even in a nested message
// whose own codec was never used (codecs are prepared lazily, on first use).
import { expect, it } from 'vitest';
import { Entry, Message } from '../../proto/gen/raft.js';
import { Task } from '../../proto/gen/objects.js';

it('create fills every scalar, repeated and map field with its proto3 default', () => {
  const t = Task.create();
  expect(t.serviceId).toBe('');
  expect(t.slot).toBe(0);
  expect(t.networks).toEqual([]);
  expect(t.meta).toBeUndefined();
});

it('an unset bytes field of a nested message decodes as an empty Uint8Array, its codec never touched', () => {
  // Only Message's codec is used: Entry's bytes default comes from Message's preparation.
  const m = Message.decode(
    Message.encode({ ...Message.create(), entries: [{ ...(Object.create(null) as object), index: 3, term: 1, type: 0 } as never] }),
  );
  expect(m.entries[0]!.index).toBe(3);
  expect(m.entries[0]!.data).toBeInstanceOf(Uint8Array);
  expect(m.entries[0]!.data.length).toBe(0);
  // And through its own codec.
  expect(Entry.decode(Entry.encode(Entry.create({ index: 1 }))).data).toBeInstanceOf(Uint8Array);
});
