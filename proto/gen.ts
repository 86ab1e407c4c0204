// Generates TypeScript from proto/*.proto with protobufjs: one module per file
// under proto/gen/, holding enums, interfaces (proto3 semantics: scalars and
// repeated fields always present, message fields optional unless marked
// `[(always_set) = true]`), a codec per message, and a @grpc/grpc-js service
// definition per service.
//
// The codecs are static code written here, at build time: encode, decode,
// create and toObject as plain functions over protobufjs/minimal's Reader and
// Writer. Nothing parses a schema or generates code when a process starts
// (that cost a CLI command about 25 ms), and a process that only encodes and
// decodes never loads protobufjs' reflection. The schema is still written
// as protobufjs JSON (proto/gen/X.schema.ts) for the few that reflect on it
// (proto/reflect.ts).
//
// `[(always_set) = true]` on a message field: every stored or answered
// object carries it (an object's meta, a task's spec and status). Its type is
// then not optional, `create()` fills it, and decoding fills it when the
// sender left it out, so the type tells the truth.
import protobuf from 'protobufjs';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, 'gen');
mkdirSync(outDir, { recursive: true });

const scalarTs: Record<string, string> = {
  double: 'number',
  float: 'number',
  int32: 'number',
  uint32: 'number',
  sint32: 'number',
  fixed32: 'number',
  sfixed32: 'number',
  int64: 'number',
  uint64: 'number',
  sint64: 'number',
  fixed64: 'number',
  sfixed64: 'number',
  bool: 'boolean',
  string: 'string',
  bytes: 'Uint8Array',
};

/** Wire types: 0 varint, 1 64-bit, 2 length-delimited, 5 32-bit. */
const wireOf: Record<string, number> = {
  double: 1,
  float: 5,
  int32: 0,
  uint32: 0,
  sint32: 0,
  fixed32: 5,
  sfixed32: 5,
  int64: 0,
  uint64: 0,
  sint64: 0,
  fixed64: 1,
  sfixed64: 1,
  bool: 0,
  string: 2,
  bytes: 2,
};

/** The option that marks a message field as always present. */
const ALWAYS_SET = '(always_set)';

function alwaysSet(f: protobuf.Field): boolean {
  return f.options?.[ALWAYS_SET] === true;
}

function tsType(f: protobuf.Field): string {
  if (f instanceof protobuf.MapField) return `Record<string, ${valueType(f)}>`;
  return valueType(f);
}

function valueType(f: protobuf.Field): string {
  const s = scalarTs[f.type];
  if (s) return s;
  const r = f.resolvedType;
  if (!r) throw new Error(`unresolved type ${f.type} in ${f.fullName}`);
  return r.name;
}

const isMessage = (f: protobuf.Field): boolean => f.resolvedType instanceof protobuf.Type;
const isEnum = (f: protobuf.Field): boolean => f.resolvedType instanceof protobuf.Enum;
/** The Reader/Writer method for a scalar or enum field. */
const method = (f: protobuf.Field): string => (isEnum(f) ? 'int32' : f.type);
const wire = (f: protobuf.Field): number => (isMessage(f) ? 2 : isEnum(f) ? 0 : wireOf[f.type]!);
const tag = (id: number, w: number): number => ((id << 3) | w) >>> 0;
const key = (name: string): string => JSON.stringify(name);
const prop = (o: string, name: string): string => (/^[A-Za-z_$][\w$]*$/.test(name) ? `${o}.${name}` : `${o}[${key(name)}]`);

/** The proto3 default of a singular scalar or enum field, as code. */
function scalarDefault(f: protobuf.Field): string {
  if (isEnum(f)) return '0';
  if (f.type === 'bool') return 'false';
  if (f.type === 'string') return "''";
  if (f.type === 'bytes') return 'EMPTY';
  return '0';
}

/** Code that writes one value `v` of field `f` (tag included) to `w`. */
function writeValue(f: protobuf.Field, v: string, id = f.id): string {
  if (isMessage(f)) return `${f.resolvedType!.name}.write(${v}, w.uint32(${tag(id, 2)}).fork()).ldelim();`;
  return `w.uint32(${tag(id, wire(f))}).${method(f)}(${v});`;
}

