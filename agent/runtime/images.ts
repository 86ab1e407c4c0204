import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, posix } from 'node:path';
import type pino from 'pino';
import { TsswarmError } from '../../lib/errors.js';
import type { ImageSummary } from '../../proto/gen/control.js';
import type { HealthConfig } from '../../proto/gen/objects.js';
import {
  ByteBudget,
  DEFAULT_IMAGE_LIMITS,
  ImageCapError,
  type ImageLimits,
  type Json,
  asArray,
  asObject,
  asString,
  checkDigest,
  isDigest,
  maybeGunzip,
  metered,
  openRegular,
  optNumber,
  optString,
  optStrings,
  parseJson,
  randomName,
  readCapped,
  writeFileStream,
} from './blobs.js';
import { unpackLayer } from './layer.js';
import { bodyOf, DEFAULT_CERTS_DIR, type RegistryAuth, RegistrySession, registryIsInsecure, registryRef, registryTls } from './registry.js';
import { TarError, cleanName, readTarStream } from './tar.js';

export { DEFAULT_IMAGE_LIMITS, type ImageLimits } from './blobs.js';
export { tokenRealmUrl } from './registry.js';

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
  /** The image's STOPSIGNAL (`SIGQUIT`, `9`), when it has one. */
  stopSignal?: string;
  /** The image's VOLUME paths (absolute, normalized): each an anonymous volume per container unless a mount covers it. */
  volumes?: string[];
}

interface ImageRecord {
  id: string;
  references: string[];
  /** `name@sha256:…` of the manifest (or index) a registry or an OCI layout named this image by: docker's RepoDigests. */
  digests?: string[];
  diffIds: string[];
  /** Uncompressed size of each layer, as diffIds. */
  layerSizes?: number[];
  size: number;
  createdAt: number;
  config: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    WorkingDir?: string;
    User?: string;
    StopSignal?: string;
    Volumes?: string[];
    Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number; StartInterval?: number };
  };
}

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
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `image reference "${ref}" is not valid: use [registry/]name[:tag][@sha256:digest] with a lowercase name`,
    );
  }
  if (r.includes('@')) return r;
  const slash = r.lastIndexOf('/');
  return r.lastIndexOf(':') > slash ? r : `${r}:latest`;
}

