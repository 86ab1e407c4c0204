// The data keys (DEKs) that seal a Raft member's WAL records and snapshot
// files, kept wrapped by a key-encryption key (KEK), as Swarm's raft DEK/KEK.
//
// Two files beside the `wal` and `snap` directories, each replaced atomically (mode 0600):
//
//   raft-dek.json  {"format":"tsswarm-raft-dek","version":1,
//                   "kek":{"id":"<16 hex>","source":"stored"},
//                   "current":2,
//                   "deks":[{"id":2,"wrapped":"<base64>"},{"id":1,"wrapped":"<base64>"}]}
//   raft-kek.json  {"format":"tsswarm-raft-kek","version":1,"id":"<16 hex>","key":"<base64, 32 bytes>"}
//
// `wrapped` is nonce (12) ++ AES-256-GCM ciphertext of the 32-byte DEK ++ tag (16), under the KEK,
// with additional data "tsswarm-raft-dek/1 dek=<id> kek=<kek id>". `current` seals new records;
// the others are kept only while a WAL segment or snapshot file still uses them (after a rotation).
//
// Without autolock the KEK sits in raft-kek.json next to the DEKs ("source":"stored"), as Swarm's
// unlocked managers keep their DEK readable: the gain is a cheap rotation and wipe, not secrecy
// from someone who holds the whole directory. Autolock will replace it with a KEK derived from the
// unlock key ("source":"unlock-key", no raft-kek.json), re-wrapping the DEKs under a new kek id.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import path from 'node:path';
import { KEY_BYTES, Keyring, NONCE_BYTES, TAG_BYTES } from './cipher.js';
import { StorageError } from './errors.js';
import type { Vfs } from './vfs.js';

export const DEK_FILE = 'raft-dek.json';
export const KEK_FILE = 'raft-kek.json';
const DEK_FORMAT = 'tsswarm-raft-dek';
const KEK_FORMAT = 'tsswarm-raft-kek';
const VERSION = 1;

interface DekFileJson {
  format: string;
  version: number;
  kek: { id: string; source: string };
  current: number;
  deks: { id: number; wrapped: string }[];
}

interface KekFileJson {
  format: string;
  version: number;
  id: string;
  key: string;
}

export interface Kek {
  id: string;
  key: Uint8Array;
}

export class KeyFileError extends StorageError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super('RAFT_KEYS_INVALID', `Raft key file ${file}: ${reason}`);
    this.name = 'KeyFileError';
  }
}

function wrapAad(dekId: number, kekId: string): Uint8Array {
  return new TextEncoder().encode(`tsswarm-raft-dek/${VERSION} dek=${dekId} kek=${kekId}`);
}

function wrap(kek: Kek, dekId: number, dek: Uint8Array): string {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', kek.key, nonce, { authTagLength: TAG_BYTES });
  c.setAAD(wrapAad(dekId, kek.id));
  const ct = Buffer.concat([c.update(dek), c.final()]);
  return Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64');
}

function unwrap(file: string, kek: Kek, dekId: number, wrapped: string): Uint8Array {
  const b = Buffer.from(wrapped, 'base64');
  if (b.length !== NONCE_BYTES + KEY_BYTES + TAG_BYTES) throw new KeyFileError(file, `wrapped data key ${dekId} has ${b.length} bytes`);
  const d = createDecipheriv('aes-256-gcm', kek.key, b.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  d.setAAD(wrapAad(dekId, kek.id));
  d.setAuthTag(b.subarray(NONCE_BYTES + KEY_BYTES));
  const dek = d.update(b.subarray(NONCE_BYTES, NONCE_BYTES + KEY_BYTES));
  try {
    d.final();
  } catch {
    throw new KeyFileError(
      file,
      `data key ${dekId} does not unwrap with key-encryption key ${kek.id}: the file was altered or the key-encryption key is not the one it was wrapped with`,
    );
  }
  return new Uint8Array(dek);
}

function parse<T>(file: string, raw: Uint8Array): T {
  try {
    return JSON.parse(new TextDecoder().decode(raw)) as T;
  } catch (e) {
    throw new KeyFileError(file, `cannot parse (${(e as Error).message})`);
  }
}

const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o, null, 2) + '\n');

/** The member's DEKs, unwrapped into a keyring, and the files that hold them. */
export class DataKeys {
  private constructor(
    private readonly vfs: Vfs,
    readonly dir: string,
    private readonly kek: Kek,
    /** Wrapped form of each DEK, by id, as stored. */
    private readonly wrapped: Map<number, string>,
    readonly keyring: Keyring,
  ) {}

  get dekFile(): string {
    return path.join(this.dir, DEK_FILE);
  }

  get kekId(): string {
    return this.kek.id;
  }

  /** Whether `dir` holds a DEK file. */
  static exists(vfs: Vfs, dir: string): Promise<boolean> {
    return vfs.exists(path.join(dir, DEK_FILE));
  }

