// The node's image store: imports OCI image layouts and `docker save`
// tarballs, pulls from OCI distribution registries, keeps blobs by digest and
// unpacks each layer once (by diff id) into a directory that every container
// using it shares as an overlayfs lower layer. OCI whiteouts become overlay
// whiteouts (a 0:0 character device; an opaque-directory xattr).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type pino from 'pino';
import { TsswarmError } from '../../lib/errors.js';
import type { ImageSummary } from '../../proto/gen/control.js';
import type { HealthConfig } from '../../proto/gen/objects.js';
import { unpackLayer } from './layer.js';
import { cleanName, readTar } from './tar.js';

/** What a container needs from an image. */
export interface ResolvedImage {
  id: string;
  references: string[];
  /** Layer directories, base first. */
  layers: string[];
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workdir: string;
  user: string;
  healthcheck?: HealthConfig;
}

interface ImageRecord {
  id: string;
  references: string[];
  diffIds: string[];
  /** Uncompressed size of each layer, as diffIds. */
  layerSizes?: number[];
  size: number;
  createdAt: number;
  config: { Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] | null; WorkingDir?: string; User?: string; Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number } };
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const hexOf = (digest: string): string => digest.replace(/^sha256:/, '');

const DOCKER_HUB = /^(docker\.io|index\.docker\.io|registry-1\.docker\.io)\//;
const REF_RE = /^[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/;

/**
 * A reference as the store keys it, in docker's familiar (display) form:
 * `busybox`, `library/busybox` and `docker.io/library/busybox:latest` are all
 * `busybox:latest`; `docker.io/user/app` is `user/app:latest`; another registry
 * (`localhost:5000/x`) is kept; `name@sha256:…` is kept as it is.
 */
export function normalizeRef(ref: string): string {
  let r = ref.trim();
  if (!r) throw new TsswarmError('INVALID_ARGUMENT', 'image reference is empty: give a name such as busybox:latest');
  r = r.replace(DOCKER_HUB, '');
  const first = r.split('/')[0]!;
  const hasRegistry = r.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry && r.startsWith('library/')) r = r.slice('library/'.length);
  const [name] = r.split(/[:@]/, 1);
  if (!REF_RE.test(r) || (!hasRegistry && name !== name!.toLowerCase())) {
    throw new TsswarmError('INVALID_ARGUMENT', `image reference "${ref}" is not valid: use [registry/]name[:tag][@sha256:digest] with a lowercase name`);
  }
  if (r.includes('@')) return r;
  const slash = r.lastIndexOf('/');
  return r.lastIndexOf(':') > slash ? r : `${r}:latest`;
}

/** The fully qualified form of a reference: `busybox` → `docker.io/library/busybox:latest`. */
export function canonicalRef(ref: string): string {
  const { registry, repo, tag } = parsePullRef(normalizeRef(ref));
  const host = registry === 'registry-1.docker.io' ? 'docker.io' : registry;
  return `${host}/${repo}${tag.startsWith('sha256:') ? '@' : ':'}${tag}`;
}

/** Splits a reference into registry, repository and tag/digest for a pull. */
export function parsePullRef(ref: string): { registry: string; repo: string; tag: string } {
  const r = ref.trim().replace(DOCKER_HUB, '');
  const first = r.split('/')[0]!;
  const hasRegistry = r.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = hasRegistry ? first : 'registry-1.docker.io';
  let rest = hasRegistry ? r.slice(first.length + 1) : r;
  if (!hasRegistry && !rest.includes('/')) rest = `library/${rest}`;
  const at = rest.indexOf('@');
  if (at >= 0) return { registry, repo: rest.slice(0, at), tag: rest.slice(at + 1) };
  const colon = rest.lastIndexOf(':');
  return colon > rest.lastIndexOf('/') ? { registry, repo: rest.slice(0, colon), tag: rest.slice(colon + 1) } : { registry, repo: rest, tag: 'latest' };
}

