// Authenticated encryption of the Raft member's durable records (WAL records
// and snapshot files) with data keys (DEKs): AES-256-GCM through node:crypto,
// a fresh random 96-bit nonce per record, and the record's position passed as
// additional authenticated data by the caller, so that a record moved to
// another place, or replayed from an older file, does not verify.
//
// A sealed record is: u32 LE key id ++ 12-byte nonce ++ ciphertext ++ 16-byte tag.
// The key id names the DEK (see keys.ts); it is part of the AAD as well.
//
// Random 96-bit nonces are safe for about 2^32 records per key (NIST SP 800-38D §8.3); rotating
// the DEK (DiskStorage.rotateDataKey) starts a new key.
import { type CipherGCM, type KeyObject, createCipheriv, createDecipheriv, createSecretKey, randomFillSync } from 'node:crypto';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Bytes a sealed record adds to its plaintext: key id, nonce, tag. */
export const SEAL_OVERHEAD = 4 + NONCE_BYTES + TAG_BYTES;

/** A record failed authentication, or names a key the keyring does not hold. `reason` says which. */
export class SealError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'SealError';
  }
}

// Nonces come from a pool refilled in bulk: one randomFillSync per 512 records instead of one per record.
const POOL_RECORDS = 512;
const pool = new Uint8Array(POOL_RECORDS * NONCE_BYTES);
let poolAt = pool.length;

function nextNonce(): Uint8Array {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const n = pool.subarray(poolAt, poolAt + NONCE_BYTES);
  poolAt += NONCE_BYTES;
  return n;
}

function putU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v & 0xff;
  b[p + 1] = (v >>> 8) & 0xff;
  b[p + 2] = (v >>> 16) & 0xff;
  b[p + 3] = (v >>> 24) & 0xff;
}

/** The key id a sealed record names (its first four bytes). */
export function sealedKeyId(sealed: Uint8Array): number {
  return (sealed[0]! | (sealed[1]! << 8) | (sealed[2]! << 16) | (sealed[3]! << 24)) >>> 0;
}

/** The data keys of one member, by id, and the one new records are sealed with. */
export class Keyring {
  private readonly keys = new Map<number, KeyObject>();
  private cur: number;
  /**
   * A cipher made ahead, with its own fresh nonce, for the next seal. Making one costs about 20 µs
   * when the process has been waiting on an fsync (6 µs in a hot loop), on the path of every write;
   * made on the next turn of the event loop instead, it overlaps the fsync. Used once, then dropped.
   */
  private spare: { id: number; nonce: Uint8Array; c: CipherGCM } | null = null;
  private preparing = false;

  constructor(keys: Iterable<[number, Uint8Array]>, current: number) {
    for (const [id, k] of keys) this.add(id, k);
    if (!this.keys.has(current)) throw new Error(`keyring: the current data key ${current} is not among the keys`);
    this.cur = current;
  }

  get currentId(): number {
    return this.cur;
  }

  ids(): number[] {
    return [...this.keys.keys()];
  }

  has(id: number): boolean {
    return this.keys.has(id);
  }

  add(id: number, key: Uint8Array): void {
    if (!(Number.isInteger(id) && id >= 1 && id < 2 ** 32)) throw new Error(`keyring: key id ${id} is not a u32 ≥ 1`);
    if (key.length !== KEY_BYTES) throw new Error(`keyring: data key ${id} has ${key.length} bytes, not ${KEY_BYTES}`);
    this.keys.set(id, createSecretKey(key));
  }

  /** Data key `id`'s bytes (to wrap it under another key-encryption key). */
  key(id: number): Uint8Array {
    const k = this.keys.get(id);
    if (!k) throw new Error(`keyring: no data key ${id}`);
    return new Uint8Array(k.export());
  }

  setCurrent(id: number): void {
    if (!this.keys.has(id)) throw new Error(`keyring: no data key ${id}`);
    this.cur = id;
    this.spare = null;
  }

  remove(id: number): void {
    if (id === this.cur) throw new Error(`keyring: cannot remove the current data key ${id}`);
    this.keys.delete(id);
  }

  /** Bytes sealing `n` bytes of plaintext takes. */
  static sealedSize(n: number): number {
    return n + SEAL_OVERHEAD;
  }

  /**
   * Seals `parts` (concatenated) with the current key into `out` at `p`, returning the end.
   * `aad(keyId)` gives the additional data, which must include the record's position.
   */
  sealInto(out: Uint8Array, p: number, aad: (keyId: number) => Uint8Array, ...parts: Uint8Array[]): number {
    const id = this.cur;
    let spare = this.spare;
    this.spare = null;
    if (!spare || spare.id !== id) spare = this.make(id);
    const { nonce, c } = spare;
    this.prepareNext();
    putU32(out, p, id);
    out.set(nonce, p + 4);
    c.setAAD(aad(id));
    let q = p + 4 + NONCE_BYTES;
    for (const part of parts) {
      const ct = c.update(part);
      out.set(ct, q);
      q += ct.length;
    }
    const fin = c.final();
    out.set(fin, q);
    q += fin.length;
    out.set(c.getAuthTag(), q);
    return q + TAG_BYTES;
  }

  private make(id: number): { id: number; nonce: Uint8Array; c: CipherGCM } {
    const nonce = nextNonce().slice();
    // No options object: it costs about a microsecond per call here; a GCM tag is 16 bytes by default.
    return { id, nonce, c: createCipheriv('aes-256-gcm', this.keys.get(id)!, nonce) };
  }

  private prepareNext(): void {
    if (this.preparing) return;
    this.preparing = true;
    setImmediate(() => {
      this.preparing = false;
      if (!this.spare && this.keys.has(this.cur)) this.spare = this.make(this.cur);
    });
  }

  /** Seals `plain` into a new buffer. */
  seal(aad: (keyId: number) => Uint8Array, plain: Uint8Array): Uint8Array {
    const out = new Uint8Array(Keyring.sealedSize(plain.length));
    this.sealInto(out, 0, aad, plain);
    return out;
  }

  /** Opens a sealed record; throws SealError when the key is unknown or authentication fails. */
  open(aad: (keyId: number) => Uint8Array, sealed: Uint8Array): Uint8Array {
    if (sealed.length < SEAL_OVERHEAD) throw new SealError(`a sealed record of ${sealed.length} bytes is shorter than its overhead`);
    const id = sealedKeyId(sealed);
    const key = this.keys.get(id);
    if (!key) {
      throw new SealError(
        `sealed with data key ${id}, which the key file does not hold (it holds ${this.ids().join(', ') || 'none'}): the key file is older than the data or belongs to another member`,
      );
    }
    const nonce = sealed.subarray(4, 4 + NONCE_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    const d = createDecipheriv('aes-256-gcm', key, nonce); // the tag passed is always TAG_BYTES long
    d.setAAD(aad(id));
    d.setAuthTag(tag);
    const body = d.update(sealed.subarray(4 + NONCE_BYTES, sealed.length - TAG_BYTES));
    try {
      d.final();
    } catch {
      throw new SealError(
        `authentication failed with data key ${id}: the bytes were altered, moved from another position, or sealed with another key`,
      );
    }
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  }
}
