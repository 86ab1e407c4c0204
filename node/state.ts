// What a daemon keeps in its state directory between restarts: its identity
// in the cluster (node.json) and its TLS material (certificates/). Every file
// is replaced atomically (temp file, fsync, rename), so a crash leaves the old
// or the new version, never half of one.
import { createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../lib/files.js';

export interface NodeState {
  nodeId: string;
  clusterId: string;
  /** The role of our certificate: what we act as now. */
  role: 'worker' | 'manager';
  /** Managers' host:port, most recently known first. */
  managerAddrs: string[];
  /** Node ids of the managers, as they last said: a manager's certificate must name one of them (ca/pin.ts). */
  managerNodeIds?: string[];
  listenAddr: string;
  advertiseAddr: string;
  /** Our Raft id while we are a member of the managers' Raft group. */
  raftId?: string;
}

export interface Certificates {
  caPem: string;
  certPem: string;
  keyPem: string;
}

function writeAtomic(path: string, data: string, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileAtomic(path, data, mode);
}

/** Whether a private key PEM is encrypted (a locked manager's TLS key, node/daemon.ts). */
export function isSealedKeyPem(pem: string): boolean {
  return pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
}

/** The key as encrypted PKCS#8 (AES-256-CBC; the passphrase is a 32-byte random secret, so the KDF's cost adds nothing). */
export function sealKeyPem(pem: string, secret: Uint8Array): string {
  return createPrivateKey(pem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: Buffer.from(secret) }) as string;
}

/** The key in clear: `pem` itself when it is not encrypted; an Error when `secret` is missing or not the one it was sealed with. */
export function openKeyPem(pem: string, secret: Uint8Array | null): string {
  if (!isSealedKeyPem(pem)) return pem;
  if (!secret) throw new Error('the TLS key is encrypted, and no key secret is known to open it');
  return createPrivateKey({ key: pem, passphrase: Buffer.from(secret) }).export({ type: 'pkcs8', format: 'pem' }) as string;
}

export class StateDir {
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  get raftDir(): string {
    return join(this.dir, 'raft');
  }

  private get nodeFile(): string {
    return join(this.dir, 'node.json');
  }

  private cert(name: string): string {
    return join(this.dir, 'certificates', name);
  }

  loadNode(): NodeState | null {
    if (!existsSync(this.nodeFile)) return null;
    try {
      return JSON.parse(readFileSync(this.nodeFile, 'utf8')) as NodeState;
    } catch (e) {
      throw new Error(`${this.nodeFile} is damaged (${(e as Error).message}); move it away and join the node again`);
    }
  }

  saveNode(s: NodeState): void {
    writeAtomic(this.nodeFile, JSON.stringify(s, null, 2) + '\n');
  }

  loadCerts(): Certificates | null {
    const files = ['ca.pem', 'node.pem', 'node.key'].map((f) => this.cert(f));
    if (!files.every((f) => existsSync(f))) return null;
    const [caPem, certPem, keyPem] = files.map((f) => readFileSync(f, 'utf8')) as [string, string, string];
    return { caPem, certPem, keyPem };
  }

  saveCerts(c: Certificates): void {
    // The key first: a certificate on disk always has its key.
    writeAtomic(this.cert('node.key'), c.keyPem);
    writeAtomic(this.cert('ca.pem'), c.caPem, 0o644);
    writeAtomic(this.cert('node.pem'), c.certPem, 0o644);
  }

  /** Forget the cluster (leave): identity, certificates and Raft state. */
  wipe(): void {
    for (const p of ['node.json', 'certificates', 'raft']) rmSync(join(this.dir, p), { recursive: true, force: true });
  }
}
