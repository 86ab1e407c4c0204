// `tsswarm image load|ls|rm|pull`: the local daemon's image store (images are
// per node, as with docker; the daemon on this host reads the archive itself).
import { resolve } from 'node:path';
import { UsageError } from '../lib/errors.js';
import { ImageSummary } from '../proto/gen/control.js';
import { oneOf } from './args.js';
import { daemonApi } from './client.js';
import { type Command, forEachArg, group, type Io, leaf } from './command.js';
import { ago, table } from './table.js';

// Pulls and loads can take a while: layers are fetched and unpacked.
const SLOW_MS = 30 * 60_000;

/** `12.3MB` like docker (decimal units). */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toPrecision(3).replace(/\.?0+$/, '')}${units[i]}`;
}

/** `busybox:1.36` → ['busybox', '1.36']; `localhost:5000/app` → ['localhost:5000/app', 'latest']. */
export function splitReference(ref: string): [string, string] {
  const at = ref.indexOf('@');
  const name = at >= 0 ? ref.slice(0, at) : ref;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) return [name.slice(0, colon), name.slice(colon + 1)];
  return [name, at >= 0 ? '<none>' : 'latest'];
}

/**
 * `image ls` rows, as docker lists them: one per tag, one per repository known
 * only by a digest (tag <none>), <none> for an unnamed image; with `digests`
 * a DIGEST column (the repository's digest, or <none>) after the tag.
 */
export function imageRows(images: readonly ImageSummary[], now = Date.now(), o: { digests?: boolean } = {}): string[][] {
  const rows: string[][] = [];
  for (const im of images) {
    const id = im.id.replace(/^sha256:/, '').slice(0, 12);
    const created = im.createdAt ? ago(im.createdAt, now) : '';
    const digestOf = new Map<string, string>();
    for (const d of im.repoDigests ?? []) {
      const at = d.indexOf('@');
      if (at > 0 && !digestOf.has(d.slice(0, at))) digestOf.set(d.slice(0, at), d.slice(at + 1));
    }
    const named: [string, string][] = im.references.map((r) => splitReference(r));
    const tagged = new Set(named.map(([repo]) => repo));
    for (const repo of digestOf.keys()) if (!tagged.has(repo)) named.push([repo, '<none>']);
    if (!named.length) named.push(['<none>', '<none>']);
    for (const [repo, tag] of named)
      rows.push([repo, tag, ...(o.digests ? [digestOf.get(repo) ?? '<none>'] : []), id, created, humanSize(im.size)]);
  }
  return rows.sort((a, b) => a[0]!.localeCompare(b[0]!) || a[1]!.localeCompare(b[1]!));
}

function printLoaded(io: Io, images: readonly ImageSummary[]): void {
  for (const im of images) {
    if (im.references.length) for (const r of im.references) io.stdout.write(`Loaded image: ${r}\n`);
    else io.stdout.write(`Loaded image ID: ${im.id}\n`);
  }
}

const loadCommand = leaf({
  name: 'load',
  summary: 'Load an image from an OCI layout or `docker save` tar archive',
  usage: '-i FILE [OPTIONS]',
  flags: {
    input: { type: 'string', short: 'i', valueName: 'FILE', description: 'Archive or OCI layout directory to read' },
    tag: { type: 'string', valueName: 'REF', description: 'Reference for an image the archive does not name' },
  },
  async run({ flags, positionals, io }) {
    const file = flags.input ?? positionals[0];
    if (!file || positionals.length > (flags.input ? 0 : 1))
      throw new UsageError('give one archive: tsswarm image load -i FILE', { field: '--input' });
    // The daemon runs on this host but in another directory: send an absolute path.
    const r = await daemonApi('loadImage', { path: resolve(file), tag: flags.tag ?? '' }, SLOW_MS);
    printLoaded(io, r.images);
    return 0;
  },
});

const lsCommand = leaf({
  name: 'ls',
  summary: "List this node's images",
  flags: {
    quiet: { type: 'boolean', short: 'q', description: 'Only show image IDs' },
    format: { type: 'string', short: 'f', valueName: 'FORMAT', description: 'Output format: table (default) or json' },
    digests: { type: 'boolean', description: 'Show digests' },
  },
  async run({ flags, positionals, io }) {
    if (positionals.length) throw new UsageError(`"tsswarm image ls" accepts no arguments (got "${positionals.join(' ')}")`);
    const format = oneOf('--format', flags.format ?? 'table', ['table', 'json']);
    const r = await daemonApi('listImages');
    if (format === 'json')
      io.stdout.write(
        JSON.stringify(
          r.images.map((i) => ImageSummary.toObject(i)),
          null,
          2,
        ) + '\n',
      );
    else if (flags.quiet)
      io.stdout.write([...new Set(r.images.map((i) => i.id.replace(/^sha256:/, '').slice(0, 12)))].map((i) => `${i}\n`).join(''));
    else if (flags.digests)
      io.stdout.write(
        table(['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'], imageRows(r.images, Date.now(), { digests: true })),
      );
    else io.stdout.write(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], imageRows(r.images)));
    return 0;
  },
});

const rmCommand = leaf({
  name: 'rm',
  summary: 'Remove one or more images from this node',
  usage: '[OPTIONS] IMAGE [IMAGE...]',
  flags: { force: { type: 'boolean', short: 'f', description: 'Remove the image even if several references name it' } },
  async run({ flags, positionals, io }) {
    if (!positionals.length) throw new UsageError('give at least one image to remove');
    return forEachArg(io, positionals, async (reference) => {
      const r = await daemonApi('removeImage', { reference, force: flags.force });
      for (const x of r.removed) io.stdout.write(`${x.startsWith('sha256:') ? 'Deleted' : 'Untagged'}: ${x}\n`);
    });
  },
});

const pullCommand = leaf({
  name: 'pull',
  summary: 'Pull an image from a registry to this node',
  usage: '[OPTIONS] REFERENCE',
  flags: { insecure: { type: 'boolean', description: 'Use plain http (and accept any certificate)' } },
  async run({ flags, positionals, io }) {
    if (positionals.length !== 1)
      throw new UsageError('give exactly one image reference: tsswarm image pull [--insecure] REGISTRY/REPOSITORY[:TAG]');
    const r = await daemonApi('pullImage', { reference: positionals[0], insecure: flags.insecure }, SLOW_MS);
    for (const im of r.images) io.stdout.write(`${positionals[0]}: ${im.id}\n`);
    return 0;
  },
});

const imageCommands: readonly Command[] = [loadCommand, lsCommand, pullCommand, rmCommand];

export const imageCommand: Command = group({ name: 'image', summary: "Manage this node's images", subcommands: () => imageCommands });
