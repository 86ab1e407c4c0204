// Run-time support for the generated proto modules (proto/gen.ts writes
// their codecs as static code): protobufjs/minimal's Reader and Writer, and
// the helpers the generated code shares. 64-bit integers decode as JS numbers
// (Raft terms and indexes stay far below 2^53), never as Long objects.
// Nothing here loads protobufjs' reflection; proto/reflect.ts does, for the
// few that need it.
import protobuf from 'protobufjs/minimal.js';

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

export const Reader = protobuf.Reader;
export type Reader = protobuf.Reader;
export const Writer = protobuf.Writer;
export type Writer = protobuf.Writer;

/** The default of a bytes field. */
export const EMPTY = new Uint8Array(0);
/** What a decoded message reads for a repeated field the wire left out (frozen: assign a new array instead). */
export const EMPTY_ARRAY: readonly never[] = Object.freeze([]);
/** What a decoded message reads for a map field the wire left out (frozen: assign a new object instead). */
export const EMPTY_OBJECT: Readonly<Record<string, never>> = Object.freeze({});

/** toObject's options; the output always has defaults, arrays and objects, as protobufjs gives with those set. */
export interface ToObjectOptions {
  /** String: enums by name (protobufjs' `enums: String`). */
  enums?: StringConstructor;
  /** String: bytes as base64; Array: as arrays of numbers; else as they are. */
  bytes?: StringConstructor | ArrayConstructor;
}

export interface Codec<T> {
  /** The message's full name, e.g. tsswarm.objects.Node. */
  readonly name: string;
  /** The .proto file that defines it, without the extension (proto/reflect.ts finds its schema by it). */
  readonly file: string;
  /** A message with every field at its proto3 default (and always-set messages filled), overridden by `init`. */
  create(init?: Partial<T>): T;
  encode(m: T): Uint8Array;
  decode(b: Uint8Array): T;
  /** Bytes the message takes on the wire. */
  size(m: T): number;
  /** Writes the message's fields (not length-delimited) to `w`. */
  write(m: T, w: Writer): Writer;
  /** Reads a message of `len` bytes (to the end when undefined) from `r`. */
  read(r: Reader, len?: number): T;
  /** A plain copy with every default filled in, as protobufjs' toObject with { defaults, arrays, objects }. */
  toObject(m: T, o?: ToObjectOptions): Record<string, unknown>;
}

/**
 * The constructor of decoded messages: their fields' defaults live on its
 * prototype, so a decoded message owns only what the wire carried (as
 * protobufjs' reflected types build them).
 */
export function messageClass(defaults: Record<string, unknown>): new () => Record<string, unknown> {
  const C = function Message(this: Record<string, unknown>) {} as unknown as new () => Record<string, unknown>;
  Object.assign(C.prototype, defaults);
  return C;
}

/** Throws when a field arrives with another wire type than its declaration's. */
export function expectWire(tag: number, want: number, type: string, field: string): void {
  if ((tag & 7) !== want) throw new Error(`invalid wire type ${tag & 7} for ${type}.${field} (expected ${want})`);
}

/** An enum value for toObject: its name when asked for names and it has one, else the number. */
export function enumName(e: Record<number, string>, v: number, o: ToObjectOptions): string | number {
  return o.enums === String ? (e[v] ?? v) : v;
}

export function bytesOut(v: Uint8Array, o: ToObjectOptions): unknown {
  if (o.bytes === String) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (o.bytes === Array) return Array.from(v);
  return v;
}

export function bytesDefault(o: ToObjectOptions): unknown {
  return o.bytes === String ? '' : [];
}