  /** Loads the DEK file and the stored KEK; throws KeyFileError naming the file when either is missing, damaged or does not match. */
  static async load(vfs: Vfs, dir: string): Promise<DataKeys> {
    const dekFile = path.join(dir, DEK_FILE);
    const kekFile = path.join(dir, KEK_FILE);
    const d = parse<DekFileJson>(dekFile, await vfs.readFile(dekFile));
    if (d.format !== DEK_FORMAT) throw new KeyFileError(dekFile, `format "${d.format}", expected "${DEK_FORMAT}"`);
    if (d.version !== VERSION) throw new KeyFileError(dekFile, `format version ${d.version}, this build reads ${VERSION}`);
    if (d.kek?.source !== 'stored') {
      throw new KeyFileError(
        dekFile,
        `its data keys are wrapped by a key-encryption key from "${d.kek?.source}", which this build cannot obtain (only "stored")`,
      );
    }
    if (!(await vfs.exists(kekFile))) {
      throw new KeyFileError(kekFile, `missing: the data keys in ${dekFile} cannot be unwrapped without it`);
    }
    const k = parse<KekFileJson>(kekFile, await vfs.readFile(kekFile));
    if (k.format !== KEK_FORMAT) throw new KeyFileError(kekFile, `format "${k.format}", expected "${KEK_FORMAT}"`);
    if (k.version !== VERSION) throw new KeyFileError(kekFile, `format version ${k.version}, this build reads ${VERSION}`);
    if (k.id !== d.kek.id) throw new KeyFileError(kekFile, `holds key-encryption key ${k.id}, but ${dekFile} was wrapped with ${d.kek.id}`);
    const key = new Uint8Array(Buffer.from(k.key, 'base64'));
    if (key.length !== KEY_BYTES) throw new KeyFileError(kekFile, `key of ${key.length} bytes, expected ${KEY_BYTES}`);
    const kek = { id: k.id, key };
    const wrapped = new Map<number, string>();
    const plain: [number, Uint8Array][] = [];
    for (const x of d.deks ?? []) {
      wrapped.set(x.id, x.wrapped);
      plain.push([x.id, unwrap(dekFile, kek, x.id, x.wrapped)]);
    }
    if (!wrapped.has(d.current)) throw new KeyFileError(dekFile, `the current data key ${d.current} is not among its keys`);
    return new DataKeys(vfs, dir, kek, wrapped, new Keyring(plain, d.current));
  }

  /** Creates a KEK and a first DEK (id 1) and stores them: the KEK file first, so the DEK file never names a KEK that is not on disk. */
  static async create(vfs: Vfs, dir: string): Promise<DataKeys> {
    await vfs.mkdirp(dir);
    const kek: Kek = { id: randomBytes(8).toString('hex'), key: new Uint8Array(randomBytes(KEY_BYTES)) };
    const kekJson: KekFileJson = { format: KEK_FORMAT, version: VERSION, id: kek.id, key: Buffer.from(kek.key).toString('base64') };
    await vfs.writeFileAtomic(path.join(dir, KEK_FILE), enc(kekJson));
    const dek = new Uint8Array(randomBytes(KEY_BYTES));
    const keys = new DataKeys(vfs, dir, kek, new Map([[1, wrap(kek, 1, dek)]]), new Keyring([[1, dek]], 1));
    await keys.save();
    return keys;
  }

  /** Adds a new DEK and makes it current, durably, before any record uses it; returns its id. The old ones stay until retire(). */
  async rotate(): Promise<number> {
    const id = Math.max(...this.keyring.ids()) + 1;
    const dek = new Uint8Array(randomBytes(KEY_BYTES));
    this.wrapped.set(id, wrap(this.kek, id, dek));
    this.keyring.add(id, dek);
    try {
      await this.save(id);
    } catch (e) {
      this.keyring.remove(id);
      this.wrapped.delete(id);
      throw e;
    }
    // Only now that the file holding it is durable may a record be sealed with it.
    this.keyring.setCurrent(id);
    return id;
  }

  /** Forgets the given (non-current) DEKs, durably. Call only once no file uses them. */
  async retire(ids: number[]): Promise<void> {
    const gone = ids.filter((id) => id !== this.keyring.currentId && this.wrapped.has(id));
    if (gone.length === 0) return;
    for (const id of gone) this.wrapped.delete(id);
    await this.save();
    for (const id of gone) this.keyring.remove(id);
  }

  private async save(cur = this.keyring.currentId): Promise<void> {
    const d: DekFileJson = {
      format: DEK_FORMAT,
      version: VERSION,
      kek: { id: this.kek.id, source: 'stored' },
      current: cur,
      deks: [...this.wrapped].sort((a, b) => b[0] - a[0]).map(([id, w]) => ({ id, wrapped: w })),
    };
    await this.vfs.writeFileAtomic(this.dekFile, enc(d));
  }
}
