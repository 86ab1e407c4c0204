// The image every sandbox host has from the start: a busybox image built from
// Debian's busybox-static (no registry needed), loaded into each host's
// daemon with `tsswarm image load`, as a user would on a real node.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { TsswarmError } from '../../lib/errors.js';
import { buildBusyboxImage } from '../images/busybox.js';

export const SANDBOX_IMAGE = 'tsswarm/busybox:latest';

/** What preloading needs of a sandbox: sandbox.ts passes itself (a narrow shape, so this module does not import it back). */
export interface ImageHosts {
  readonly root: string;
  hosts(): readonly { name: string }[];
  execCapture(
    host: string,
    argv: readonly string[],
    opts: { timeoutMs?: number },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Builds the image tarball once per sandbox and loads it on every host. */
export async function preloadImages(sb: ImageHosts, progress: (line: string) => void = () => undefined): Promise<void> {
  const dir = join(sb.root, 'images');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'busybox-oci.tar');
  if (!existsSync(path)) await buildBusyboxImage({ outPath: path, format: 'oci', tag: SANDBOX_IMAGE });
  progress(`Loading ${SANDBOX_IMAGE} on every host`);
  await Promise.all(
    sb.hosts().map(async (h) => {
      const r = await sb.execCapture(h.name, ['tsswarm', 'image', 'load', '-i', path], { timeoutMs: 120_000 });
      if (r.code !== 0)
        throw new TsswarmError(
          'UNAVAILABLE',
          `${h.name}: loading ${SANDBOX_IMAGE} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`,
        );
    }),
  );
}
