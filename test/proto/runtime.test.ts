// The generated static codecs (proto/gen.ts, proto/runtime.ts) against
// protobufjs' reflected types as the reference: for every message type of
// every .proto, random messages encoded by one decode equal by the other, and
// toObject gives what protobufjs' toObject gives. Plus proto3 defaults on
// create, always-set fields, and hostile bytes.
import protobuf from 'protobufjs/light.js';
import { describe, expect, it } from 'vitest';
import * as control from '../../proto/gen/control.js';
import * as netfeed from '../../proto/gen/netfeed.js';
import { Meta, Task, TaskSpec } from '../../proto/gen/objects.js';
import * as objects from '../../proto/gen/objects.js';
import * as raft from '../../proto/gen/raft.js';
import { Entry, Message } from '../../proto/gen/raft.js';
import * as raftkv from '../../proto/gen/raftkv.js';
import { reflectType } from '../../proto/reflect.js';
import type { Codec } from '../../proto/runtime.js';

const codecs: Codec<unknown>[] = [];
for (const mod of [control, netfeed, objects, raft, raftkv])
  for (const v of Object.values(mod)) if (v && typeof v === 'object' && 'read' in v && 'write' in v) codecs.push(v as Codec<unknown>);

/** A small seeded PRNG (mulberry32), so a failure names a seed that reproduces it. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const always = (f: protobuf.Field): boolean => f.options?.['(always_set)'] === true;

/** A random message of `type`: some fields left unset, nested messages to depth 3, one oneof member at most. */
function randomMessage(type: protobuf.Type, r: () => number, depth = 0): Record<string, unknown> {
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const scalar = (f: protobuf.Field): unknown => {
    if (f.resolvedType instanceof protobuf.Enum) {
      const vs = Object.values(f.resolvedType.values);
      return vs[int(0, vs.length - 1)];
    }
    switch (f.type) {
      case 'string':
        return ['', 'a', 'tsswarm', 'ünïcode ✓', 'x'.repeat(int(0, 200))][int(0, 4)];
      case 'bool':
        return r() < 0.5;
      case 'bytes':
        return new Uint8Array(Array.from({ length: int(0, 40) }, () => int(0, 255)));
      case 'float':
        return Math.fround((r() - 0.5) * 1000);
      case 'double':
        return (r() - 0.5) * 1e9;
      case 'int32':
        return int(-(2 ** 31), 2 ** 31 - 1);
      case 'uint32':
        return int(0, 2 ** 32 - 1);
      case 'int64':
        return [0, 1, -1, int(-(2 ** 53) + 1, 2 ** 53 - 1), 1_700_000_000_000][int(0, 4)];
      default:
        return [0, 1, int(0, 2 ** 53 - 1), 2 ** 32, 2 ** 32 + 7][int(0, 4)];
    }
  };
  const value = (f: protobuf.Field): unknown =>
    f.resolvedType instanceof protobuf.Type ? randomMessage(f.resolvedType, r, depth + 1) : scalar(f);
  const m: Record<string, unknown> = {};
  const oneofChosen = new Set<string>();
  for (const f of type.fieldsArray) {
    f.resolve();
    if (f.partOf) {
      if (oneofChosen.has(f.partOf.name) || r() < 0.5 || depth > 3) continue;
      oneofChosen.add(f.partOf.name);
      m[f.name] = value(f);
      continue;
    }
    const isMsg = f.resolvedType instanceof protobuf.Type;
    if (isMsg && !always(f) && (depth > 3 || r() < 0.4)) continue;
    if (!isMsg && r() < 0.3) continue;
    if (f.map) {
      const o: Record<string, unknown> = {};
      for (let i = int(0, 3); i > 0; i--) o[`k${int(0, 99)}`] = value(f);
      m[f.name] = o;
    } else if (f.repeated) m[f.name] = depth > 3 && isMsg ? [] : Array.from({ length: int(0, 3) }, () => value(f));
    else m[f.name] = value(f);
  }
  return m;
}

const opts = { defaults: true, arrays: true, objects: true, enums: String, bytes: String } as const;

