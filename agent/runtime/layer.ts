// Unpacks one image layer (an uncompressed tar) into an empty directory that
// overlayfs then uses as a lower layer: OCI whiteouts become overlay whiteouts
// (`.wh.NAME` → a 0:0 character device NAME, `.wh..wh..opq` → the directory's
// trusted.overlay.opaque=y xattr). Owners, modes (setuid too), symlinks, hard
// links and mtimes are kept; device nodes and fifos are skipped (containers
// get their /dev from runc). Entries never land outside the directory.
import { execFile } from 'node:child_process';
import { chmodSync, linkSync, lchownSync, lstatSync, lutimesSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readTar } from './tar.js';

const run = promisify(execFile);

export interface UnpackResult {
  files: number;
  /** Device nodes and fifos left out. */
  skipped: number;
  whiteouts: number;
  opaqueDirs: number;
}

function safeParts(name: string): string[] {
  const parts = name.split('/').filter((p) => p && p !== '.');
  if (parts.some((p) => p === '..')) throw new Error(`layer entry "${name}" climbs out of the layer with ".."`);
  return parts;
}

export async function unpackLayer(tar: Buffer, dest: string): Promise<UnpackResult> {
  const res: UnpackResult = { files: 0, skipped: 0, whiteouts: 0, opaqueDirs: 0 };
  const okDirs = new Set<string>(['']);
  const dirTimes: { path: string; mtime: number }[] = [];
  const whiteouts: string[] = [];
  const opaque: string[] = [];

  // Parents are made as plain directories, and a symlink on the way is refused: a layer must not write through one.
  const parentOf = (parts: string[]): string => {
    let rel = '';
    for (const p of parts.slice(0, -1)) {
      rel = rel ? `${rel}/${p}` : p;
      if (okDirs.has(rel)) continue;
      const abs = join(dest, rel);
      let st;
      try {
        st = lstatSync(abs);
      } catch {
        mkdirSync(abs, { mode: 0o755 });
        okDirs.add(rel);
        continue;
      }
      if (!st.isDirectory()) throw new Error(`layer entry under "${rel}" goes through a ${st.isSymbolicLink() ? 'symlink' : 'file'}`);
      okDirs.add(rel);
    }
    return join(dest, ...parts.slice(0, -1));
  };
  const clear = (abs: string, keepDir = false): void => {
    try {
      const st = lstatSync(abs);
      if (keepDir && st.isDirectory()) return;
      rmSync(abs, { recursive: true, force: true });
    } catch {
      /* nothing there */
    }
  };

  for (const e of readTar(tar)) {
    const parts = safeParts(e.name);
    if (parts.length === 0) {
      if (e.type === 'dir') dirTimes.push({ path: dest, mtime: e.mtime });
      continue;
    }
    const parent = parentOf(parts);
    const base = parts[parts.length - 1]!;
    if (base === '.wh..wh..opq') {
      opaque.push(parent);
      continue;
    }
    if (base.startsWith('.wh.')) {
      whiteouts.push(join(parent, base.slice(4)));
      continue;
    }
    const abs = join(parent, base);
    const rel = parts.join('/');
    switch (e.type) {
      case 'dir':
        clear(abs, true);
        mkdirSync(abs, { recursive: true });
        lchownSync(abs, e.uid, e.gid);
        chmodSync(abs, e.mode);
        okDirs.add(rel);
        dirTimes.push({ path: abs, mtime: e.mtime });
        break;
      case 'file':
        clear(abs);
        writeFileSync(abs, e.data, { mode: 0o600 });
        lchownSync(abs, e.uid, e.gid);
        chmodSync(abs, e.mode); // after chown, which clears setuid
        utimesSync(abs, e.mtime, e.mtime);
        break;
      case 'symlink':
        clear(abs);
        symlinkSync(e.linkname, abs);
        lchownSync(abs, e.uid, e.gid);
        lutimesSync(abs, e.mtime, e.mtime);
        break;
      case 'hardlink': {
        clear(abs);
        const target = join(dest, ...safeParts(e.linkname));
        try {
          linkSync(target, abs);
        } catch (err) {
          throw new Error(`hard link ${rel} → ${e.linkname}: the target is not in this layer (${(err as Error).message})`);
        }
        break;
      }
      default:
        res.skipped++;
        continue;
    }
    res.files++;
  }
  for (const w of whiteouts) {
    clear(w);
    await run('mknod', ['-m', '0', w, 'c', '0', '0']);
    res.whiteouts++;
  }
  for (const d of opaque) {
    await run('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', d]);
    res.opaqueDirs++;
  }
  // Last, and deepest first: writing into a directory moves its mtime.
  for (const d of dirTimes.reverse()) utimesSync(d.path, d.mtime, d.mtime);
  return res;
}