/** The fully qualified form of a reference: `busybox` → `docker.io/library/busybox:latest`. */
export function canonicalRef(ref: string): string {
  const { registry, repo, tag, digest } = registryRef(normalizeRef(ref));
  const host = registry === 'registry-1.docker.io' ? 'docker.io' : registry;
  return `${host}/${repo}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
}

/**
 * Splits a reference into registry, repository and what to fetch: the digest
 * when there is one (a tag beside it is only a label, as docker reads
 * `name:tag@sha256:…`), else the tag.
 */
export function parsePullRef(ref: string): { registry: string; repo: string; tag: string } {
  const { registry, repo, tag, digest } = registryRef(ref);
  return { registry, repo, tag: digest || tag };
}

/** The repository part of a reference, in the store's familiar form: `localhost:5000/x:v1@sha256:…` → `localhost:5000/x`. */
export function repoOf(ref: string): string {
  const n = normalizeRef(ref);
  const at = n.indexOf('@');
  const r = at >= 0 ? n.slice(0, at) : n;
  const colon = r.lastIndexOf(':');
  return colon > r.lastIndexOf('/') ? r.slice(0, colon) : r;
}

/** The key a digest reference is stored under: `repo@sha256:…` (a tag beside the digest dropped); undefined without a digest. */
export function repoDigestOf(ref: string): string | undefined {
  const n = normalizeRef(ref);
  const at = n.indexOf('@');
  return at < 0 ? undefined : `${repoOf(n)}${n.slice(at)}`;
}

/** A file of a load's source (an OCI layout or docker save, as a directory or staged from a tar). */
interface Source {
  /** The path the operator gave, for messages. */
  label: string;
  /** The regular file `name` names inside the source, or undefined when there is none. */
  file(name: string, field: string): string | undefined;
}

/** What one load or pull created, so that a failure can take it all back. */
interface Op {
  /** Staged archive members and downloaded blobs; removed when the operation ends. */
  scratch: string;
  budget: ByteBudget;
  /** sha256 hex of files whose digest is already known (staged while hashing). */
  hexes: Map<string, string>;
  newLayers: string[];
  newBlobs: string[];
  /** Untrusted directories moved away from a layer's name: [aside, final]. */
  asides: [string, string][];
}

/** Bytes a layer takes, as recorded by the store once it verified and renamed it. */
interface LayerMark {
  diffId: string;
  size: number;
}

interface LayerSource {
  /** Names the layer in messages: `manifest.json[0].Layers[1]`. */
  field: string;
  /** The compressed (or plain) layer as a file; called only when the layer must be unpacked. */
  open: () => Promise<string>;
}

export class ImageStore {
  private images = new Map<string, ImageRecord>();
  private readonly blobs: string;
  private readonly layersDir: string;
  /** One mark per layer this store unpacked and verified: only those are trusted and ever removed. */
  private readonly marks: string;
  private readonly staging: string;
  private readonly index: string;
  private readonly limits: ImageLimits;
  /** Loads, pulls and removals run one at a time: each commits or rolls back as a whole. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Image ids containers use (remove refuses them without force). */
  inUse: () => Set<string> = () => new Set();
  /** Registries pulled from over plain http besides loopback (the daemon's insecureRegistries). */
  insecureRegistries: readonly string[] = [];
  /** Per-registry CAs and client certificates, `<certsDir>/<host[:port]>/` (the daemon's certsDir). */
  certsDir: string = DEFAULT_CERTS_DIR;

  constructor(
    readonly root: string,
    private readonly log: pino.Logger,
    limits: Partial<ImageLimits> = {},
  ) {
    this.blobs = join(root, 'blobs', 'sha256');
    this.layersDir = join(root, 'layers');
    this.marks = join(root, 'layers.marks');
    this.staging = join(root, 'staging');
    this.index = join(root, 'images.json');
    this.limits = { ...DEFAULT_IMAGE_LIMITS, ...limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isSafeInteger(v) || v <= 0)
        throw new TsswarmError('INVALID_ARGUMENT', `image store limits.${k} must be a whole number > 0 (got ${String(v)})`);
    }
  }

  init(): void {
    for (const d of [this.blobs, this.layersDir, this.marks, this.staging]) mkdirSync(d, { recursive: true });
    // Scratch from a crash: staged files, half-unpacked layers, half-written marks.
    for (const d of readdirSync(this.staging)) rmSync(join(this.staging, d), { recursive: true, force: true });
    for (const d of readdirSync(this.layersDir))
      if (d.startsWith('.tmp-')) rmSync(join(this.layersDir, d), { recursive: true, force: true });
    for (const m of readdirSync(this.marks)) {
      if (!/^[0-9a-f]{64}$/.test(m) || !this.isLayerDir(m)) rmSync(join(this.marks, m), { force: true });
    }
    if (!existsSync(this.index)) return;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(this.index, 'utf8'));
    } catch (e) {
      throw new TsswarmError(
        'INTERNAL',
        `${this.index} is not valid JSON (${(e as Error).message}): move it away to start with an empty image store`,
      );
    }
    // Version 1 was a bare list, written before layers were marked: its layers are adopted once.
    const legacy = Array.isArray(raw);
    const list: unknown[] = legacy
      ? (raw as unknown[])
      : Array.isArray((raw as { images?: unknown }).images)
        ? (raw as { images: unknown[] }).images
        : [];
    this.images = new Map();
    for (const r of list) {
      const rec = validRecord(r);
      if (!rec) {
        this.log.warn({ record: JSON.stringify(r).slice(0, 200) }, 'dropping a malformed image record from images.json');
        continue;
      }
      this.images.set(rec.id, rec);
      if (legacy)
        rec.diffIds.forEach((d, k) => {
          const hex = d.slice(7);
          if (this.isLayerDir(hex) && !existsSync(join(this.marks, hex)))
            this.writeMark(hex, { diffId: d, size: rec.layerSizes?.[k] ?? dirSize(join(this.layersDir, hex)) });
        });
    }
    if (legacy || this.images.size !== list.length) this.save();
  }

  private save(): void {
    const tmp = `${this.index}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: 2, images: [...this.images.values()] }));
    renameSync(tmp, this.index);
  }

  private summary(i: ImageRecord): ImageSummary {
    return { references: [...i.references], id: i.id, size: i.size, createdAt: i.createdAt, repoDigests: [...(i.digests ?? [])] };
  }

  list(): ImageSummary[] {
    return [...this.images.values()].map((i) => this.summary(i));
  }

  private find(ref: string, images = this.images): ImageRecord | undefined {
    if (images.has(ref)) return images.get(ref);
    let n: string;
    try {
      n = normalizeRef(ref);
    } catch {
      return undefined;
    }
    const d = n.includes('@') ? repoDigestOf(n) : undefined;
    // A digest names content: the image whose repo digests hold it, whatever tag sits beside the digest.
    if (d) {
      for (const i of images.values()) if (i.digests?.includes(d)) return i;
      return undefined;
    }
    for (const i of images.values()) if (i.references.includes(n)) return i;
    const hex = hexOf(ref);
    if (/^[0-9a-f]{6,64}$/.test(hex)) {
      const hits = [...images.values()].filter((i) => hexOf(i.id).startsWith(hex));
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
        ? {
            test: hc.Test,
            intervalMs: (hc.Interval ?? 0) / 1e6,
            timeoutMs: (hc.Timeout ?? 0) / 1e6,
            retries: hc.Retries ?? 0,
            startPeriodMs: (hc.StartPeriod ?? 0) / 1e6,
            startIntervalMs: (hc.StartInterval ?? 0) / 1e6,
          }
        : undefined,
      ...(i.config.StopSignal ? { stopSignal: i.config.StopSignal } : {}),
      ...(i.config.Volumes?.length ? { volumes: i.config.Volumes } : {}),
    };
  }

  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Runs one load or pull: `f` stages, verifies and unpacks, returning the
   * records to add; they are committed (images.json written once) only when
   * all of it worked. On any failure every file the operation made is removed.
   */
  private transaction(f: (op: Op, next: Map<string, ImageRecord>) => Promise<ImageSummary[]>): Promise<ImageSummary[]> {
    return this.exclusive(async () => {
      const op: Op = {
        scratch: join(this.staging, randomName()),
        budget: new ByteBudget(this.limits.maxLoadBytes, 'maxLoadBytes', 'the bytes this load or pull reads'),
        hexes: new Map(),
        newLayers: [],
        newBlobs: [],
        asides: [],
      };
      mkdirSync(op.scratch);
      const next = new Map([...this.images].map(([k, v]) => [k, { ...v, references: [...v.references] }]));
      try {
        const out = await f(op, next);
        const before = this.images;
        this.images = next;
        try {
          this.save();
        } catch (e) {
          this.images = before;
          throw e;
        }
        for (const [aside] of op.asides)
          this.log.warn({ moved: aside }, 'a layer directory this store did not make was in the way and was moved aside');
        return out;
      } catch (e) {
        this.rollback(op);
        throw e;
      } finally {
        rmSync(op.scratch, { recursive: true, force: true });
      }
    });
  }

  private rollback(op: Op): void {
    for (const hex of op.newLayers) {
      rmSync(join(this.marks, hex), { force: true });
      rmSync(join(this.layersDir, hex), { recursive: true, force: true });
    }
    for (const [aside, final] of op.asides) if (!existsSync(final)) renameSync(aside, final);
    for (const b of op.newBlobs) rmSync(b, { force: true });
  }

  /**
   * Loads an OCI image layout (directory or tar) or a `docker save` tar or
   * directory; layers gzip-compressed or plain. Names come from the archive
   * (OCI `org.opencontainers.image.ref.name`, docker `RepoTags`); `tag`, when
   * given, is added to the first image (or names it when the archive has no name).
   */
  async load(path: string, tag?: string): Promise<ImageSummary[]> {
    if (!existsSync(path)) throw new TsswarmError('NOT_FOUND', `image archive ${path} does not exist (give a path on this node's host)`);
    if (tag !== undefined) normalizeRef(tag);
    return this.transaction(async (op, next) => {
      const src = statSync(path).isDirectory() ? dirSource(path) : await this.stageArchive(op, path);
      let out: ImageSummary[];
      if (src.file('oci-layout', 'oci-layout') && src.file('index.json', 'index.json')) out = await this.loadOci(op, next, src);
      else if (src.file('manifest.json', 'manifest.json')) out = await this.loadDocker(op, next, src);
      else
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `${path} is neither an OCI image layout (index.json, oci-layout) nor a \`docker save\` archive (manifest.json)`,
        );
      if (tag && out[0]) {
        tagIn(next, out[0].id, tag);
        out[0] = this.summary(next.get(out[0].id)!);
      }
      return out;
    });
  }

  /** Streams a tar (plain or gzip) into the operation's scratch directory: member names are map keys, never paths. */
  private async stageArchive(op: Op, path: string): Promise<Source> {
    const { stream } = await openRegular(path, 'the image archive');
    const files = new Map<string, string>();
    const links = new Map<string, string>();
    const L = this.limits;
    let n = 0;
    try {
      for await (const e of readTarStream(maybeGunzip(stream), { maxEntries: L.maxArchiveEntries })) {
        if (++n > L.maxArchiveEntries) throw new ImageCapError('maxArchiveEntries', `the archive ${path}`, L.maxArchiveEntries);
        const name = normalName(e.name);
        if (e.type === 'file') {
          if (e.size > L.maxBlobBytes) throw new ImageCapError('maxBlobBytes', `archive member ${name} (${e.size} bytes)`, L.maxBlobBytes);
          const staged = join(op.scratch, `m${n}`);
          const { hex } = await writeFileStream(
            metered(e.body, { max: L.maxBlobBytes, cap: 'maxBlobBytes', what: `archive member ${name}`, budget: op.budget }),
            staged,
          );
          files.set(name, staged);
          op.hexes.set(staged, hex);
        } else if (e.type === 'hardlink') links.set(name, normalName(e.linkname));
        else if (e.type === 'symlink')
          links.set(name, normalName(e.linkname.startsWith('/') ? e.linkname : posix.join(posix.dirname(name), e.linkname)));
      }
    } catch (e) {
      stream.destroy();
      if (e instanceof TarError) {
        const hint = /more than \d+ entries/.test(e.message)
          ? ` (limits.maxArchiveEntries is ${L.maxArchiveEntries}, a constant of the agent's ImageStore)`
          : '';
        throw new TsswarmError('INVALID_ARGUMENT', `${path} is not a valid tar archive: ${e.message}${hint}`);
      }
      if (e instanceof TsswarmError) throw e;
      throw new TsswarmError('INVALID_ARGUMENT', `${path} is not a readable tar archive (plain or gzip): ${(e as Error).message}`);
    }
    return {
      label: path,
      file: (name) => {
        let k = normalName(name);
        // `docker save` links repeated layers; a loop is cut after a few hops.
        for (let hops = 0; hops < 8 && !files.has(k) && links.has(k); hops++) k = links.get(k)!;
        return files.get(k);
      },
    };
  }

  private async readJson(op: Op, path: string, what: string): Promise<{ value: Json; hex: string }> {
    const { stream, size } = await openRegular(path, what);
    if (size > this.limits.maxJsonBytes) {
      stream.destroy();
      throw new ImageCapError('maxJsonBytes', `${what} (${size} bytes)`, this.limits.maxJsonBytes);
    }
    const { buf, hex } = await readCapped(stream, this.limits.maxJsonBytes, what);
    op.hexes.set(path, hex);
    return { value: parseJson(buf, what), hex };
  }

  /** The sha256 hex of a source file, hashed as a stream unless staging already did. */
  private async hexOfFile(op: Op, path: string, what: string): Promise<string> {
    const known = op.hexes.get(path);
    if (known) return known;
    const { stream } = await openRegular(path, what);
    let hex = '';
    for await (const _ of metered(stream, { max: this.limits.maxBlobBytes, cap: 'maxBlobBytes', what, onDone: (h) => (hex = h) })) void _;
    op.hexes.set(path, hex);
    return hex;
  }

  /** An OCI blob by digest, its content checked against the digest. */
  private async ociBlob(op: Op, src: Source, digest: string, field: string): Promise<string> {
    const hex = checkDigest(digest, field);
    const p = src.file(`blobs/sha256/${hex}`, field);
    if (!p) throw new TsswarmError('INVALID_ARGUMENT', `${src.label}: blob ${digest} (${field}) is missing from the OCI layout`);
    if ((await this.hexOfFile(op, p, `blob ${digest.slice(0, 19)}`)) !== hex)
      throw new TsswarmError(
        'INVALID_ARGUMENT',
        `${src.label}: blob ${digest.slice(0, 19)} (${field}) does not match its digest: the layout is corrupt`,
      );
    return p;
  }

  private async loadOci(op: Op, next: Map<string, ImageRecord>, src: Source): Promise<ImageSummary[]> {
    const index = asObject((await this.readJson(op, src.file('index.json', 'index.json')!, 'index.json')).value, 'index.json');
    const entries = asArray(index.manifests, 'index.json manifests');
    if (entries.length > this.limits.maxLayers)
      throw new ImageCapError('maxLayers', `index.json manifests (${entries.length} images)`, this.limits.maxLayers);
    const out: ImageSummary[] = [];
    for (const [k, entry] of entries.entries()) {
      const field = `index.json manifests[${k}]`;
      const e = asObject(entry, field);
      const digest = asString(e.digest, `${field}.digest`);
      let mfield = `manifest ${digest.slice(0, 19)}`;
      let m = parseManifest(
        (await this.readJson(op, await this.ociBlob(op, src, digest, `${field}.digest`), mfield)).value,
        mfield,
        this.limits,
      );
      if (m.kind === 'index') {
        const p = pickPlatform(m.manifests, mfield);
        mfield = `manifest ${p.digest.slice(0, 19)}`;
        m = parseManifest((await this.readJson(op, await this.ociBlob(op, src, p.digest, p.field), mfield)).value, mfield, this.limits);
        if (m.kind === 'index')
          throw new TsswarmError('INVALID_ARGUMENT', `${src.label}: ${mfield} is an index inside an index: only one level is supported`);
      }
      const ann = e.annotations === undefined ? {} : asObject(e.annotations, `${field}.annotations`);
      // The annotation is a full reference (docker, skopeo, buildah) or, per the OCI spec, only a tag.
      const ref =
        optString(ann['org.opencontainers.image.ref.name'], `${field}.annotations`) ??
        optString(ann['io.containerd.image.name'], `${field}.annotations`);
      const name = ref && /^[\w][\w.-]*$/.test(ref) ? undefined : ref;
      const man = m;
      const config = await this.ociBlob(op, src, man.config, `${mfield}.config.digest`);
      const layers = man.layers.map(
        (d, j): LayerSource => ({ field: `${mfield}.layers[${j}]`, open: () => this.ociBlob(op, src, d, `${mfield}.layers[${j}].digest`) }),
      );
      const s = await this.importImage(op, next, config, layers, name);
      // The layout's own manifest digest: what a registry holding these bytes answers, so `name@digest` runs it without a pull.
      if (name) digestIn(next, s.id, `${repoOf(name)}@${digest}`);
      out.push(this.summary(next.get(s.id)!));
    }
    return out;
  }

  private async loadDocker(op: Op, next: Map<string, ImageRecord>, src: Source): Promise<ImageSummary[]> {
    const need = async (name: string, field: string): Promise<string> => {
      const p = src.file(relPath(name, field), field);
      if (!p) throw new TsswarmError('INVALID_ARGUMENT', `${src.label}: ${name}, listed in ${field}, is missing`);
      return p;
    };
    const list = asArray((await this.readJson(op, src.file('manifest.json', 'manifest.json')!, 'manifest.json')).value, 'manifest.json');
    if (list.length > this.limits.maxLayers)
      throw new ImageCapError('maxLayers', `manifest.json (${list.length} images)`, this.limits.maxLayers);
    const out: ImageSummary[] = [];
    for (const [k, item] of list.entries()) {
      const field = `manifest.json[${k}]`;
      const m = asObject(item, field);
      const refs = optStrings(m.RepoTags, `${field}.RepoTags`) ?? [];
      const layerNames = asArray(m.Layers, `${field}.Layers`).map((l, j) =>
        relPath(asString(l, `${field}.Layers[${j}]`), `${field}.Layers[${j}]`),
      );
      if (layerNames.length > this.limits.maxLayers)
        throw new ImageCapError('maxLayers', `${field}.Layers (${layerNames.length} layers)`, this.limits.maxLayers);
      const config = await need(asString(m.Config, `${field}.Config`), `${field}.Config`);
      const layers = layerNames.map(
        (l, j): LayerSource => ({ field: `${field}.Layers[${j}]`, open: () => need(l, `${field}.Layers[${j}]`) }),
      );
      const s = await this.importImage(op, next, config, layers, refs[0]);
      for (const r of refs.slice(1)) tagIn(next, s.id, r);
      out.push(this.summary(next.get(s.id)!));
    }
    return out;
  }

  /** Adds an image from its config and layers to `next`, unpacking the layers not yet here. */
  private async importImage(
    op: Op,
    next: Map<string, ImageRecord>,
    configPath: string,
    layers: LayerSource[],
    ref?: string,
  ): Promise<ImageSummary> {
    const { value, hex } = await this.readJson(op, configPath, 'the image config');
    const id = `sha256:${hex}`;
    const cfg = parseConfig(value, this.limits);
    if (cfg.diffIds.length !== layers.length)
      throw new TsswarmError(
        'INVALID_ARGUMENT',
        `image ${hex.slice(0, 12)}: its config lists ${cfg.diffIds.length} layers (rootfs.diff_ids) but the manifest has ${layers.length}`,
      );
    const layerSizes: number[] = [];
    for (const [i, l] of layers.entries()) layerSizes.push(await this.ensureLayer(op, cfg.diffIds[i]!, l, `rootfs.diff_ids[${i}]`));
    const blob = join(this.blobs, hex);
    if (!existsSync(blob)) {
      const tmp = join(this.blobs, `.tmp-${randomName()}`);
      writeFileSync(tmp, readFileSync(configPath), { flag: 'wx' });
      renameSync(tmp, blob);
      op.newBlobs.push(blob);
    }
    const size = layerSizes.reduce((a, b) => a + b, 0);
    const rec: ImageRecord = {
      id,
      references: next.get(id)?.references ?? [],
      digests: next.get(id)?.digests,
      diffIds: cfg.diffIds,
      layerSizes,
      size,
      createdAt: cfg.created,
      config: cfg.config,
    };
    next.set(id, rec);
    if (ref) tagIn(next, id, ref);
    this.log.info({ image: id, references: rec.references, layers: cfg.diffIds.length }, 'image stored');
    return this.summary(rec);
  }

  /** A layer's directory and mark exist, the directory is a real one and this store wrote the mark after verifying it. */
  private trustedSize(hex: string): number | undefined {
    if (!this.isLayerDir(hex)) return undefined;
    try {
      const m = JSON.parse(readFileSync(join(this.marks, hex), 'utf8')) as LayerMark;
      return m.diffId === `sha256:${hex}` && typeof m.size === 'number' ? m.size : undefined;
    } catch {
      return undefined;
    }
  }

  private isLayerDir(hex: string): boolean {
    try {
      return lstatSync(join(this.layersDir, hex)).isDirectory();
    } catch {
      return false;
    }
  }

  private writeMark(hex: string, m: LayerMark): void {
    const tmp = join(this.marks, `${hex}.tmp-${randomName()}`);
    writeFileSync(tmp, JSON.stringify(m), { flag: 'wx' });
    renameSync(tmp, join(this.marks, hex));
  }

  /**
   * Unpacks one layer unless this store already holds it: into a scratch
   * directory with a random name, its uncompressed digest checked against the
   * diff id, then renamed to layers/<hex> and marked. Returns its size (the
   * uncompressed tar's length).
   */
  private async ensureLayer(op: Op, diffId: string, l: LayerSource, field: string): Promise<number> {
    const hex = checkDigest(diffId, field);
    const have = this.trustedSize(hex);
    if (have !== undefined) return have;
    const L = this.limits;
    const tmp = join(this.layersDir, `.tmp-${randomName()}`);
    const final = join(this.layersDir, hex);
    mkdirSync(tmp, { mode: 0o755 });
    let capErr: unknown;
    try {
      const { stream } = await openRegular(await l.open(), l.field);
      const watched = async function* (src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
        try {
          yield* src;
        } catch (e) {
          capErr = e;
          throw e;
        }
      };
      const compressed = metered(stream, { max: L.maxBlobBytes, cap: 'maxBlobBytes', what: `${l.field} (as stored)` });
      const plain = metered(maybeGunzip(compressed), {
        max: L.maxLayerBytes,
        cap: 'maxLayerBytes',
        what: `${l.field} uncompressed`,
        budget: op.budget,
      });
      let r: Awaited<ReturnType<typeof unpackLayer>>;
      try {
        r = await unpackLayer(watched(plain), tmp, { maxEntries: L.maxLayerEntries, maxBytes: L.maxLayerBytes });
      } finally {
        stream.destroy();
      }
      if (r.digest !== diffId)
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `${l.field}: the layer's content is ${r.digest.slice(0, 19)}… but the image config's ${field} says ${diffId.slice(0, 19)}…: the image is corrupt or forged`,
        );
      if (existsSync(final) || isLink(final)) {
        const aside = join(this.layersDir, `.untrusted-${hex}-${randomName()}`);
        renameSync(final, aside);
        op.asides.push([aside, final]);
      }
      renameSync(tmp, final);
      op.newLayers.push(hex);
      this.writeMark(hex, { diffId, size: r.bytes });
      this.log.debug({ layer: diffId, files: r.files, skipped: r.skipped, bytes: r.bytes }, 'layer unpacked');
      return r.bytes;
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      const err = capErr instanceof TsswarmError ? capErr : e;
      if (err instanceof ImageCapError || (err instanceof TsswarmError && err.message.startsWith(l.field))) throw err;
      const x = err as NodeJS.ErrnoException;
      const hint = /more than \d+ entries/.test(x.message)
        ? ` (limits.maxLayerEntries is ${L.maxLayerEntries}, a constant of the agent's ImageStore)`
        : '';
      if (err instanceof TsswarmError)
        throw new TsswarmError(err.code, `${l.field} (${diffId.slice(0, 19)}) is not a valid layer: ${err.message}${hint}`);
      if (x.syscall && !(err instanceof TarError)) {
        throw new TsswarmError('INTERNAL', `unpacking ${l.field} (${diffId.slice(0, 19)}) failed: ${x.message}`);
      }
      throw new TsswarmError('INVALID_ARGUMENT', `${l.field} (${diffId.slice(0, 19)}) is not a valid layer: ${x.message}${hint}`);
    }
  }

  async remove(ref: string, force = false): Promise<string[]> {
    return this.exclusive(async () => {
      const i = this.find(ref);
      if (!i) throw new TsswarmError('NOT_FOUND', `no such image on this node: ${ref}`);
      const n = (() => {
        try {
          return normalizeRef(ref);
        } catch {
          return '';
        }
      })();
      const d = n.includes('@') ? repoDigestOf(n) : undefined;
      const refs = [...i.references, ...(i.digests ?? [])];
      // Removing one of several names only untags it, as docker does; a tag and a digest of one
      // repository count as one name (the last tag of a repository takes its digests with it).
      if (d && i.digests?.includes(d) && refs.length > 1) {
        i.digests = i.digests.filter((x) => x !== d);
        this.save();
        return [d];
      }
      if (n && !d && i.references.includes(n) && new Set(refs.map((r) => repoOf(r))).size > 1) {
        const repo = repoOf(n);
        i.references = i.references.filter((r) => r !== n);
        const gone = i.references.some((r) => repoOf(r) === repo) ? [] : (i.digests ?? []).filter((x) => repoOf(x) === repo);
        i.digests = (i.digests ?? []).filter((x) => !gone.includes(x));
        this.save();
        return [n, ...gone];
      }
      if (n && !d && i.references.includes(n) && i.references.length > 1) {
        i.references = i.references.filter((r) => r !== n);
        this.save();
        return [n];
      }
      if (!force && this.inUse().has(i.id))
        throw new TsswarmError(
          'FAILED_PRECONDITION',
          `image ${ref} is used by a container on this node: remove the service first, or use --force`,
        );
      this.images.delete(i.id);
      this.save();
      if (isDigest(i.id)) rmSync(join(this.blobs, i.id.slice(7)), { force: true });
      const used = new Set([...this.images.values()].flatMap((x) => x.diffIds));
      for (const d of i.diffIds) if (!used.has(d)) this.removeLayer(d);
      return [...i.references, ...(i.digests ?? []), i.id];
    });
  }

  /** Removes layers/<hex> only when it is a real directory directly under layers/ that this store marked. */
  private removeLayer(diffId: string): void {
    if (!isDigest(diffId)) return;
    const hex = diffId.slice(7);
    const dir = join(this.layersDir, hex);
    if (dirname(dir) !== this.layersDir || this.trustedSize(hex) === undefined) {
      this.log.warn({ layer: diffId }, 'not removing a layer directory this store did not create');
      return;
    }
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(this.marks, hex), { force: true });
  }

  /**
   * Pulls from an OCI distribution (v2) registry: http for loopback, `insecure`, or a registry
   * in insecureRegistries, else https. A reference with a digest (`name[:tag]@sha256:…`) pulls
   * that manifest (its content checked against the digest) and is recorded as a repo digest; a
   * tag is recorded as a name, with the digest of the manifest it named.
   */
  async pull(reference: string, o: { insecure?: boolean; auth?: RegistryAuth } = {}): Promise<ImageSummary[]> {
    normalizeRef(reference);
    const pref = registryRef(reference);
    const { registry } = pref;
    if (pref.digest) checkDigest(pref.digest, `the digest in ${reference}`);
    const L = this.limits;
    const plainHttp = o.insecure || registryIsInsecure(registry, this.insecureRegistries);
    const session = new RegistrySession(pref, {
      plainHttp,
      tls: plainHttp ? undefined : registryTls(this.certsDir, registry),
      auth: o.auth,
      maxJsonBytes: L.maxJsonBytes,
      verb: `pulling ${reference}`,
    });
    const ac = new AbortController();
    const manifest = async (ref: string, what: string): Promise<{ m: ParsedManifest; digest: string }> => {
      const got = await session.manifest(ref, what, ac.signal);
      return { m: parseManifest(got.doc, what, L), digest: got.digest };
    };
    /** Streams a blob to a staged file while hashing it: the digest and Content-Length must both hold. */
    const blob = async (op: Op, digest: string, field: string): Promise<string> => {
      const hex = checkDigest(digest, field);
      const r = await session.get(`${session.base}/blobs/${digest}`, undefined, ac.signal);
      const what = `blob ${digest.slice(0, 19)} from ${registry}`;
      const lenHeader = r.headers.get('content-encoding') ? null : r.headers.get('content-length');
      const len = lenHeader === null ? undefined : Number(lenHeader);
      if (len !== undefined && len > L.maxBlobBytes) {
        await r.body?.cancel();
        throw new ImageCapError('maxBlobBytes', `${what} (Content-Length ${len})`, L.maxBlobBytes);
      }
      const staged = join(op.scratch, randomName());
      const got = await writeFileStream(metered(bodyOf(r), { max: L.maxBlobBytes, cap: 'maxBlobBytes', what, budget: op.budget }), staged);
      if (len !== undefined && got.bytes !== len)
        throw new TsswarmError('UNAVAILABLE', `pulling ${reference}: ${what} was ${got.bytes} bytes but its Content-Length said ${len}`);
      if (got.hex !== hex)
        throw new TsswarmError('UNAVAILABLE', `pulling ${reference}: ${what} arrived corrupt (its content does not match its digest)`);
      op.hexes.set(staged, got.hex);
      return staged;
    };
    try {
      const top = await manifest(pref.digest || pref.tag, `the manifest of ${reference}`);
      let m = top.m;
      if (m.kind === 'index') {
        const p = pickPlatform(m.manifests, `the index of ${reference}`);
        m = (await manifest(p.digest, `manifest ${p.digest.slice(0, 19)}`)).m;
        if (m.kind === 'index') throw new TsswarmError('UNAVAILABLE', `pulling ${reference}: the registry sent an index inside an index`);
      }
      const man = m;
      // A tag names the image only when no digest pinned it (docker keeps `name:tag@digest` as the digest).
      const ref = pref.digest ? undefined : reference;
      const repoDigest = `${repoOf(reference)}@${top.digest}`;
      const out = await this.transaction(async (op, next) => {
        const config = await blob(op, man.config, 'the manifest config.digest');
        const layers = man.layers.map(
          (d, j): LayerSource => ({
            field: `layer ${j} (${d.slice(0, 19)}) of ${reference}`,
            open: async () => blob(op, d, `the manifest layers[${j}].digest`),
          }),
        );
        const s = await this.importImage(op, next, config, layers, ref);
        digestIn(next, s.id, repoDigest);
        return [this.summary(next.get(s.id)!)];
      });
      this.log.info({ reference, digest: top.digest, layers: man.layers.length }, 'image pulled');
      return out;
    } catch (e) {
      ac.abort();
      if (e instanceof TsswarmError) throw e;
      throw new TsswarmError('UNAVAILABLE', `pulling ${reference}: ${(e as Error).message}`);
    }
  }
}