export class ImageStore {
  private images = new Map<string, ImageRecord>();
  private readonly blobs: string;
  private readonly layersDir: string;
  private readonly index: string;
  /** Image ids containers use (remove refuses them without force). */
  inUse: () => Set<string> = () => new Set();

  constructor(
    private readonly root: string,
    private readonly log: pino.Logger,
  ) {
    this.blobs = join(root, 'blobs', 'sha256');
    this.layersDir = join(root, 'layers');
    this.index = join(root, 'images.json');
  }

  init(): void {
    mkdirSync(this.blobs, { recursive: true });
    mkdirSync(this.layersDir, { recursive: true });
    if (existsSync(this.index)) {
      const list = JSON.parse(readFileSync(this.index, 'utf8')) as ImageRecord[];
      this.images = new Map(list.map((i) => [i.id, i]));
    }
    // A layer unpacked halfway (a crash) never has its final name: drop the scratch dirs.
    for (const d of readdirSync(this.layersDir)) if (d.startsWith('.tmp-')) rmSync(join(this.layersDir, d), { recursive: true, force: true });
  }

  private save(): void {
    const tmp = `${this.index}.tmp`;
    writeFileSync(tmp, JSON.stringify([...this.images.values()]));
    renameSync(tmp, this.index);
  }

  private summary(i: ImageRecord): ImageSummary {
    return { references: [...i.references], id: i.id, size: i.size, createdAt: i.createdAt };
  }

  list(): ImageSummary[] {
    return [...this.images.values()].map((i) => this.summary(i));
  }

  private find(ref: string): ImageRecord | undefined {
    if (this.images.has(ref)) return this.images.get(ref);
    let n: string;
    try {
      n = normalizeRef(ref);
    } catch {
      return undefined;
    }
    for (const i of this.images.values()) if (i.references.includes(n)) return i;
    const hex = hexOf(ref);
    if (/^[0-9a-f]{6,64}$/.test(hex)) {
      const hits = [...this.images.values()].filter((i) => hexOf(i.id).startsWith(hex));
      if (hits.length === 1) return hits[0];
    }
    return undefined;
  }

  resolve(ref: string): ResolvedImage | undefined {
    const i = this.find(ref);
    if (!i) return undefined;
    const hc = i.config.Healthcheck;
    return {
      id: i.id,
      references: i.references,
      layers: i.diffIds.map((d) => join(this.layersDir, hexOf(d))),
      entrypoint: i.config.Entrypoint ?? [],
      cmd: i.config.Cmd ?? [],
      env: i.config.Env ?? [],
      workdir: i.config.WorkingDir ?? '',
      user: i.config.User ?? '',
      healthcheck: hc?.Test?.length
        ? { test: hc.Test, intervalMs: (hc.Interval ?? 0) / 1e6, timeoutMs: (hc.Timeout ?? 0) / 1e6, retries: hc.Retries ?? 0, startPeriodMs: (hc.StartPeriod ?? 0) / 1e6 }
        : undefined,
    };
  }

  /**
   * Loads an OCI image layout (directory or tar) or a `docker save` tar; layers
   * gzip-compressed or plain. Names come from the archive (OCI
   * `org.opencontainers.image.ref.name`, docker `RepoTags`); `tag`, when given,
   * is added to the first image (or names it when the archive has no name).
   */
  async load(path: string, tag?: string): Promise<ImageSummary[]> {
    if (!existsSync(path)) throw new TsswarmError('NOT_FOUND', `image archive ${path} does not exist (give a path on this node's host)`);
    let files: ArchiveFiles;
    if (statSync(path).isDirectory()) files = (name) => {
      try {
        return readFileSync(join(path, name));
      } catch {
        return undefined;
      }
    };
    else {
      let raw = readFileSync(path);
      if (raw[0] === 0x1f && raw[1] === 0x8b) raw = gunzipSync(raw);
      try {
        files = archiveFiles(raw);
      } catch (e) {
        throw new TsswarmError('INVALID_ARGUMENT', `${path} is not a tar archive: ${(e as Error).message}`);
      }
    }
    let out: ImageSummary[];
    if (files('oci-layout') && files('index.json')) out = await this.loadOci(files, path);
    else if (files('manifest.json')) out = await this.loadDocker(files, path);
    else throw new TsswarmError('INVALID_ARGUMENT', `${path} is neither an OCI image layout (index.json, oci-layout) nor a \`docker save\` archive (manifest.json)`);
    if (tag && out[0]) {
      this.tag(out[0].id, tag);
      out[0] = this.summary(this.images.get(out[0].id)!);
    }
    return out;
  }

