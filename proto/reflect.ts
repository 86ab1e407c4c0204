// protobufjs' reflection over a generated codec's schema, for the code that
// walks message types field by field (the store's normalizers and encoder).
// Loaded only by what imports it: encoding and decoding never need it.
import protobuf from 'protobufjs/light.js';
import { schemas } from './gen/schemas.js';
import type { Codec } from './runtime.js';

const roots = new Map<string, protobuf.Root>();

/** The reflected type of a codec's message (one Root per generated file, built on first use). */
export function reflectType(codec: Codec<unknown>): protobuf.Type {
  let root = roots.get(codec.file);
  if (!root) {
    const schema = schemas[codec.file];
    if (!schema) throw new Error(`no schema for ${codec.file}.proto`);
    roots.set(codec.file, (root = protobuf.Root.fromJSON(schema as protobuf.INamespace)));
  }
  return root.lookupType(codec.name);
}
