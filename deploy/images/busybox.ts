// Builds a small image from Debian's busybox-static (/bin/busybox) as an OCI
// image layout tar or a `docker save` tar: one gzip layer holding busybox,
// a symlink per applet, /etc/passwd, /etc/group, /tmp and /root. The sandbox
// preloads it on every host; tests and benchmarks run it. Reproducible: fixed
// mtimes and owners, so the same busybox gives the same image id.
//   npx tsx deploy/images/busybox.ts OUT.tar [--format oci|docker] [--tag T]
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { writeTar } from '../../agent/runtime/tar.js';

export interface BuildOptions {
  outPath: string;
  format: 'oci' | 'docker';
  tag?: string;
  busybox?: string;
  /** Extra image config fields (Healthcheck, StopSignal, ...) over the defaults, for tests. */
  config?: Record<string, unknown>;
}

const MTIME = '2024-01-01T00:00:00Z';
const MTIME_S = Date.parse(MTIME) / 1000;
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

type Entry = Parameters<typeof writeTar>[0][number];
const dir = (name: string, mode = 0o755): Entry => ({ name, type: 'dir', mode, mtime: MTIME_S });
const file = (name: string, data: Buffer | string, mode = 0o644): Entry => ({
  name,
  type: 'file',
  mode,
  mtime: MTIME_S,
  data: Buffer.from(data),
});

/** The layer as an uncompressed tar (reproducible: sorted names, fixed owners and mtimes). */
function layerTar(busybox: string): Buffer {
  const applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((a) => a && a !== 'busybox' && !a.includes('/'));
  const entries: Entry[] = [
    dir('bin'),
    file('bin/busybox', readFileSync(busybox), 0o755),
    ...[...new Set(applets)]
      .sort()
      .map((a): Entry => ({ name: `bin/${a}`, type: 'symlink', mode: 0o777, mtime: MTIME_S, linkname: 'busybox' })),
    dir('dev'),
    dir('etc'),
    file('etc/group', 'root:x:0:\nnogroup:x:65534:\n'),
    file('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n'),
    dir('proc'),
    dir('root', 0o700),
    dir('sys'),
    dir('tmp', 0o1777),
    dir('var'),
    dir('var/www'),
    file('var/www/index.html', 'hello from tsswarm/busybox\n'),
  ];
  return writeTar(entries);
}

/** Splits `name:tag` (a registry port is not a tag). */
function splitTag(ref: string): { repo: string; tag: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) } : { repo: ref, tag: 'latest' };
}

export async function buildBusyboxImage(o: BuildOptions): Promise<{ id: string; outPath: string }> {
  const tag = o.tag ?? 'tsswarm/busybox:latest';
  const raw = layerTar(o.busybox ?? '/bin/busybox');
  const diffId = `sha256:${sha(raw)}`;
  const config = Buffer.from(
    JSON.stringify({
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      created: MTIME,
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], WorkingDir: '/', ...o.config },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created: MTIME, created_by: 'tsswarm deploy/images/busybox.ts' }],
    }),
  );
  const configDigest = sha(config);
  const out: Entry[] = [];
  if (o.format === 'oci') {
    const gz = gzipSync(raw, { level: 6 });
    const layerDigest = sha(gz);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${configDigest}`, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${layerDigest}`, size: gz.length }],
      }),
    );
    const blobs = [
      [layerDigest, gz],
      [configDigest, config],
      [sha(manifest), manifest],
    ] as const;
    out.push(
      dir('blobs'),
      dir('blobs/sha256'),
      ...[...blobs].sort((a, b) => a[0].localeCompare(b[0])).map(([d, b]) => file(`blobs/sha256/${d}`, b)),
    );
    out.push(
      file(
        'index.json',
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [
            {
              mediaType: 'application/vnd.oci.image.manifest.v1+json',
              digest: `sha256:${sha(manifest)}`,
              size: manifest.length,
              annotations: { 'org.opencontainers.image.ref.name': tag },
            },
          ],
        }),
      ),
      file('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' })),
    );
  } else {
    const { repo, tag: t } = splitTag(tag);
    const layerDir = sha(raw);
    out.push(
      file(`${configDigest}.json`, config),
      dir(layerDir),
      file(`${layerDir}/VERSION`, '1.0'),
      file(`${layerDir}/layer.tar`, raw),
      file('manifest.json', JSON.stringify([{ Config: `${configDigest}.json`, RepoTags: [tag], Layers: [`${layerDir}/layer.tar`] }])),
      file('repositories', JSON.stringify({ [repo]: { [t]: layerDir } })),
    );
  }
  const outPath = resolve(o.outPath);
  mkdirSync(dirname(outPath), { recursive: true });
  // Written under a scratch name and renamed: a reader never sees half an archive.
  const tmp = `${outPath}.tmp-${process.pid}`;
  writeFileSync(tmp, writeTar(out));
  renameSync(tmp, outPath);
  return { id: `sha256:${configDigest}`, outPath };
}

// Run as a script only from its own source file: bundled into dist/, import.meta.url is the
// bundle's, which is also the command's entry (and `tsswarm version` would build an image).
const self = new URL(import.meta.url).pathname;
if (self.endsWith('/deploy/images/busybox.ts') && process.argv[1] && resolve(process.argv[1]) === resolve(self)) {
  const args = process.argv.slice(2);
  const outPath = args.find((a, i) => !a.startsWith('--') && !['--format', '--tag'].includes(args[i - 1] ?? ''));
  if (!outPath) {
    process.stderr.write('usage: npx tsx deploy/images/busybox.ts OUT.tar [--format oci|docker] [--tag T]\n');
    process.exit(2);
  }
  const fi = args.indexOf('--format');
  const ti = args.indexOf('--tag');
  const format = fi >= 0 ? args[fi + 1] : 'oci';
  if (format !== 'oci' && format !== 'docker') {
    process.stderr.write(`--format must be oci or docker (got "${format}")\n`);
    process.exit(2);
  }
  const r = await buildBusyboxImage({ outPath, format, tag: ti >= 0 ? args[ti + 1] : undefined });
  process.stdout.write(`${r.outPath} ${r.id}\n`);
}