  private async loadOci(files: ArchiveFiles, path: string): Promise<ImageSummary[]> {
    const blob = (d: string): Buffer => {
      const b = files(`blobs/sha256/${hexOf(d)}`);
      if (!b) throw new TsswarmError('INVALID_ARGUMENT', `${path}: blob ${d} is missing from the OCI layout`);
      return b;
    };
    const index = JSON.parse(files('index.json')!.toString()) as { manifests: { digest: string; mediaType?: string; annotations?: Record<string, string> }[] };
    const out: ImageSummary[] = [];
    for (const m of index.manifests) {
      let manifest = JSON.parse(blob(m.digest).toString()) as Manifest;
      if (manifest.manifests) manifest = JSON.parse(blob(pickPlatform(manifest.manifests).digest).toString()) as Manifest;
      if (!manifest.config || !manifest.layers) throw new TsswarmError('INVALID_ARGUMENT', `${path}: manifest ${m.digest} has no config or layers`);
      // The annotation is a full reference (docker, skopeo, buildah) or, per the OCI spec, only a tag.
      const ref = m.annotations?.['org.opencontainers.image.ref.name'] ?? m.annotations?.['io.containerd.image.name'];
      const name = ref && /^[\w][\w.-]*$/.test(ref) ? undefined : ref;
      out.push(await this.importImage(blob(manifest.config.digest), manifest.layers.map((l) => () => blob(l.digest)), name));
    }
    return out;
  }

  private async loadDocker(files: ArchiveFiles, path: string): Promise<ImageSummary[]> {
    const need = (name: string): Buffer => {
      const b = files(name);
      if (!b) throw new TsswarmError('INVALID_ARGUMENT', `${path}: ${name}, listed in manifest.json, is missing`);
      return b;
    };
    const manifest = JSON.parse(files('manifest.json')!.toString()) as { Config: string; RepoTags?: string[] | null; Layers: string[] }[];
    const out: ImageSummary[] = [];
    for (const m of manifest) {
      const refs = m.RepoTags ?? [];
      const s = await this.importImage(need(m.Config), m.Layers.map((l) => () => need(l)), refs[0]);
      for (const r of refs.slice(1)) this.tag(s.id, r);
      out.push(this.summary(this.images.get(s.id)!));
    }
    return out;
  }

  private tag(id: string, ref: string): void {
    const n = normalizeRef(ref);
    for (const i of this.images.values()) i.references = i.references.filter((r) => r !== n);
    this.images.get(id)!.references.push(n);
    this.save();
  }

  /** Stores an image from its config and its layers (compressed or not), unpacking layers not yet here. */
  private async importImage(config: Buffer, layers: (() => Buffer | Promise<Buffer>)[], ref?: string): Promise<ImageSummary> {
    const id = `sha256:${sha256(config)}`;
    const cfg = JSON.parse(config.toString()) as { created?: string; config?: ImageRecord['config']; rootfs?: { diff_ids?: string[] } };
    const diffIds = cfg.rootfs?.diff_ids ?? [];
    if (diffIds.length !== layers.length) throw new TsswarmError('INVALID_ARGUMENT', `image ${id.slice(7, 19)}: its config lists ${diffIds.length} layers but the manifest has ${layers.length}`);
    writeFileSync(join(this.blobs, hexOf(id)), config);
    const layerSizes: number[] = [];
    for (let i = 0; i < layers.length; i++) layerSizes.push(await this.unpackLayer(diffIds[i]!, layers[i]!));
    const size = layerSizes.reduce((a, b) => a + b, 0);
    const rec: ImageRecord = { id, references: this.images.get(id)?.references ?? [], diffIds, layerSizes, size, createdAt: cfg.created ? Date.parse(cfg.created) || 0 : 0, config: cfg.config ?? {} };
    this.images.set(id, rec);
    if (ref) this.tag(id, ref);
    else this.save();
    this.log.info({ image: id, references: rec.references, layers: diffIds.length }, 'image stored');
    return this.summary(rec);
  }