/** Code that reads one value of field `f` from `r`. */
function readValue(f: protobuf.Field): string {
  if (isMessage(f)) return `${f.resolvedType!.name}.read(r, r.uint32())`;
  return `r.${method(f)}()`;
}

/** Code that converts one value `v` of `f` for toObject. */
function plainValue(f: protobuf.Field, v: string): string {
  if (isMessage(f)) return `${f.resolvedType!.name}.toObject(${v}, o)`;
  if (isEnum(f)) return `enumName(${f.resolvedType!.name}, ${v}, o)`;
  if (f.type === 'bytes') return `bytesOut(${v}, o)`;
  return v;
}

const packable = (f: protobuf.Field): boolean => !isMessage(f) && f.type !== 'string' && f.type !== 'bytes';

function codecOf(t: protobuf.Type, file: string): string[] {
  const T = t.name;
  const fields = t.fieldsArray;
  const out: string[] = [];
  const partOf = (f: protobuf.Field): boolean => !!f.partOf;
  // Prototype defaults: what a decoded message reads for a field the wire left out.
  const protoDefaults: string[] = [];
  for (const f of fields) {
    if (f.map) protoDefaults.push(`${key(f.name)}: EMPTY_OBJECT`);
    else if (f.repeated) protoDefaults.push(`${key(f.name)}: EMPTY_ARRAY`);
    else if (isMessage(f)) protoDefaults.push(`${key(f.name)}: null`);
    else protoDefaults.push(`${key(f.name)}: ${scalarDefault(f)}`);
  }
  out.push(`const ${T}$ = messageClass({ ${protoDefaults.join(', ')} });`);
  // create(): a plain object with every default as its own property.
  const fresh: string[] = [];
  for (const f of fields) {
    if (f.map) fresh.push(`${key(f.name)}: {}`);
    else if (f.repeated) fresh.push(`${key(f.name)}: []`);
    else if (isMessage(f)) {
      if (alwaysSet(f)) fresh.push(`${key(f.name)}: ${f.resolvedType!.name}.create()`);
    } else fresh.push(`${key(f.name)}: ${scalarDefault(f)}`);
  }
  out.push(`export const ${T}: Codec<${T}> = {`);
  out.push(`  name: ${key(t.fullName.slice(1))},`);
  out.push(`  file: ${key(file)},`);
  out.push(`  create(init?: Partial<${T}>): ${T} {`);
  out.push(`    const m: ${T} = { ${fresh.join(', ')} } as ${T};`);
  out.push('    return init ? Object.assign(m, init) : m;');
  out.push('  },');
  // write
  out.push(`  write(m: any, w: Writer): Writer {`);
  for (const f of fields) {
    const v = prop('m', f.name);
    if (f.map) {
      const kf = { ...f, type: (f as unknown as protobuf.MapField).keyType, resolvedType: null } as unknown as protobuf.Field;
      out.push(`    if (${v} != null) for (const k of Object.keys(${v})) {`);
      out.push(`      w.uint32(${tag(f.id, 2)}).fork();`);
      out.push(`      ${writeValue(kf, 'k', 1)}`);
      out.push(`      ${writeValue(f, `${v}[k]`, 2)}`);
      out.push('      w.ldelim();');
      out.push('    }');
    } else if (f.repeated && packable(f)) {
      out.push(`    if (${v} != null && ${v}.length) {`);
      out.push(`      w.uint32(${tag(f.id, 2)}).fork();`);
      out.push(`      for (const x of ${v}) w.${method(f)}(x);`);
      out.push('      w.ldelim();');
      out.push('    }');
    } else if (f.repeated) {
      out.push(`    if (${v} != null) for (const x of ${v}) ${writeValue(f, 'x')}`);
    } else if (isMessage(f)) {
      out.push(`    if (${v} != null) ${writeValue(f, v)}`);
    } else if (partOf(f)) {
      // A oneof member is written whenever set, its default included: that is what tells the members apart.
      out.push(`    if (${v} != null && Object.hasOwn(m, ${key(f.name)})) ${writeValue(f, v)}`);
    } else if (f.type === 'bytes') {
      out.push(`    if (${v} != null && ${v}.length) ${writeValue(f, v)}`);
    } else if (f.type === 'string') {
      out.push(`    if (${v}) ${writeValue(f, v)}`);
    } else if (f.type === 'bool') {
      out.push(`    if (${v}) ${writeValue(f, 'true')}`);
    } else {
      out.push(`    if (${v} != null && ${v} !== 0) ${writeValue(f, v)}`);
    }
  }
  out.push('    return w;');
  out.push('  },');
  // read
  out.push(`  read(r: Reader, len?: number): ${T} {`);
  out.push('    const end = len === undefined ? r.len : r.pos + len;');
  out.push(`    const m: any = new ${T}$();`);
  out.push('    while (r.pos < end) {');
  out.push('      const t = r.uint32();');
  out.push('      switch (t >>> 3) {');
  for (const f of fields) {
    const v = prop('m', f.name);
    out.push(`        case ${f.id}: {`);
    if (f.map) {
      const mf = f as unknown as protobuf.MapField;
      const kf = { ...f, type: mf.keyType, resolvedType: null } as unknown as protobuf.Field;
      const vDefault = isMessage(f) ? 'null' : scalarDefault(f);
      out.push(`          expectWire(t, 2, ${key(t.name)}, ${key(f.name)});`);
      out.push(`          if (${v} === EMPTY_OBJECT) ${v} = {};`);
      out.push(`          const e = r.uint32() + r.pos;`);
      out.push(`          let k: any = ${scalarDefault(kf)};`);
      out.push(`          let x: any = ${vDefault};`);
      out.push('          while (r.pos < e) {');
      out.push('            const u = r.uint32();');
      out.push(`            if (u >>> 3 === 1) k = ${readValue(kf)};`);
      out.push(`            else if (u >>> 3 === 2) x = ${readValue(f)};`);
      out.push('            else r.skipType(u & 7);');
      out.push('          }');
      if (isMessage(f)) out.push(`          ${v}[k] = x ?? ${f.resolvedType!.name}.create();`);
      else out.push(`          ${v}[k] = x;`);
    } else if (f.repeated) {
      out.push(`          if (${v} === EMPTY_ARRAY) ${v} = [];`);
      if (packable(f)) {
        out.push(`          if ((t & 7) === 2) {`);
        out.push('            const e = r.uint32() + r.pos;');
        out.push(`            while (r.pos < e) ${v}.push(${readValue(f)});`);
        out.push('          } else {');
        out.push(`            expectWire(t, ${wire(f)}, ${key(t.name)}, ${key(f.name)});`);
        out.push(`            ${v}.push(${readValue(f)});`);
        out.push('          }');
      } else {
        out.push(`          expectWire(t, ${wire(f)}, ${key(t.name)}, ${key(f.name)});`);
        out.push(`          ${v}.push(${readValue(f)});`);
      }
    } else {
      out.push(`          expectWire(t, ${wire(f)}, ${key(t.name)}, ${key(f.name)});`);
      out.push(`          ${v} = ${readValue(f)};`);
    }
    out.push('          break;');
    out.push('        }');
  }
  out.push('        default:');
  out.push('          r.skipType(t & 7);');
  out.push('      }');
  out.push('    }');
  for (const f of fields)
    if (!f.repeated && !f.map && isMessage(f) && alwaysSet(f))
      out.push(`    if (${prop('m', f.name)} === null) ${prop('m', f.name)} = ${f.resolvedType!.name}.create();`);
  out.push('    return m;');
  out.push('  },');
  out.push(`  encode(m: ${T}): Uint8Array {`);
  out.push(`    return ${T}.write(m, Writer.create()).finish();`);
  out.push('  },');
  out.push(`  decode(b: Uint8Array): ${T} {`);
  out.push(`    return ${T}.read(Reader.create(b));`);
  out.push('  },');
  out.push(`  size(m: ${T}): number {`);
  out.push(`    return ${T}.write(m, Writer.create()).len;`);
  out.push('  },');
  // toObject: as protobufjs' with { defaults: true, arrays: true, objects: true } (and `enums: String` on request).
  out.push(`  toObject(m: any, o: ToObjectOptions = {}): any {`);
  out.push('    const d: any = {};');
  for (const f of fields) {
    const v = prop('m', f.name);
    const dv = prop('d', f.name);
    if (f.map) {
      out.push(`    ${dv} = {};`);
      out.push(`    if (${v} != null) for (const k of Object.keys(${v})) ${dv}[k] = ${plainValue(f, `${v}[k]`)};`);
    } else if (f.repeated) {
      out.push(`    ${dv} = ${v} != null ? ${v}.map((x: any) => ${plainValue(f, 'x')}) : [];`);
    } else if (partOf(f)) {
      out.push(`    if (${v} != null && Object.hasOwn(m, ${key(f.name)})) ${dv} = ${plainValue(f, v)};`);
    } else if (isMessage(f)) {
      out.push(`    ${dv} = ${v} != null ? ${plainValue(f, v)} : null;`);
    } else if (f.type === 'bytes') {
      out.push(`    ${dv} = ${v} != null && Object.hasOwn(m, ${key(f.name)}) ? ${plainValue(f, v)} : bytesDefault(o);`);
    } else if (isEnum(f)) {
      out.push(`    ${dv} = ${plainValue(f, `${v} ?? 0`)};`);
    } else {
      out.push(`    ${dv} = ${v} ?? ${scalarDefault(f)};`);
    }
  }
  out.push('    return d;');
  out.push('  },');
  out.push('};');
  return out;
}

