// The data keys (DEKs) that seal a Raft member's WAL records and snapshot
// files, kept wrapped by a key-encryption key (KEK), as Swarm's raft DEK/KEK.
//
// Two files beside the `wal` and `snap` directories, each replaced atomically (mode 0600):
//
//   raft-dek.json  {"format":"tsswarm-raft-dek","version":1,
//                   "kek":{"id":"<16 hex>","source":"stored"|"unlock-key"},
//                   "current":2,
//                   "deks":[{"id":2,"wrapped":"<base64>"},{"id":1,"wrapped":"<base64>"}],
//                   "nodeKey":"<base64>"}
//   raft-kek.json  {"format":"tsswarm-raft-kek","version":1,"id":"<16 hex>","key":"<base64, 32 bytes>"}
//
// `wrapped` is nonce (12) ++ AES-256-GCM ciphertext of the 32-byte DEK ++ tag (16), under the KEK,
// with additional data "tsswarm-raft-dek/1 dek=<id> kek=<kek id>". `current` seals new records;
// the others are kept only while a WAL segment or snapshot file still uses them (after a rotation).
//
// Without autolock the KEK sits in raft-kek.json next to the DEKs ("source":"stored"), as Swarm's
// unlocked managers keep their DEK readable: the gain is a cheap rotation and wipe, not secrecy
// from someone who holds the whole directory. With autolock the KEK is derived from the unlock key
// (unlock-key.ts; "source":"unlock-key") and is on no disk: raft-kek.json is removed, and the
// member cannot open its state until it is given the key.
//
// `nodeKey` (made when autolock is first turned on, then kept) is a 32-byte secret wrapped the same
// way (additional data "... node-key kek=<kek id>"): the passphrase of the manager's TLS private key
// while autolock is on (node/daemon.ts). It lives here, not under its own KEK, so that changing or
// rotating the unlock key rewrites one file atomically and a crash never leaves the TLS key and the
// data keys under different unlock keys.
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

export type KekSource = 'stored' | 'unlock-key';