  /** Unpacks one layer into layers/<diff id> unless it is there; returns its size (the uncompressed tar's length). */
  private async unpackLayer(diffId: string, data: () => Buffer | Promise<Buffer>): Promise<number> {
    const final = join(this.layersDir, hexOf(diffId));
    if (existsSync(final)) return this.layerSize(diffId) ?? dirSize(final);
    let raw = await data();
    if (raw[0] === 0x1f && raw[1] === 0x8b) raw = gunzipSync(raw);
    const got = `sha256:${sha256(raw)}`;
    if (got !== diffId) throw new TsswarmError('INVALID_ARGUMENT', `a layer's content (${got.slice(0, 19)}) does not match its diff id ${diffId.slice(0, 19)}: the archive is corrupt`);
    // Unpacked under a scratch name and renamed: a crash never leaves a half layer under the final name.
    const tmp = join(this.layersDir, `.tmp-${hexOf(diffId)}-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    try {
      const r = await unpackLayer(raw, tmp);
      renameSync(tmp, final);
      this.log.debug({ layer: diffId, ...r }, 'layer unpacked');
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      const msg = (e as NodeJS.ErrnoException).code === 'ENOENT' && /setfattr|mknod/.test(String(e)) ? `${(e as Error).message} (opaque directories need setfattr: apt-get install attr)` : (e as Error).message;
      throw new TsswarmError('INTERNAL', `unpacking layer ${diffId.slice(0, 19)} failed: ${msg}`);
    }
    return raw.length;
  }

  private layerSize(diffId: string): number | undefined {
    for (const i of this.images.values()) {
      const k = i.diffIds.indexOf(diffId);
      if (k >= 0 && i.layerSizes?.[k] !== undefined) return i.layerSizes[k];
    }
    return undefined;
  }

  async remove(ref: string, force = false): Promise<string[]> {
    const i = this.find(ref);
    if (!i) throw new TsswarmError('NOT_FOUND', `no such image on this node: ${ref}`);
    const n = (() => {
      try {
        return normalizeRef(ref);
      } catch {
        return '';
      }
    })();
    // Removing one of several names only untags it, as docker does.
    if (i.references.length > 1 && i.references.includes(n)) {
      i.references = i.references.filter((r) => r !== n);
      this.save();
      return [n];
    }
    if (!force && this.inUse().has(i.id)) throw new TsswarmError('FAILED_PRECONDITION', `image ${ref} is used by a container on this node: remove the service first, or use --force`);
    this.images.delete(i.id);
    this.save();
    rmSync(join(this.blobs, hexOf(i.id)), { force: true });
    const used = new Set([...this.images.values()].flatMap((x) => x.diffIds));
    for (const d of i.diffIds) if (!used.has(d)) rmSync(join(this.layersDir, hexOf(d)), { recursive: true, force: true });
    return [...i.references, i.id];
  }

  /** Pulls from an OCI distribution (v2) registry: http for localhost or `insecure`, else https. */
  async pull(reference: string, o: { insecure?: boolean } = {}): Promise<ImageSummary[]> {
    const { registry, repo, tag } = parsePullRef(reference);
    const local = /^(localhost|127\.0\.0\.1)(:\d+)?$/.test(registry);
    const base = `${o.insecure || local ? 'http' : 'https'}://${registry}/v2/${repo}`;
    let token = '';
    const get = async (url: string, accept?: string): Promise<Response> => {
      const headers: Record<string, string> = {};
      if (accept) headers.accept = accept;
      if (token) headers.authorization = `Bearer ${token}`;
      let r = await fetch(url, { headers });
      if (r.status === 401 && !token) {
        const ch = r.headers.get('www-authenticate') ?? '';
        const realm = /realm="([^"]+)"/.exec(ch)?.[1];
        if (realm) {
          const q = new URLSearchParams();
          const service = /service="([^"]+)"/.exec(ch)?.[1];
          if (service) q.set('service', service);
          q.set('scope', `repository:${repo}:pull`);
          const t = (await (await fetch(`${realm}?${q}`)).json()) as { token?: string; access_token?: string };
          token = t.token ?? t.access_token ?? '';
          headers.authorization = `Bearer ${token}`;
          r = await fetch(url, { headers });
        }
      }
      if (!r.ok) throw new TsswarmError(r.status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE', `pulling ${reference}: ${url} answered ${r.status} ${r.statusText}`);
      return r;
    };
    const accept = [
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.v2+json',
    ].join(', ');
    let m = (await (await get(`${base}/manifests/${tag}`, accept)).json()) as Manifest;
    if (m.manifests) m = (await (await get(`${base}/manifests/${pickPlatform(m.manifests).digest}`, accept)).json()) as Manifest;
    if (!m.config || !m.layers) throw new TsswarmError('UNAVAILABLE', `pulling ${reference}: the registry's manifest has no config or layers (schema 1 manifests are not supported)`);
    const blob = async (digest: string): Promise<Buffer> => {
      const b = Buffer.from(await (await get(`${base}/blobs/${digest}`)).arrayBuffer());
      if (`sha256:${sha256(b)}` !== digest) throw new TsswarmError('UNAVAILABLE', `pulling ${reference}: blob ${digest.slice(0, 19)} arrived corrupt`);
      return b;
    };
    const config = await blob(m.config.digest);
    const ref = tag.startsWith('sha256:') ? undefined : reference;
    this.log.info({ reference, layers: m.layers.length }, 'image pulled');
    return [await this.importImage(config, m.layers.map((l) => () => blob(l.digest)), ref)];
  }
}

