// Public surface of the Raft library's durable storage: the WAL, snapshot
// files, DiskStorage combining them, and the file-system seam (Vfs) that lets
// the simulation run all of it against a disk that crashes.
export { Keyring, SealError } from './cipher.js';
export { crc32c } from './crc32c.js';
export { DiskStorage, type DiskStorageOptions, type LoadedState, type PersistBatch } from './disk.js';
export { DEK_FILE, DataKeys, type Kek, KEK_FILE, type KekSource, KeyFileError, LockedError, WrongUnlockKeyError } from './keys.js';
export { formatUnlockKey, kekFromUnlockKey, newUnlockKey, parseUnlockKey, UNLOCK_KEY_PREFIX } from './unlock-key.js';
export {
  SnapshotAuthError,
  SnapshotCorruptError,
  StorageError,
  WalClosedError,
  WalCorruptError,
  WalFailedError,
  WalInconsistentError,
} from './errors.js';
export { BROKEN_SUFFIX, SnapshotStore, snapshotFileName } from './snapshots.js';
export { TMP_SUFFIX, type VFile, type Vfs, realVfs } from './vfs.js';
export { type SnapshotMark, Wal, type WalOptions, type WalState, type WalStats } from './wal.js';