type ParsedManifest =
  | { kind: 'index'; manifests: { digest: string; field: string; os?: string; architecture?: string }[] }
  | { kind: 'image'; config: string; layers: string[] };

/** An OCI/docker image manifest or index, with every digest checked for form. */
function parseManifest(v: Json, what: string, limits: ImageLimits): ParsedManifest {
  const m = asObject(v, what);
  if (m.manifests !== undefined) {
    const list = asArray(m.manifests, `${what} manifests`);
    if (list.length > 1024) throw new TsswarmError('INVALID_ARGUMENT', `${what} lists ${list.length} manifests: at most 1024 are read`);
    return {
      kind: 'index',
      manifests: list.map((x, k) => {
        const field = `${what} manifests[${k}]`;
        const e = asObject(x, field);
        checkDigest(e.digest, `${field}.digest`);
        const p = e.platform === undefined ? {} : asObject(e.platform, `${field}.platform`);
        return {
          digest: e.digest as string,
          field: `${field}.digest`,
          os: optString(p.os, `${field}.platform.os`),
          architecture: optString(p.architecture, `${field}.platform.architecture`),
        };
      }),
    };
  }
  if (m.config === undefined || m.layers === undefined)
    throw new TsswarmError('INVALID_ARGUMENT', `${what} has no config or layers (schema 1 manifests are not supported)`);
  const config = asObject(m.config, `${what} config`);
  checkDigest(config.digest, `${what} config.digest`);
  const layers = asArray(m.layers, `${what} layers`);
  if (layers.length > limits.maxLayers) throw new ImageCapError('maxLayers', `${what} (${layers.length} layers)`, limits.maxLayers);
  return {
    kind: 'image',
    config: config.digest as string,
    layers: layers.map((l, j) => {
      const o = asObject(l, `${what} layers[${j}]`);
      checkDigest(o.digest, `${what} layers[${j}].digest`);
      return o.digest as string;
    }),
  };
}