type ArchiveFiles = (name: string) => Buffer | undefined;

interface Manifest {
  manifests?: { digest: string; platform?: { architecture: string; os: string } }[];
  config?: { digest: string };
  layers?: { digest: string; mediaType?: string }[];
}

function pickPlatform<T extends { platform?: { os: string; architecture: string } }>(list: T[]): T {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch;
  const hit = list.find((x) => x.platform?.os === 'linux' && x.platform.architecture === arch) ?? list.find((x) => x.platform?.os === 'linux') ?? list[0];
  if (!hit) throw new TsswarmError('INVALID_ARGUMENT', 'the image index lists no manifests');
  return hit;
}

/** A tar archive's regular files by name, following symlinks (`docker save` links repeated layers). */
function archiveFiles(raw: Buffer): ArchiveFiles {
  const files = new Map<string, Buffer>();
  const links = new Map<string, string>();
  for (const e of readTar(raw)) {
    if (e.type === 'file') files.set(e.name, e.data);
    else if (e.type === 'hardlink') links.set(e.name, e.linkname);
    else if (e.type === 'symlink') links.set(e.name, cleanName(posix.normalize(e.linkname.startsWith('/') ? e.linkname : posix.join(posix.dirname(e.name), e.linkname))));
  }
  return (name) => {
    let n = cleanName(name);
    for (let hops = 0; hops < 8 && !files.has(n) && links.has(n); hops++) n = links.get(n)!;
    return files.get(n);
  };
}

/** Bytes under a directory (for a layer unpacked by an older store that kept no size). */
function dirSize(dir: string): number {
  let total = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) total += statSync(p).size;
    }
  };
  try {
    walk(dir);
  } catch {
    /* gone meanwhile */
  }
  return total;
}
