// Digest pinning by the CLI, as the docker CLI does it before `service create`,
// `service update --image` and `stack deploy`: the daemon asks the image's
// registry for the digest and platforms (Daemon.ResolveImage, the engine API's
// /distribution), and the spec is sent with `image:tag@sha256:…` and the
// platforms, so every node runs the same bytes. A registry that cannot be
// reached is a warning and the tag is kept.
import type { Platform, ServiceSpec } from '../proto/gen/objects.js';
import { daemonApi } from './client.js';
import type { Io } from './command.js';

/** The familiar form with a tag, as the docker CLI sends an image: `busybox` → `busybox:latest`; a digest reference unchanged. */
export function imageWithTag(image: string): string {
  const familiar = image.replace(/^(docker\.io|index\.docker\.io)\//, '').replace(/^library\/(?=[^/]+$)/, '');
  if (familiar.includes('@')) return familiar;
  return familiar.lastIndexOf(':') > familiar.lastIndexOf('/') ? familiar : `${familiar}:latest`;
}

/** `image` pinned to `digest`: the tag kept (latest when none), the digest added; a reference already pinned is unchanged. */
export function pinnedImage(image: string, digest: string): string {
  const tagged = imageWithTag(image);
  return tagged.includes('@') ? tagged : `${tagged}@${digest}`;
}

/**
 * The platforms to place on, as the docker CLI derives them: os and
 * architecture only, with `arm` dropped to any architecture (nodes report
 * armv7l and the like, which would match nothing).
 */
export function placementPlatforms(ps: readonly Platform[]): Platform[] {
  return ps.map((p) => ({ os: p.os, architecture: p.architecture.toLowerCase() === 'arm' ? '' : p.architecture }));
}

export const digestWarning = (image: string, why: string): string =>
  `image ${image} could not be accessed on a registry to record\nits digest (${why}). Each node will access ${image} independently,\npossibly leading to different nodes running different\nversions of the image.\n`;

/** What pinning puts in a spec: the pinned image and the platforms to place on. */
export interface ImagePin {
  image: string;
  platforms: Platform[];
}

/** Asks the daemon for the image's digest and platforms; on failure warns on stderr (the tag is kept) and gives undefined. */
export async function resolvePin(io: Io, image: string, registryAuth?: string): Promise<ImagePin | undefined> {
  try {
    const r = await daemonApi('resolveImage', { reference: imageWithTag(image), registryAuth: registryAuth ?? '' }, 60_000);
    return { image: pinnedImage(image, r.digest), platforms: placementPlatforms(r.platforms) };
  } catch (e) {
    io.stderr.write(digestWarning(image, (e as Error).message.split('\n')[0]!.slice(0, 300)));
    return undefined;
  }
}

/** Puts a pin in a spec: the image, and the platforms when the registry named any. */
export function applyPin(spec: ServiceSpec, pin: ImagePin | undefined): void {
  if (!pin) return;
  spec.task.container.image = pin.image;
  if (pin.platforms.length)
    spec.task.placement = { constraints: [], preferences: [], maxReplicas: 0, ...spec.task.placement, platforms: pin.platforms };
}