/** The parts of an image config the store keeps, each checked for type. */
function parseConfig(v: Json, limits: ImageLimits): { diffIds: string[]; created: number; config: ImageRecord['config'] } {
  const c = asObject(v, 'the image config');
  const rootfs = asObject(c.rootfs ?? {}, 'the image config rootfs');
  const ids = rootfs.diff_ids === undefined || rootfs.diff_ids === null ? [] : asArray(rootfs.diff_ids, 'rootfs.diff_ids');
  if (ids.length > limits.maxLayers)
    throw new ImageCapError('maxLayers', `the image config's rootfs.diff_ids (${ids.length} layers)`, limits.maxLayers);
  const diffIds = ids.map((d, i) => {
    checkDigest(d, `the image config's rootfs.diff_ids[${i}]`);
    return d as string;
  });
  const created = optString(c.created, 'the image config created');
  const x = c.config === undefined || c.config === null ? {} : asObject(c.config, 'the image config config');
  const config: ImageRecord['config'] = {};
  const put = <K extends keyof ImageRecord['config']>(k: K, val: ImageRecord['config'][K] | undefined): void => {
    if (val !== undefined) config[k] = val;
  };
  put('Entrypoint', optStrings(x.Entrypoint, 'config.Entrypoint'));
  put('Cmd', optStrings(x.Cmd, 'config.Cmd'));
  put('Env', optStrings(x.Env, 'config.Env'));
  put('WorkingDir', optString(x.WorkingDir, 'config.WorkingDir'));
  put('User', optString(x.User, 'config.User'));
  const stop = optString(x.StopSignal, 'config.StopSignal');
  // The image's author wrote it, and it reaches runc's command line: a signal name or number only.
  if (stop && !/^(SIG)?[A-Z][A-Z0-9+-]{0,12}$|^\d{1,2}$/i.test(stop))
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `the image config's config.StopSignal ${JSON.stringify(stop.slice(0, 40))} is not a signal name or number`,
    );
  put('StopSignal', stop || undefined);
  put('Volumes', imageVolumes(x.Volumes));
  if (x.Healthcheck !== undefined && x.Healthcheck !== null) {
    const h = asObject(x.Healthcheck, 'config.Healthcheck');
    config.Healthcheck = {
      Test: optStrings(h.Test, 'config.Healthcheck.Test'),
      Interval: optNumber(h.Interval, 'config.Healthcheck.Interval'),
      Timeout: optNumber(h.Timeout, 'config.Healthcheck.Timeout'),
      Retries: optNumber(h.Retries, 'config.Healthcheck.Retries'),
      StartPeriod: optNumber(h.StartPeriod, 'config.Healthcheck.StartPeriod'),
    };
  }
  return { diffIds, created: created ? Date.parse(created) || 0 : 0, config };
}

