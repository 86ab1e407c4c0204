// The managers' unlock key (autolock): 32 random bytes shown to the operator
// as `SWMKEY-1-<base64, unpadded>`, Swarm's spelling, so scripts and password
// managers that hold Swarm keys take ours unchanged. The key itself never
// wraps anything: HKDF-SHA256 derives from it the key-encryption key that
// wraps a manager's Raft data keys (keys.ts), and, under another label, the
// public id that names which KEK a key file was wrapped with (a wrong key is
// told from a damaged file without trying to unwrap).
import { hkdfSync, randomBytes } from 'node:crypto';
import { UsageError } from '../../../lib/errors.js';
import { KEY_BYTES } from './cipher.js';

export const UNLOCK_KEY_PREFIX = 'SWMKEY-1-';

/** A new unlock key, as shown to the operator. */
export function newUnlockKey(): string {
  return formatUnlockKey(new Uint8Array(randomBytes(KEY_BYTES)));
}

export function formatUnlockKey(raw: Uint8Array): string {
  return UNLOCK_KEY_PREFIX + Buffer.from(raw).toString('base64').replace(/=+$/, '');
}

/** The key's 32 bytes; a UsageError naming the field and the expected form otherwise. */
export function parseUnlockKey(text: string, field = 'unlock key'): Uint8Array {
  const s = text.trim();
  const expected = `${UNLOCK_KEY_PREFIX} followed by 43 base64 characters, as \`tsswarm unlock-key\` prints it`;
  // What was given is never echoed: a mistyped key is still most of a secret.
  if (!s.startsWith(UNLOCK_KEY_PREFIX)) throw UsageError.invalid(field, expected, `${s.length} characters without that prefix`);
  const body = s.slice(UNLOCK_KEY_PREFIX.length);
  if (!/^[A-Za-z0-9+/]{43}=?$/.test(body)) throw UsageError.invalid(field, expected, `${UNLOCK_KEY_PREFIX}… of ${body.length} characters`);
  const raw = new Uint8Array(Buffer.from(body, 'base64'));
  if (raw.length !== KEY_BYTES) throw UsageError.invalid(field, expected, `${raw.length} bytes`);
  return raw;
}

/** The key-encryption key an unlock key stands for, and its id (16 hex digits, which reveal nothing of the key). */
export function kekFromUnlockKey(text: string): { id: string; key: Uint8Array } {
  const raw = parseUnlockKey(text);
  const derive = (label: string, n: number): Buffer => Buffer.from(hkdfSync('sha256', raw, new Uint8Array(0), label, n));
  return { id: derive('tsswarm-raft-kek-id/1', 8).toString('hex'), key: new Uint8Array(derive('tsswarm-raft-kek/1', KEY_BYTES)) };
}