describe('static codecs against protobufjs reflection', () => {
  it('covers every message type of every .proto', () => {
    expect(codecs.length).toBeGreaterThan(140);
  });

  it('encode, decode and toObject agree with the reflected type on random messages', () => {
    for (const codec of codecs) {
      const type = reflectType(codec);
      for (let seed = 1; seed <= 12; seed++) {
        const m = randomMessage(type, rng(seed * 7919 + codec.name.length));
        const where = `${codec.name}, seed ${seed}`;
        // toObject of the same object.
        expect(codec.toObject(m, { enums: String, bytes: String }), where).toStrictEqual(
          type.toObject(m as unknown as protobuf.Message, opts),
        );
        // Our bytes, their decoder; their bytes, our decoder.
        const ours = codec.encode(m);
        const viaThem = type.decode(ours);
        expect(type.toObject(viaThem, opts), where).toStrictEqual(type.toObject(m as unknown as protobuf.Message, opts));
        const theirs = type.encode(m as unknown as protobuf.Message).finish();
        const viaUs = codec.decode(theirs);
        expect(codec.toObject(viaUs, { enums: String, bytes: String }), where).toStrictEqual(
          type.toObject(m as unknown as protobuf.Message, opts),
        );
        expect(codec.size(m), where).toBe(ours.length);
      }
    }
  });
});

describe('create and always-set fields', () => {
  it('create fills every scalar, repeated and map field with its proto3 default, and the always-set messages', () => {
    const t = Task.create();
    expect(t.serviceId).toBe('');
    expect(t.slot).toBe(0);
    expect(t.networks).toEqual([]);
    expect(t.meta).toEqual({ id: '', version: 0, createdAt: 0, updatedAt: 0 });
    expect(t.spec.container.image).toBe('');
    // An optional message stays unset.
    expect(t.spec.resources).toBeUndefined();
  });

  it('decoding fills an always-set message the sender left out, and leaves an optional one null', () => {
    const t = Task.decode(new Uint8Array(0));
    expect(t.meta.id).toBe('');
    expect(t.status.state).toBe(objects.TaskState.NEW);
    expect(t.spec.container.command).toEqual([]);
    expect(t.spec.resources == null).toBe(true);
    // What was sent is kept, not replaced by a default.
    expect(Task.decode(Task.encode(Task.create({ meta: Meta.create({ id: 'abc' }) }))).meta.id).toBe('abc');
  });

  it('a decoded message owns only what the wire carried; defaults come from its prototype', () => {
    const t = TaskSpec.decode(TaskSpec.encode(TaskSpec.create({ networks: [{ target: 'n', aliases: [] }] })));
    expect(Object.keys(t).sort()).toEqual(['container', 'networks']);
    expect(t.forceUpdate).toBe(0);
    expect(Object.isFrozen(TaskSpec.decode(new Uint8Array(0)).networks)).toBe(true);
  });

  it('an unset bytes field of a nested message decodes as an empty Uint8Array', () => {
    const m = Message.decode(
      Message.encode({ ...Message.create(), entries: [{ ...(Object.create(null) as object), index: 3, term: 1, type: 0 } as never] }),
    );
    expect(m.entries[0]!.index).toBe(3);
    expect(m.entries[0]!.data).toBeInstanceOf(Uint8Array);
    expect(m.entries[0]!.data.length).toBe(0);
    expect(Entry.decode(Entry.encode(Entry.create({ index: 1 }))).data).toBeInstanceOf(Uint8Array);
  });

  it('64-bit integers decode as numbers, negative int64 included', () => {
    const e = Entry.decode(Entry.encode(Entry.create({ index: 2 ** 53 - 1, term: 2 ** 40 })));
    expect(e.index).toBe(2 ** 53 - 1);
    expect(e.term).toBe(2 ** 40);
    const m = Meta.decode(Meta.encode(Meta.create({ createdAt: -5 })));
    expect(m.createdAt).toBe(-5);
  });
});

describe('hostile bytes', () => {
  it('refuses a field sent with another wire type, naming the field', () => {
    // Meta.id is field 1, a string (wire type 2); send it as a varint.
    expect(() => Meta.decode(new Uint8Array([0x08, 0x01]))).toThrow(/wire type 0 for Meta\.id \(expected 2\)/);
  });

  it('refuses a length that runs past the end', () => {
    expect(() => Meta.decode(new Uint8Array([0x0a, 0x10, 0x61]))).toThrow(RangeError);
  });

  it('skips fields it does not know', () => {
    // Field 15 (varint 7), then Meta.id = "a".
    const m = Meta.decode(new Uint8Array([0x78, 0x07, 0x0a, 0x01, 0x61]));
    expect(m.id).toBe('a');
    expect(Object.keys(m)).toEqual(['id']);
  });
});