/** How many VOLUME paths an image may declare; each becomes a directory per container. */
export const MAX_IMAGE_VOLUMES = 64;

/**
 * The image config's `Volumes` (`{"/data": {}}`), as absolute normalized paths: the image's
 * author wrote them and each becomes a mount of every container, so each is checked and the
 * number bounded. A path that normalizes to `/` is refused (it would hide the whole rootfs).
 */
function imageVolumes(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  const o = asObject(v, 'config.Volumes');
  const keys = Object.keys(o);
  if (keys.length > MAX_IMAGE_VOLUMES)
    throw new TsswarmError('INVALID_ARGUMENT', `the image config's config.Volumes has ${keys.length} paths: at most ${MAX_IMAGE_VOLUMES}`);
  const out = new Set<string>();
  for (const k of keys) {
    const p = posix.normalize(k).replace(/\/+$/, '');
    if (!k.startsWith('/') || k.length > 4096 || k.includes('\0') || p === '' || p === '/')
      throw new TsswarmError(
        'INVALID_ARGUMENT',
        `the image config's config.Volumes path ${JSON.stringify(k.slice(0, 80))} is not an absolute path below /`,
      );
    out.add(p);
  }
  return out.size ? [...out] : undefined;
}

/** An images.json record as this store writes it, or undefined when any id in it is malformed. */
function validRecord(r: unknown): ImageRecord | undefined {
  if (typeof r !== 'object' || r === null) return undefined;
  const x = r as Partial<ImageRecord>;
  if (!isDigest(x.id) || !Array.isArray(x.diffIds) || !x.diffIds.every(isDigest)) return undefined;
  if (!Array.isArray(x.references) || !x.references.every((s) => typeof s === 'string')) return undefined;
  if (typeof x.config !== 'object' || x.config === null) return undefined;
  return {
    id: x.id,
    references: x.references,
    digests: Array.isArray(x.digests) ? x.digests.filter((d) => typeof d === 'string' && /@sha256:[0-9a-f]{64}$/.test(d)) : undefined,
    diffIds: x.diffIds,
    layerSizes: Array.isArray(x.layerSizes) ? x.layerSizes : undefined,
    size: Number(x.size) || 0,
    createdAt: Number(x.createdAt) || 0,
    config: x.config,
  };
}

