// Autolock at the storage layer, on real files in a temp dir: the unlock key's
// form and derivation, the DEK file wrapped by the unlock key's KEK with the
// stored KEK gone, a locked directory refused without the key and with a
// wrong one (and a damaged file told apart from a wrong key), the crash
// windows of locking and unlocking (each leaves a state that opens with the
// key), and a storage that keeps writing and replaying across lock (which
// rotates the data key), unlock-key rotation and unlock.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HardState } from '../../../../proto/gen/raft.js';
import {
  DataKeys,
  DEK_FILE,
  DiskStorage,
  formatUnlockKey,
  KEK_FILE,
  KeyFileError,
  kekFromUnlockKey,
  LockedError,
  newUnlockKey,
  parseUnlockKey,
  realVfs,
  UNLOCK_KEY_PREFIX,
  WrongUnlockKeyError,
} from '../../../../manager/raft/storage/index.js';
import { UsageError } from '../../../../lib/errors.js';
import { ents, tempDir, view } from './helpers.js';

let root: string;
let dir: string;
beforeEach(async () => {
  root = await tempDir();
  dir = path.join(root, 'raft');
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const dekJson = async (): Promise<{ kek: { id: string; source: string }; nodeKey?: string; deks: unknown[] }> =>
  JSON.parse(await fs.readFile(path.join(dir, DEK_FILE), 'utf8'));
const exists = (f: string): Promise<boolean> =>
  fs.access(path.join(dir, f)).then(
    () => true,
    () => false,
  );

describe('the unlock key', () => {
  it('is SWMKEY-1- and 43 base64 characters of 32 random bytes, and parses back', () => {
    const k = newUnlockKey();
    expect(k).toMatch(/^SWMKEY-1-[A-Za-z0-9+/]{43}$/);
    expect(parseUnlockKey(k)).toHaveLength(32);
    expect(formatUnlockKey(parseUnlockKey(k))).toBe(k);
    expect(newUnlockKey()).not.toBe(k);
    // Surrounding white space (a pasted line) is fine.
    expect(formatUnlockKey(parseUnlockKey(` ${k}\n`))).toBe(k);
  });

  it('a malformed key is refused naming the expected form, and never echoed', () => {
    const k = newUnlockKey();
    for (const bad of [
      '',
      k.slice(UNLOCK_KEY_PREFIX.length),
      `${k}A`,
      k.slice(0, -1),
      `SWMTKN-1-${k.slice(9)}`,
      `${k.slice(0, 20)}!${k.slice(21)}`,
    ]) {
      let err: unknown;
      try {
        parseUnlockKey(bad);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(UsageError);
      const msg = (err as Error).message;
      expect(msg).toContain('unlock key must be SWMKEY-1- followed by 43 base64 characters');
      // Not even the part after the prefix: a mistyped key is still most of the secret.
      if (bad.length > 12) expect(msg).not.toContain(bad.slice(12, 30));
    }
  });

  it('derives a KEK and a public id that are stable, differ per key, and differ from each other', () => {
    const k = newUnlockKey();
    const a = kekFromUnlockKey(k);
    const b = kekFromUnlockKey(k);
    expect(a.id).toMatch(/^[0-9a-f]{16}$/);
    expect(a).toEqual(b);
    expect(a.key).toHaveLength(32);
    expect(Buffer.from(a.key).equals(Buffer.from(parseUnlockKey(k)))).toBe(false);
    expect(Buffer.from(a.key).toString('hex')).not.toContain(a.id);
    expect(kekFromUnlockKey(newUnlockKey()).id).not.toBe(a.id);
  });
});

describe('locking the data keys', () => {
  it('lock: the DEKs and a new node key secret wrapped by the unlock KEK, raft-kek.json removed; load needs that key', async () => {
    const keys = await DataKeys.create(realVfs, dir);
    expect(keys.nodeKeySecret).toBeNull();
    const key = newUnlockKey();
    const kek = kekFromUnlockKey(key);
    await keys.lock(kek);
    expect(await exists(KEK_FILE)).toBe(false);
    const j = await dekJson();
    expect(j.kek).toEqual({ id: kek.id, source: 'unlock-key' });
    expect(j.nodeKey).toBeTruthy();
    const secret = keys.nodeKeySecret;
    expect(secret).toHaveLength(32);
    // No key in clear in the file: neither the KEK nor the unlock key nor the secret.
    const raw = await fs.readFile(path.join(dir, DEK_FILE));
    for (const b of [kek.key, parseUnlockKey(key), secret!]) expect(raw.includes(Buffer.from(b))).toBe(false);
    expect(raw.includes(Buffer.from(key.slice(9)))).toBe(false);

    expect(await DataKeys.sourceOf(realVfs, dir)).toBe('unlock-key');
    await expect(DataKeys.load(realVfs, dir)).rejects.toBeInstanceOf(LockedError);
    await expect(DataKeys.load(realVfs, dir, kekFromUnlockKey(newUnlockKey()))).rejects.toBeInstanceOf(WrongUnlockKeyError);
    const again = await DataKeys.load(realVfs, dir, kek);
    expect(again.source).toBe('unlock-key');
    expect(Buffer.from(again.nodeKeySecret!).equals(Buffer.from(secret!))).toBe(true);
    expect(again.keyring.key(1)).toEqual(keys.keyring.key(1));
  });

  it('a damaged wrap under the right key id is a damaged file (RAFT_KEYS_INVALID), not a wrong key', async () => {
    const keys = await DataKeys.create(realVfs, dir);
    const kek = kekFromUnlockKey(newUnlockKey());
    await keys.lock(kek);
    const j = await dekJson();
    const w = Buffer.from((j.deks[0] as { wrapped: string }).wrapped, 'base64');
    w[20]! ^= 1;
    (j.deks[0] as { wrapped: string }).wrapped = w.toString('base64');
    await fs.writeFile(path.join(dir, DEK_FILE), JSON.stringify(j));
    const err = await DataKeys.load(realVfs, dir, kek).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyFileError);
    expect((err as KeyFileError).code).toBe('RAFT_KEYS_INVALID');
  });

  it('rotation to another unlock key rewrites the DEK file only: the old key stops opening it, the node key secret stays', async () => {
    const keys = await DataKeys.create(realVfs, dir);
    const k1 = kekFromUnlockKey(newUnlockKey());
    const k2 = kekFromUnlockKey(newUnlockKey());
    await keys.lock(k1);
    const secret = Buffer.from(keys.nodeKeySecret!);
    await keys.lock(k2);
    await expect(DataKeys.load(realVfs, dir, k1)).rejects.toBeInstanceOf(WrongUnlockKeyError);
    const l = await DataKeys.load(realVfs, dir, k2);
    expect(Buffer.from(l.nodeKeySecret!).equals(secret)).toBe(true);
  });

  it('unlock for good: a new stored KEK written before the DEK file, the node key secret kept (a TLS key still sealed opens)', async () => {
    const keys = await DataKeys.create(realVfs, dir);
    const kek = kekFromUnlockKey(newUnlockKey());
    await keys.lock(kek);
    const secret = Buffer.from(keys.nodeKeySecret!);
    await keys.unlockForGood();
    expect(await exists(KEK_FILE)).toBe(true);
    expect((await dekJson()).kek.source).toBe('stored');
    const l = await DataKeys.load(realVfs, dir);
    expect(l.source).toBe('stored');
    expect(Buffer.from(l.nodeKeySecret!).equals(secret)).toBe(true);
  });

  it('crash windows: locking after the DEK file but before raft-kek.json is removed, and unlocking after raft-kek.json but before the DEK file, both open with the key', async () => {
    const keys = await DataKeys.create(realVfs, dir);
    const staleKek = await fs.readFile(path.join(dir, KEK_FILE));
    const kek = kekFromUnlockKey(newUnlockKey());
    await keys.lock(kek);
    // 1. The stale stored KEK is back (the removal never happened): still locked, and loading with the key removes it.
    await fs.writeFile(path.join(dir, KEK_FILE), staleKek);
    expect(await DataKeys.sourceOf(realVfs, dir)).toBe('unlock-key');
    await expect(DataKeys.load(realVfs, dir)).rejects.toBeInstanceOf(LockedError);
    await DataKeys.load(realVfs, dir, kek);
    expect(await exists(KEK_FILE)).toBe(false);
    // 2. A new stored KEK written, the DEK file not yet: still locked, the key still opens it.
    await fs.writeFile(path.join(dir, KEK_FILE), staleKek);
    expect((await DataKeys.load(realVfs, dir, kek)).source).toBe('unlock-key');
  });
});

describe('a storage across lock, unlock-key rotation and unlock', () => {
  it('keeps writing, and replays everything with the key it is locked by at each restart', async () => {
    const hs = (term: number, commit: number): HardState => HardState.create({ term, vote: 'n1', commit });
    const k1 = kekFromUnlockKey(newUnlockKey());
    const k2 = kekFromUnlockKey(newUnlockKey());
    let { storage } = await DiskStorage.open(realVfs, dir, { encryption: true });
    await storage.persist({ hardState: hs(1, 3), entries: ents(1, 3), mustSync: true });
    expect(storage.dataKeys!.keyring.currentId).toBe(1);
    expect(await storage.setUnlockKek(k1)).toHaveLength(32);
    expect(storage.nodeKeySecret).toHaveLength(32);
    // Locking a stored KEK also rotates the data key (what follows is out of reach of an earlier copy).
    expect(storage.dataKeys!.keyring.currentId).toBe(2);
    await storage.persist({ hardState: hs(1, 6), entries: ents(4, 6), mustSync: true });
    await storage.close();

    await expect(DiskStorage.open(realVfs, dir, { encryption: true })).rejects.toBeInstanceOf(LockedError);
    await expect(DiskStorage.open(realVfs, dir, { encryption: true, unlock: k2 })).rejects.toBeInstanceOf(WrongUnlockKeyError);
    let opened = await DiskStorage.open(realVfs, dir, { encryption: true, unlock: k1 });
    storage = opened.storage;
    expect(view(opened.state.entries).map((e) => e.index)).toEqual([1, 2, 3, 4, 5, 6]);
    await storage.setUnlockKek(k2);
    // From one unlock key to another: a rewrap only.
    expect(storage.dataKeys!.keyring.currentId).toBe(2);
    await storage.persist({ hardState: hs(1, 8), entries: ents(7, 8), mustSync: true });
    await storage.close();

    await expect(DiskStorage.open(realVfs, dir, { unlock: k1 })).rejects.toBeInstanceOf(WrongUnlockKeyError);
    opened = await DiskStorage.open(realVfs, dir, { unlock: k2 });
    storage = opened.storage;
    expect(opened.state.entries).toHaveLength(8);
    expect(await storage.setUnlockKek(null)).toBeNull();
    expect(storage.nodeKeySecret).toBeNull();
    await storage.close();

    opened = await DiskStorage.open(realVfs, dir);
    expect(opened.state.entries).toHaveLength(8);
    expect(opened.state.hardState.commit).toBe(8);
    await opened.storage.close();
  });
});
