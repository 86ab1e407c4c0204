// Run-time support for the generated proto modules: a typed codec over a
// protobufjs reflected type. 64-bit integers decode as JS numbers (Raft terms
// and indexes stay far below 2^53), never as Long objects.
import protobuf from 'protobufjs';

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

const EMPTY = new Uint8Array(0);

export interface Codec<T> {
  /** A message with every field at its proto3 default, overridden by `init`. */
  create(init?: Partial<T>): T;
  encode(m: T): Uint8Array;
  decode(b: Uint8Array): T;
  /** Bytes the message takes on the wire. */
  size(m: T): number;
  readonly type: protobuf.Type;
}

export function makeCodec<T>(type: protobuf.Type): Codec<T> {
  // Built on first use, not when the generated module loads: a command that
  // touches three messages should not pay for resolving all hundred-odd types.
  let fresh: (() => Record<string, unknown>) | undefined;
  const ready = (): (() => Record<string, unknown>) => (fresh ??= prepare(type));
  return {
    type,
    create(init?: Partial<T>): T {
      const o = ready()();
      return (init ? Object.assign(o, init) : o) as T;
    },
    encode(m: T): Uint8Array {
      ready();
      return type.encode(m as unknown as protobuf.Message).finish();
    },
    decode(b: Uint8Array): T {
      ready();
      return type.decode(b) as unknown as T;
    },
    size(m: T): number {
      ready();
      return type.encode(m as unknown as protobuf.Message).len;
    },
  };
}

const fixed = new WeakSet<protobuf.Type>();

/**
 * Decoded messages read unset fields from their prototype: make an unset bytes field a
 * Uint8Array there (protobufjs defaults it to []), in this type and every type it nests, since
 * a nested message is decoded by its parent without its own codec being used.
 */
function fixBytesDefaults(type: protobuf.Type): void {
  if (fixed.has(type)) return;
  fixed.add(type);
  for (const f of type.fieldsArray) {
    f.resolve();
    if (f.type === 'bytes' && !f.repeated && !f.map) (type.ctor.prototype as Record<string, unknown>)[f.name] = EMPTY;
    if (f.resolvedType instanceof protobuf.Type) fixBytesDefaults(f.resolvedType);
  }
}

/** The factory of a message with every field at its default (and the prototype fixes decoding needs). */
function prepare(type: protobuf.Type): () => Record<string, unknown> {
  // A plain object with every default filled in: proto3 semantics, so scalars
  // and repeated fields are never undefined.
  const defaults: Record<string, unknown> = {};
  const repeated: string[] = [];
  const maps: string[] = [];
  for (const f of type.fieldsArray) {
    f.resolve();
    if (f.map) maps.push(f.name);
    else if (f.repeated) repeated.push(f.name);
    else if (f.resolvedType instanceof protobuf.Type) continue;
    else if (f.resolvedType instanceof protobuf.Enum) defaults[f.name] = 0;
    else if (f.type === 'bool') defaults[f.name] = false;
    else if (f.type === 'string') defaults[f.name] = '';
    else if (f.type === 'bytes') defaults[f.name] = EMPTY;
    else defaults[f.name] = 0;
  }
  fixBytesDefaults(type);
  // One object literal per type, compiled once: a spread of a defaults object
  // built key by key gave slow dictionary-mode objects (8 µs per Task.create).
  const parts: string[] = [];
  for (const [k, v] of Object.entries(defaults)) parts.push(`${JSON.stringify(k)}: ${v === EMPTY ? 'E' : JSON.stringify(v)}`);
  for (const r of repeated) parts.push(`${JSON.stringify(r)}: []`);
  for (const r of maps) parts.push(`${JSON.stringify(r)}: {}`);
  return new Function('E', `return function fresh() { return { ${parts.join(', ')} }; };`)(EMPTY) as () => Record<string, unknown>;
}