/** Records `repo@sha256:…` on one image (a digest names one content, so no other image keeps it). */
function digestIn(images: Map<string, ImageRecord>, id: string, repoDigest: string): void {
  const d = repoDigestOf(repoDigest)!;
  for (const i of images.values()) if (i.digests?.includes(d)) i.digests = i.digests.filter((x) => x !== d);
  const rec = images.get(id)!;
  rec.digests = [...(rec.digests ?? []), d];
}

function tagIn(images: Map<string, ImageRecord>, id: string, ref: string): void {
  const n = normalizeRef(ref);
  for (const i of images.values()) i.references = i.references.filter((r) => r !== n);
  images.get(id)!.references.push(n);
}

function pickPlatform(
  list: { digest: string; field: string; os?: string; architecture?: string }[],
  what: string,
): { digest: string; field: string } {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch;
  const hit = list.find((x) => x.os === 'linux' && x.architecture === arch) ?? list.find((x) => x.os === 'linux') ?? list[0];
  if (!hit) throw new TsswarmError('INVALID_ARGUMENT', `${what} lists no manifests`);
  return hit;
}

/** An archive name as a key: `./a//b/` and `a/b` are one member; `..` stays in and so never matches a relative path. */
function normalName(name: string): string {
  return cleanName(posix.normalize(cleanName(name) || '.'));
}

/** A relative path named by a manifest: no absolute paths, no `..`. */
function relPath(name: string, field: string): string {
  const parts = name.split('/');
  if (name.startsWith('/') || parts.includes('..') || name.includes('\0') || !name.trim()) {
    throw new TsswarmError(
      'INVALID_ARGUMENT',
      `${field} (${JSON.stringify(name.slice(0, 200))}) must be a relative path inside the archive, without ".."`,
    );
  }
  return normalName(name);
}

/** A layout directory: names resolve only to regular files inside it (symlinks out of it are refused). */
function dirSource(dir: string): Source {
  const root = realpathSync(dir);
  return {
    label: dir,
    file: (name, field) => {
      const rel = relPath(name, field);
      let real: string;
      try {
        real = realpathSync(join(root, rel));
      } catch {
        return undefined;
      }
      if (!real.startsWith(`${root}/`))
        throw new TsswarmError('INVALID_ARGUMENT', `${dir}: ${field} (${name}) leads outside the directory`);
      return real;
    },
  };
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
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