interface DekFileJson {
  format: string;
  version: number;
  kek: { id: string; source: KekSource };
  current: number;
  deks: { id: number; wrapped: string }[];
  nodeKey?: string;
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

/** What a wrapped key is: data key `id`, or the node key secret. */
type Wrapped = number | 'node-key';

function wrapAad(what: Wrapped, kekId: string): Uint8Array {
  const name = what === 'node-key' ? 'node-key' : `dek=${what}`;
  return new TextEncoder().encode(`tsswarm-raft-dek/${VERSION} ${name} kek=${kekId}`);
}

function wrap(kek: Kek, dekId: Wrapped, dek: Uint8Array): string {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', kek.key, nonce, { authTagLength: TAG_BYTES });
  c.setAAD(wrapAad(dekId, kek.id));
  const ct = Buffer.concat([c.update(dek), c.final()]);
  return Buffer.concat([nonce, ct, c.getAuthTag()]).toString('base64');
}

function unwrap(file: string, kek: Kek, dekId: Wrapped, wrapped: string): Uint8Array {
  const b = Buffer.from(wrapped, 'base64');
  if (b.length !== NONCE_BYTES + KEY_BYTES + TAG_BYTES)
    throw new KeyFileError(file, `wrapped ${dekId === 'node-key' ? 'node key secret' : `data key ${dekId}`} has ${b.length} bytes`);
  const d = createDecipheriv('aes-256-gcm', kek.key, b.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  d.setAAD(wrapAad(dekId, kek.id));
  d.setAuthTag(b.subarray(NONCE_BYTES + KEY_BYTES));
  const dek = d.update(b.subarray(NONCE_BYTES, NONCE_BYTES + KEY_BYTES));
  try {
    d.final();
  } catch {
    throw new KeyFileError(
      file,
      `${dekId === 'node-key' ? 'the node key secret' : `data key ${dekId}`} does not unwrap with key-encryption key ${kek.id}: the file was altered or the key-encryption key is not the one it was wrapped with`,
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

/** The unlock key given does not unwrap this member's keys (a locked manager stays locked). */
export class WrongUnlockKeyError extends StorageError {
  constructor(readonly file: string) {
    super(
      'RAFT_UNLOCK_KEY_WRONG',
      'the unlock key given is not the one this manager was locked with: nothing was unlocked. Check it for typos; after `tsswarm unlock-key --rotate`, a manager that was down during the rotation still takes the previous key',
    );
    this.name = 'WrongUnlockKeyError';
  }
}

/** The member is locked (autolock) and no unlock key was given. */
export class LockedError extends StorageError {
  constructor(readonly file: string) {
    super(
      'RAFT_LOCKED',
      `the raft state is locked (autolock): its data keys in ${file} are wrapped by the unlock key, which was not given`,
    );
    this.name = 'LockedError';
  }
}

function readDekFile(file: string, raw: Uint8Array): DekFileJson {
  const d = parse<DekFileJson>(file, raw);
  if (d.format !== DEK_FORMAT) throw new KeyFileError(file, `format "${d.format}", expected "${DEK_FORMAT}"`);
  if (d.version !== VERSION) throw new KeyFileError(file, `format version ${d.version}, this build reads ${VERSION}`);
  if (d.kek?.source !== 'stored' && d.kek?.source !== 'unlock-key') {
    throw new KeyFileError(
      file,
      `its data keys are wrapped by a key-encryption key from "${d.kek?.source}", which this build cannot obtain (only "stored" and "unlock-key")`,
    );
  }
  return d;
}

/** The member's DEKs, unwrapped into a keyring, and the files that hold them. */
export class DataKeys {
  private constructor(
    private readonly vfs: Vfs,
    readonly dir: string,
    private kek: Kek,
    private kekSource: KekSource,
    /** Wrapped form of each DEK, by id, as stored. */
    private readonly wrapped: Map<number, string>,
    readonly keyring: Keyring,
    private nodeKey: Uint8Array | null,
  ) {}

  get dekFile(): string {
    return path.join(this.dir, DEK_FILE);
  }

  get kekId(): string {
    return this.kek.id;
  }

  /** Where the KEK comes from: the stored file, or the unlock key (autolock). */
  get source(): KekSource {
    return this.kekSource;
  }

  /** The passphrase secret of the TLS key while autolock is on; null until autolock was first turned on. */
  get nodeKeySecret(): Uint8Array | null {
    return this.nodeKey;
  }

  /** Whether `dir` holds a DEK file. */
  static exists(vfs: Vfs, dir: string): Promise<boolean> {
    return vfs.exists(path.join(dir, DEK_FILE));
  }

  /** Where the KEK of `dir`'s DEK file comes from, null without one: "unlock-key" means the member is locked until given the key. */
  static async sourceOf(vfs: Vfs, dir: string): Promise<KekSource | null> {
    const dekFile = path.join(dir, DEK_FILE);
    if (!(await vfs.exists(dekFile))) return null;
    return readDekFile(dekFile, await vfs.readFile(dekFile)).kek.source;
  }

  /**
   * Loads the DEK file and its KEK: the stored one, or `unlock` (from the unlock key) when the file
   * is locked. Throws LockedError without `unlock`, WrongUnlockKeyError when it is not the key the
   * file was wrapped with, and KeyFileError naming the file when a file is missing, damaged or does not match.
   */
  static async load(vfs: Vfs, dir: string, unlock?: Kek): Promise<DataKeys> {
    const dekFile = path.join(dir, DEK_FILE);
    const kekFile = path.join(dir, KEK_FILE);
    const d = readDekFile(dekFile, await vfs.readFile(dekFile));
    let kek: Kek;
    if (d.kek.source === 'unlock-key') {
      if (!unlock) throw new LockedError(dekFile);
      if (unlock.id !== d.kek.id) throw new WrongUnlockKeyError(dekFile);
      kek = unlock;
    } else {
      if (!(await vfs.exists(kekFile))) {
        throw new KeyFileError(kekFile, `missing: the data keys in ${dekFile} cannot be unwrapped without it`);
      }
      const k = parse<KekFileJson>(kekFile, await vfs.readFile(kekFile));
      if (k.format !== KEK_FORMAT) throw new KeyFileError(kekFile, `format "${k.format}", expected "${KEK_FORMAT}"`);
      if (k.version !== VERSION) throw new KeyFileError(kekFile, `format version ${k.version}, this build reads ${VERSION}`);
      if (k.id !== d.kek.id)
        throw new KeyFileError(kekFile, `holds key-encryption key ${k.id}, but ${dekFile} was wrapped with ${d.kek.id}`);
      const key = new Uint8Array(Buffer.from(k.key, 'base64'));
      if (key.length !== KEY_BYTES) throw new KeyFileError(kekFile, `key of ${key.length} bytes, expected ${KEY_BYTES}`);
      kek = { id: k.id, key };
    }
    const wrapped = new Map<number, string>();
    const plain: [number, Uint8Array][] = [];
    for (const x of d.deks ?? []) {
      wrapped.set(x.id, x.wrapped);
      plain.push([x.id, unwrap(dekFile, kek, x.id, x.wrapped)]);
    }
    if (!wrapped.has(d.current)) throw new KeyFileError(dekFile, `the current data key ${d.current} is not among its keys`);
    const nodeKey = d.nodeKey ? unwrap(dekFile, kek, 'node-key', d.nodeKey) : null;
    const keys = new DataKeys(vfs, dir, kek, d.kek.source, wrapped, new Keyring(plain, d.current), nodeKey);
    // Locked: a KEK file left by a crash while locking is stale and must not stay next to the keys.
    if (d.kek.source === 'unlock-key' && (await vfs.exists(kekFile))) await keys.removeKekFile();
    return keys;
  }

  /** Creates a stored KEK and a first DEK (id 1) and stores them: the KEK file first, so the DEK file never names a KEK that is not on disk. */
  static async create(vfs: Vfs, dir: string): Promise<DataKeys> {
    await vfs.mkdirp(dir);
    const kek = await DataKeys.storeNewKek(vfs, dir);
    const dek = new Uint8Array(randomBytes(KEY_BYTES));
    const keys = new DataKeys(vfs, dir, kek, 'stored', new Map([[1, wrap(kek, 1, dek)]]), new Keyring([[1, dek]], 1), null);
    await keys.save();
    return keys;
  }

  private static async storeNewKek(vfs: Vfs, dir: string): Promise<Kek> {
    const kek: Kek = { id: randomBytes(8).toString('hex'), key: new Uint8Array(randomBytes(KEY_BYTES)) };
    const kekJson: KekFileJson = { format: KEK_FORMAT, version: VERSION, id: kek.id, key: Buffer.from(kek.key).toString('base64') };
    await vfs.writeFileAtomic(path.join(dir, KEK_FILE), enc(kekJson));
    return kek;
  }

  /**
   * Wraps every key under `unlock` (the KEK of the unlock key; autolock on or its key rotated) and
   * forgets the stored KEK: the DEK file is rewritten first, then raft-kek.json removed. Makes the
   * node key secret if there is none. A no-op when the keys are already under that KEK.
   */
  async lock(unlock: Kek): Promise<void> {
    if (this.kekSource === 'unlock-key' && this.kek.id === unlock.id) return;
    this.nodeKey ??= new Uint8Array(randomBytes(KEY_BYTES));
    await this.rewrap(unlock, 'unlock-key');
    await this.removeKekFile();
  }

  /** Autolock off: a new stored KEK (its file written first), and every key rewrapped under it. The node key secret is kept. */
  async unlockForGood(): Promise<void> {
    if (this.kekSource === 'stored') return;
    await this.rewrap(await DataKeys.storeNewKek(this.vfs, this.dir), 'stored');
  }

  private async rewrap(kek: Kek, source: KekSource): Promise<void> {
    const before = { kek: this.kek, source: this.kekSource, wrapped: new Map(this.wrapped) };
    this.kek = kek;
    this.kekSource = source;
    for (const id of this.wrapped.keys()) this.wrapped.set(id, wrap(kek, id, this.keyring.key(id)));
    try {
      await this.save();
    } catch (e) {
      this.kek = before.kek;
      this.kekSource = before.source;
      for (const [id, w] of before.wrapped) this.wrapped.set(id, w);
      throw e;
    }
  }

  private async removeKekFile(): Promise<void> {
    await this.vfs.remove(path.join(this.dir, KEK_FILE));
    await this.vfs.syncDir(this.dir);
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
      kek: { id: this.kek.id, source: this.kekSource },
      current: cur,
      deks: [...this.wrapped].sort((a, b) => b[0] - a[0]).map(([id, w]) => ({ id, wrapped: w })),
    };
    if (this.nodeKey) d.nodeKey = wrap(this.kek, 'node-key', this.nodeKey);
    await this.vfs.writeFileAtomic(this.dekFile, enc(d));
  }
}
