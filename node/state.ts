// What a daemon keeps in its state directory between restarts: its identity
// in the cluster (node.json) and its TLS material (certificates/). Every file
// is replaced atomically (temp file, fsync, rename), so a crash leaves the old
// or the new version, never half of one.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

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
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
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