function gen(file: string): void {
  const root = new protobuf.Root();
  root.loadSync(join(here, file), { keepCase: false });
  root.resolveAll();
  const types: protobuf.Type[] = [];
  const enums: protobuf.Enum[] = [];
  const services: protobuf.Service[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) types.push(o);
      else if (o instanceof protobuf.Enum) enums.push(o);
      else if (o instanceof protobuf.Service) services.push(o);
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) walk(o as protobuf.NamespaceBase);
    }
  };
  walk(root);
  // Only what this file defines; types from imported files are imported from their module.
  const own = (o: protobuf.ReflectionObject): boolean => !o.filename || basename(o.filename) === file;
  const imports = new Map<string, Set<string>>();
  const note = (t: protobuf.ReflectionObject | null): void => {
    if (!t || own(t)) return;
    const mod = `./${basename(t.filename!, '.proto')}.js`;
    if (!imports.has(mod)) imports.set(mod, new Set());
    imports.get(mod)!.add(t.name);
  };
  const ownTypes = types.filter(own);
  for (const t of ownTypes)
    for (const f of t.fieldsArray) {
      note(f.resolvedType);
      if (alwaysSet(f) && (!isMessage(f) || f.repeated || f.map))
        throw new Error(`${f.fullName}: (always_set) is for singular message fields only`);
    }
  for (const sv of services.filter(own))
    for (const m of sv.methodsArray) {
      note(m.resolvedRequestType);
      note(m.resolvedResponseType);
    }
  types.splice(0, types.length, ...ownTypes);
  enums.splice(0, enums.length, ...enums.filter(own));
  services.splice(0, services.length, ...services.filter(own));
  const out: string[] = [];
  out.push(`// GENERATED by proto/gen.ts from proto/${file}: do not edit.`);
  out.push(`/* eslint-disable */`);
  if (services.length) out.push(`import type * as grpc from '@grpc/grpc-js';`);
  out.push(
    `import { type Codec, EMPTY, EMPTY_ARRAY, EMPTY_OBJECT, Reader, type ToObjectOptions, Writer, bytesDefault, bytesOut, enumName, expectWire, messageClass } from '../runtime.js';`,
  );
  for (const [mod, names] of imports) out.push(`import { ${[...names].sort().join(', ')} } from '${mod}';`);
  out.push('');
  for (const e of enums) {
    out.push(`export enum ${e.name} {`);
    for (const [k, v] of Object.entries(e.values)) out.push(`  ${k} = ${v},`);
    out.push('}');
    out.push('');
  }
  for (const t of types) {
    out.push(`export interface ${t.name} {`);
    for (const f of t.fieldsArray) {
      const ty = tsType(f);
      if (f instanceof protobuf.MapField) out.push(`  ${f.name}: ${ty};`);
      else if (f.repeated) out.push(`  ${f.name}: ${ty}[];`);
      else if (isMessage(f) && alwaysSet(f)) out.push(`  ${f.name}: ${ty};`);
      else if (isMessage(f)) out.push(`  ${f.name}?: ${ty} | null;`);
      else out.push(`  ${f.name}: ${ty};`);
    }
    out.push('}');
    out.push(...codecOf(t, basename(file, '.proto')));
    out.push('');
  }
  for (const s of services) {
    out.push(`export const ${s.name}Service = {`);
    for (const m of s.methodsArray) {
      const req = m.resolvedRequestType!.name;
      const res = m.resolvedResponseType!.name;
      const lower = m.name[0]!.toLowerCase() + m.name.slice(1);
      out.push(`  ${lower}: {`);
      out.push(`    path: ${JSON.stringify(`/${s.fullName.slice(1)}/${m.name}`)},`);
      out.push(`    requestStream: ${!!m.requestStream},`);
      out.push(`    responseStream: ${!!m.responseStream},`);
      out.push(`    requestSerialize: (v: ${req}) => Buffer.from(${req}.encode(v)),`);
      out.push(`    requestDeserialize: (b: Buffer) => ${req}.decode(b),`);
      out.push(`    responseSerialize: (v: ${res}) => Buffer.from(${res}.encode(v)),`);
      out.push(`    responseDeserialize: (b: Buffer) => ${res}.decode(b),`);
      out.push('  },');
    }
    out.push('} satisfies grpc.ServiceDefinition;');
    out.push('');
    // Typed views of the service: request and response by method, and the handlers a server implements
    // (unary: request in, response out; server streaming: request in, messages written until it resolves).
    const lower = (n: string): string => n[0]!.toLowerCase() + n.slice(1);
    out.push(`export type ${s.name}Method = keyof typeof ${s.name}Service;`);
    out.push(`export interface ${s.name}Requests {`);
    for (const m of s.methodsArray) out.push(`  ${lower(m.name)}: ${m.resolvedRequestType!.name};`);
    out.push('}');
    out.push(`export interface ${s.name}Responses {`);
    for (const m of s.methodsArray) out.push(`  ${lower(m.name)}: ${m.resolvedResponseType!.name};`);
    out.push('}');
    const unaryNames = s.methodsArray.filter((m) => !m.requestStream && !m.responseStream).map((m) => JSON.stringify(lower(m.name)));
    out.push(`export type ${s.name}UnaryMethod = ${unaryNames.length ? unaryNames.join(' | ') : 'never'};`);
    out.push(`export interface ${s.name}Handlers {`);
    for (const m of s.methodsArray) {
      const req = m.resolvedRequestType!.name;
      const res = m.resolvedResponseType!.name;
      if (!m.requestStream && !m.responseStream) out.push(`  ${lower(m.name)}(req: ${req}): Promise<${res}>;`);
      else if (!m.requestStream)
        out.push(`  ${lower(m.name)}(req: ${req}, write: (m: ${res}) => void, signal: AbortSignal): Promise<void>;`);
    }
    out.push('}');
    out.push('');
  }
  const name = basename(file, '.proto');
  writeFileSync(join(outDir, `${name}.ts`), out.join('\n'));
  // The schema as protobufjs JSON, apart: only proto/reflect.ts loads it.
  schemas.push(name);
  writeFileSync(
    join(outDir, `${name}.schema.ts`),
    `// GENERATED by proto/gen.ts from proto/${file}: do not edit.\nexport const schema: object = ${JSON.stringify(root.toJSON({ keepComments: false }))};\n`,
  );
  console.error(`proto/gen/${name}.ts: ${types.length} messages, ${enums.length} enums, ${services.length} services`);
}

const schemas: string[] = [];
for (const f of readdirSync(here)
  .filter((f) => f.endsWith('.proto'))
  .sort())
  gen(f);
writeFileSync(
  join(outDir, 'schemas.ts'),
  [
    "// GENERATED by proto/gen.ts: every .proto file's schema by name, for proto/reflect.ts.",
    ...schemas.map((n) => `import { schema as ${n} } from './${n}.schema.js';`),
    `export const schemas: Record<string, object> = { ${schemas.join(', ')} };`,
    '',
  ].join('\n'),
);
