// ImageStore against hostile archives and registries, on a real filesystem as
// root: malformed digests, path traversal, forged diff ids, zip bombs, caps,
// truncated archives, planted layer directories. Every failure must leave the
// store's tree exactly as before and a canary directory outside it untouched.
import { createHash } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGzip, gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageStore, type ImageLimits } from '../../../agent/runtime/images.js';
import { writeTar, type TarEntry, type TarType } from '../../../agent/runtime/tar.js';
import { TsswarmError } from '../../../lib/errors.js';
import { isRoot } from '../../have.js';

const log = pino({ level: 'silent' });
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
type Entry = Partial<TarEntry> & { name: string; type: TarType };

const smallLayer = (text = 'hello'): Buffer =>
  writeTar([
    { name: 'etc', type: 'dir', mode: 0o755 },
    { name: 'etc/hello', type: 'file', mode: 0o644, data: Buffer.from(text) },
  ]);

const imageConfig = (diffIds: string[]): Buffer =>
  Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['sh'], Env: ['A=1'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );

interface Img {
  /** Plain layer tars. */
  layers: Buffer[];
  /** The config's diff ids (default: the layers' real digests). */
  diffIds?: string[];
  gzip?: boolean;
  ref?: string;
}

/** A `docker save` archive; `manifestLayers` replaces what manifest.json lists. */
function dockerSave(img: Img, o: { manifestLayers?: string[] } = {}): Buffer {
  const blobs = img.layers.map((l) => (img.gzip ? gzipSync(l) : l));
  const cfg = imageConfig(img.diffIds ?? img.layers.map((l) => `sha256:${sha(l)}`));
  const paths = blobs.map((b) => `${sha(b)}/layer.tar`);
  const entries: Entry[] = [{ name: `${sha(cfg)}.json`, type: 'file', data: cfg }];
  for (const [i, b] of blobs.entries())
    entries.push({ name: paths[i]!.split('/')[0]!, type: 'dir' }, { name: paths[i]!, type: 'file', data: b });
  entries.push({
    name: 'manifest.json',
    type: 'file',
    data: Buffer.from(
      JSON.stringify([{ Config: `${sha(cfg)}.json`, RepoTags: [img.ref ?? 'tss/app:1'], Layers: o.manifestLayers ?? paths }]),
    ),
  });
  return writeTar(entries);
}

/** An OCI layout's files; `indexDigest` replaces the manifest digest index.json names. */
function ociFiles(img: Img, o: { indexDigest?: string } = {}): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const put = (b: Buffer): string => {
    files.set(`blobs/sha256/${sha(b)}`, b);
    return `sha256:${sha(b)}`;
  };
  const cfg = imageConfig(img.diffIds ?? img.layers.map((l) => `sha256:${sha(l)}`));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(cfg), size: cfg.length },
      layers: img.layers.map((l) => {
        const b = img.gzip === false ? l : gzipSync(l);
        return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: put(b), size: b.length };
      }),
    }),
  );
  const md = put(manifest);
  files.set('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  files.set(
    'index.json',
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: o.indexDigest ?? md,
            size: manifest.length,
            annotations: { 'org.opencontainers.image.ref.name': img.ref ?? 'tss/oci:1' },
          },
        ],
      }),
    ),
  );
  return files;
}

function writeDir(dir: string, files: Map<string, Buffer>): string {
  for (const [name, b] of files) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), b);
  }
  return dir;
}

const tarOf = (files: Map<string, Buffer>): Buffer => writeTar([...files].map(([name, data]): Entry => ({ name, type: 'file', data })));

/** Every path under `dir` with its type, size and (for files) content hash: two equal listings mean an unchanged tree. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        out.push(`${r}/`);
        walk(p, r);
      } else out.push(`${r} ${st.size} ${st.isFile() ? sha(readFileSync(p)) : 'special'}`);
    }
  };
  walk(dir, '');
  return out;
}

async function failure(p: Promise<unknown>): Promise<TsswarmError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TsswarmError) return e;
    throw e;
  }
  throw new Error('expected the operation to fail');
}

describe.skipIf(!isRoot)('image store', () => {
  let dir: string;
  let root: string;
  let canary: string;
  let store: ImageStore;
  const open = (limits: Partial<ImageLimits> = {}): ImageStore => {
    const s = new ImageStore(root, log, limits);
    s.init();
    return s;
  };

  beforeEach(() => {
    dir = mkdtempSync('/tmp/tss-images-');
    root = join(dir, 'store');
    canary = join(dir, 'canary');
    mkdirSync(join(canary, 'sub'), { recursive: true });
    writeFileSync(join(canary, 'keep'), 'canary');
    writeFileSync(join(canary, 'sub', 'keep'), 'canary too');
    store = open();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** `load` must fail with an error matching `msg`, leaving the store and the canary as they were. */
  async function refused(s: ImageStore, path: string, msg: RegExp): Promise<TsswarmError> {
    const before = listing(root);
    const canaryBefore = listing(canary);
    const imagesBefore = s.list();
    const e = await failure(s.load(path));
    expect(e.message).toMatch(msg);
    expect(listing(root)).toEqual(before);
    expect(listing(canary)).toEqual(canaryBefore);
    expect(s.list()).toEqual(imagesBefore);
    return e;
  }

  describe('loads', () => {
    it('a docker save archive with a gzipped layer: the layer is unpacked under its diff id and the image resolves', async () => {
      const l = smallLayer();
      writeFileSync(join(dir, 'app.tar'), dockerSave({ layers: [l], gzip: true, ref: 'tss/app:1' }));
      const [img] = await store.load(join(dir, 'app.tar'));
      expect(img!.references).toEqual(['tss/app:1']);
      expect(img!.size).toBe(l.length);
      const r = store.resolve('tss/app:1')!;
      expect(r.layers).toEqual([join(root, 'layers', sha(l))]);
      expect(readFileSync(join(r.layers[0]!, 'etc/hello'), 'utf8')).toBe('hello');
      expect(r.env).toEqual(['A=1']);
      expect(readdirSync(join(root, 'staging'))).toEqual([]);
    });

    it('an OCI layout directory, and the same layout as a gzipped tar; loading again changes nothing', async () => {
      const files = ociFiles({ layers: [smallLayer('a'), smallLayer('b')], ref: 'tss/oci:2' });
      const [a] = await store.load(writeDir(join(dir, 'layout'), files));
      expect(a!.references).toEqual(['tss/oci:2']);
      const after = listing(root);
      writeFileSync(join(dir, 'oci.tar.gz'), gzipSync(tarOf(files)));
      const [b] = await store.load(join(dir, 'oci.tar.gz'));
      expect(b!.id).toBe(a!.id);
      expect(listing(root)).toEqual(after);
      expect(store.list()).toHaveLength(1);
    });

    it("an OCI layout records its manifest digest as the image's repo digest: name@digest and name:tag@digest resolve, a wrong digest does not", async () => {
      const files = ociFiles({ layers: [smallLayer('d')], ref: 'tss/oci:3' });
      const digest = (JSON.parse(files.get('index.json')!.toString()) as { manifests: { digest: string }[] }).manifests[0]!.digest;
      const [a] = await store.load(writeDir(join(dir, 'layout'), files));
      expect(a!.repoDigests).toEqual([`tss/oci@${digest}`]);
      expect(store.resolve(`tss/oci@${digest}`)?.id).toBe(a!.id);
      expect(store.resolve(`docker.io/tss/oci:other@${digest}`)?.id).toBe(a!.id);
      expect(store.resolve(`tss/oci@sha256:${'0'.repeat(64)}`)).toBeUndefined();
      expect(store.resolve(`tss/elsewhere@${digest}`)).toBeUndefined();
      // It survives a restart; removing the digest reference only drops it while the tag remains.
      expect(open().resolve(`tss/oci@${digest}`)?.id).toBe(a!.id);
      expect(await store.remove(`tss/oci:3@${digest}`)).toEqual([`tss/oci@${digest}`]);
      expect(store.list()[0]).toMatchObject({ references: ['tss/oci:3'], repoDigests: [] });
    });

    it('image rm removes the layers, config blob and marks it made, and nothing else', async () => {
      const empty = listing(root);
      writeFileSync(join(dir, 'app.tar'), dockerSave({ layers: [smallLayer()] }));
      await store.load(join(dir, 'app.tar'));
      expect(listing(root)).not.toEqual(empty);
      await store.remove('tss/app:1');
      // images.json is rewritten (empty) rather than removed.
      expect(listing(root).filter((l) => !l.startsWith('images.json'))).toEqual(empty);
      expect(store.list()).toEqual([]);
      expect(listing(canary)).toEqual(['keep 6 ' + sha('canary'), 'sub/', `sub/keep 10 ${sha('canary too')}`]);
    });

    it('records survive a restart, and the store reopened trusts its own layers', async () => {
      writeFileSync(join(dir, 'app.tar'), dockerSave({ layers: [smallLayer()] }));
      const [img] = await store.load(join(dir, 'app.tar'));
      const after = listing(root);
      const again = open();
      expect(again.list()).toEqual([img]);
      await again.load(join(dir, 'app.tar'));
      expect(listing(root)).toEqual(after);
    });
  });

  describe('refuses malformed digests before they name a path', () => {
    it('a diff id with path traversal (sha256:../../canary) fails naming rootfs.diff_ids[0]; the canary it names survives', async () => {
      writeFileSync(join(dir, 'x.tar'), dockerSave({ layers: [smallLayer()], diffIds: ['sha256:../../canary'] }));
      await refused(store, join(dir, 'x.tar'), /rootfs\.diff_ids\[0\] must be a digest of the form sha256:<64 lowercase hex digits>/);
    });

    it('a diff id of 63 hex digits, and one in uppercase, are refused naming the field', async () => {
      const l = smallLayer();
      const ok = `sha256:${sha(l)}`;
      writeFileSync(join(dir, 'short.tar'), dockerSave({ layers: [l, l], diffIds: [ok, `sha256:${sha(l).slice(1)}`] }));
      await refused(store, join(dir, 'short.tar'), /rootfs\.diff_ids\[1\] must be a digest/);
      writeFileSync(join(dir, 'upper.tar'), dockerSave({ layers: [l], diffIds: [`sha256:${sha(l).toUpperCase()}`] }));
      await refused(store, join(dir, 'upper.tar'), /rootfs\.diff_ids\[0\] must be a digest/);
    });

    it('an OCI index digest with path traversal is refused naming index.json manifests[0].digest', async () => {
      const files = ociFiles({ layers: [smallLayer()] }, { indexDigest: 'sha256:../../../../canary/keep' });
      await refused(store, writeDir(join(dir, 'layout'), files), /index\.json manifests\[0\]\.digest must be a digest/);
    });

    it('a docker manifest.json layer path ../../etc/passwd is refused naming manifest.json[0].Layers[0]', async () => {
      writeFileSync(join(dir, 'x.tar'), dockerSave({ layers: [smallLayer()] }, { manifestLayers: ['../../etc/passwd'] }));
      await refused(
        store,
        join(dir, 'x.tar'),
        /manifest\.json\[0\]\.Layers\[0\] \("\.\.\/\.\.\/etc\/passwd"\) must be a relative path inside the archive/,
      );
    });

    it('JSON of the wrong shape is a clear error, not a TypeError', async () => {
      const files = ociFiles({ layers: [smallLayer()] });
      files.set('index.json', Buffer.from('{"manifests": {"digest": 1}}'));
      await refused(store, writeDir(join(dir, 'layout'), files), /index\.json manifests must be a JSON array/);
    });

    it('image lookups and rm take only what the store knows: a traversal id is no such image', async () => {
      await expect(store.remove('sha256:../../canary')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      expect(store.resolve('sha256:../../canary')).toBeUndefined();
    });
  });

  describe('verifies content', () => {
    it('a config whose diff id does not match the layer content stores nothing: no layers/<hex> under either digest', async () => {
      const l = smallLayer();
      const forged = `sha256:${sha('something else')}`;
      writeFileSync(join(dir, 'x.tar'), dockerSave({ layers: [l], diffIds: [forged], gzip: true }));
      await refused(store, join(dir, 'x.tar'), /content is sha256:[0-9a-f]{12}… but the image config's rootfs\.diff_ids\[0\] says/);
      expect(readdirSync(join(root, 'layers'))).toEqual([]);
    });

    it('a second layer that fails removes the first layer this load unpacked', async () => {
      const a = smallLayer('a');
      const b = smallLayer('b');
      writeFileSync(join(dir, 'x.tar'), dockerSave({ layers: [a, b], diffIds: [`sha256:${sha(a)}`, `sha256:${sha('not b')}`] }));
      await refused(store, join(dir, 'x.tar'), /rootfs\.diff_ids\[1\] says/);
    });

    it('a layer already present before a failed load is untouched', async () => {
      const a = smallLayer('a');
      writeFileSync(join(dir, 'a.tar'), dockerSave({ layers: [a], ref: 'tss/a:1' }));
      await store.load(join(dir, 'a.tar'));
      const b = smallLayer('b');
      writeFileSync(
        join(dir, 'x.tar'),
        dockerSave({ layers: [a, b], diffIds: [`sha256:${sha(a)}`, `sha256:${sha('not b')}`], ref: 'tss/x:1' }),
      );
      await refused(store, join(dir, 'x.tar'), /rootfs\.diff_ids\[1\] says/);
      expect(readFileSync(join(store.resolve('tss/a:1')!.layers[0]!, 'etc/hello'), 'utf8')).toBe('a');
    });

    it('a layers/<hex> directory the store did not make is not trusted: the layer is unpacked anew and image rm never deletes the planted one', async () => {
      const l = smallLayer();
      const planted = join(root, 'layers', sha(l));
      mkdirSync(planted);
      writeFileSync(join(planted, 'planted'), 'x');
      writeFileSync(join(dir, 'app.tar'), dockerSave({ layers: [l] }));
      await store.load(join(dir, 'app.tar'));
      expect(readdirSync(planted).sort()).toEqual(['etc']);
      const aside = readdirSync(join(root, 'layers')).filter((n) => n.startsWith('.untrusted-'));
      expect(aside).toHaveLength(1);
      await store.remove('tss/app:1');
      expect(readdirSync(join(root, 'layers', aside[0]!))).toEqual(['planted']);
    });

    it('an images.json record naming an unmarked layer directory: image rm leaves that directory alone', async () => {
      const hex = sha('planted');
      mkdirSync(join(root, 'layers', hex));
      writeFileSync(join(root, 'layers', hex, 'host-data'), 'x');
      const id = `sha256:${sha('cfg')}`;
      writeFileSync(
        join(root, 'images.json'),
        JSON.stringify({
          version: 2,
          images: [{ id, references: ['tss/p:1'], diffIds: [`sha256:${hex}`], size: 1, createdAt: 0, config: {} }],
        }),
      );
      const s = open();
      await s.remove('tss/p:1');
      expect(readdirSync(join(root, 'layers', hex))).toEqual(['host-data']);
    });

    it('a version-1 images.json (from before layer marks) has its layers adopted, so image rm still frees them', async () => {
      writeFileSync(join(dir, 'app.tar'), dockerSave({ layers: [smallLayer()] }));
      await store.load(join(dir, 'app.tar'));
      const v2 = JSON.parse(readFileSync(join(root, 'images.json'), 'utf8')) as { images: unknown[] };
      writeFileSync(join(root, 'images.json'), JSON.stringify(v2.images));
      rmSync(join(root, 'layers.marks'), { recursive: true });
      const s = open();
      await s.remove('tss/app:1');
      expect(readdirSync(join(root, 'layers'))).toEqual([]);
    });

    it('init drops records with malformed ids or diff ids and clears a crash’s scratch', async () => {
      const good = { id: `sha256:${sha('a')}`, references: ['tss/good:1'], diffIds: [], size: 0, createdAt: 0, config: {} };
      writeFileSync(
        join(root, 'images.json'),
        JSON.stringify({
          version: 2,
          images: [
            good,
            { id: 'sha256:../../canary', references: ['tss/bad:1'], diffIds: [], size: 0, createdAt: 0, config: {} },
            { id: `sha256:${sha('b')}`, references: ['tss/bad:2'], diffIds: ['sha256:../../../canary'], size: 0, createdAt: 0, config: {} },
          ],
        }),
      );
      mkdirSync(join(root, 'layers', '.tmp-crash'));
      mkdirSync(join(root, 'staging', 'crash'));
      const s = open();
      expect(s.list().map((i) => i.references)).toEqual([['tss/good:1']]);
      expect(readdirSync(join(root, 'layers'))).toEqual([]);
      expect(readdirSync(join(root, 'staging'))).toEqual([]);
      expect(listing(canary)).toHaveLength(3);
    });
  });

  describe('caps', () => {
    it('a zip bomb (a small gzip inflating past maxLayerBytes) fails naming the cap, with memory bounded and nothing left', async () => {
      // 256 MiB of zeros in one file: about 250 kB gzipped; the cap is 1 MiB.
      const size = 256 * 1024 * 1024;
      const head = writeTar([{ name: 'zeros', type: 'file', data: Buffer.alloc(0) }]).subarray(0, 512);
      // Rewrite the header's size field for the real size.
      const h = Buffer.from(head);
      h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 12);
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (const x of h) sum += x;
      h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
      const hash = createHash('sha256');
      const gz = createGzip({ level: 9 });
      const parts: Buffer[] = [];
      gz.on('data', (c: Buffer) => parts.push(c));
      const done = new Promise((r) => gz.on('end', r));
      const feed = (b: Buffer): void => {
        hash.update(b);
        gz.write(b);
      };
      feed(h);
      const zeros = Buffer.alloc(1 << 20);
      for (let i = 0; i < size / zeros.length; i++) feed(zeros);
      feed(Buffer.alloc(1024));
      gz.end();
      await done;
      const bomb = Buffer.concat(parts);
      expect(bomb.length).toBeLessThan(1 << 20);
      const diffId = `sha256:${hash.digest('hex')}`;
      const cfg = imageConfig([diffId]);
      const files = new Map<string, Buffer>([
        [`${sha(cfg)}.json`, cfg],
        ['bomb/layer.tar', bomb],
        [
          'manifest.json',
          Buffer.from(JSON.stringify([{ Config: `${sha(cfg)}.json`, RepoTags: ['tss/bomb:1'], Layers: ['bomb/layer.tar'] }])),
        ],
      ]);
      writeFileSync(join(dir, 'bomb.tar'), tarOf(files));
      const s = open({ maxLayerBytes: 1 << 20 });
      const rss = process.memoryUsage().rss;
      const e = await refused(
        s,
        join(dir, 'bomb.tar'),
        /exceeds the image store's maxLayerBytes cap of 1048576 bytes .*raise limits\.maxLayerBytes/,
      );
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(process.memoryUsage().rss - rss).toBeLessThan(128 * 1024 * 1024);
    }, 60_000);

    it('a layer with more entries than maxLayerEntries is refused naming the cap', async () => {
      const entries: Entry[] = Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, type: 'file', data: Buffer.from('x') }));
      writeFileSync(join(dir, 'x.tar'), dockerSave({ layers: [writeTar(entries)] }));
      await refused(open({ maxLayerEntries: 5 }), join(dir, 'x.tar'), /more than 5 entries.*maxLayerEntries/);
    });

    it('an archive with more members than maxArchiveEntries is refused naming the cap', async () => {
      writeFileSync(join(dir, 'x.tar'), dockerSave({ layers: [smallLayer('a'), smallLayer('b'), smallLayer('c')] }));
      await refused(open({ maxArchiveEntries: 4 }), join(dir, 'x.tar'), /maxArchiveEntries/);
    });

    it('an oversized compressed blob is refused naming maxBlobBytes, from a tar and from a layout directory', async () => {
      const noise = (): Buffer => Buffer.from(Array.from({ length: 16384 }, () => Math.floor(Math.random() * 256)));
      const l = writeTar([{ name: 'noise', type: 'file', data: noise() }]);
      writeFileSync(join(dir, 'x.tar'), dockerSave({ layers: [l], gzip: true }));
      const s = open({ maxBlobBytes: 8192 });
      await refused(
        s,
        join(dir, 'x.tar'),
        /archive member [0-9a-f]{64}\/layer\.tar \(\d+ bytes\) exceeds the image store's maxBlobBytes cap of 8192 bytes/,
      );
      await refused(s, writeDir(join(dir, 'layout'), ociFiles({ layers: [l] })), /maxBlobBytes cap of 8192 bytes/);
    });

    it('a total over maxLoadBytes is refused naming the cap', async () => {
      const l = writeTar([{ name: 'big', type: 'file', data: Buffer.alloc(64 * 1024, 1) }]);
      writeFileSync(join(dir, 'x.tar'), dockerSave({ layers: [l] }));
      await refused(open({ maxLoadBytes: 100 * 1024 }), join(dir, 'x.tar'), /maxLoadBytes cap of 102400 bytes/);
    });

    it('more layers than maxLayers is refused naming the cap', async () => {
      const ls = [smallLayer('a'), smallLayer('b'), smallLayer('c')];
      writeFileSync(join(dir, 'x.tar'), dockerSave({ layers: ls }));
      await refused(open({ maxLayers: 2 }), join(dir, 'x.tar'), /maxLayers cap of 2 \(/);
    });

    it('a JSON document over maxJsonBytes is refused naming the cap', async () => {
      const files = ociFiles({ layers: [smallLayer()] });
      files.set('index.json', Buffer.from(JSON.stringify({ manifests: [], pad: 'x'.repeat(5000) })));
      await refused(
        open({ maxJsonBytes: 4096 }),
        writeDir(join(dir, 'layout'), files),
        /index\.json \(\d+ bytes\) exceeds the image store's maxJsonBytes cap of 4096 bytes/,
      );
    });

    it('a truncated archive is refused as not a valid tar, and a truncated gzip too', async () => {
      const whole = dockerSave({ layers: [writeTar([{ name: 'f', type: 'file', data: Buffer.alloc(8192, 7) }])] });
      writeFileSync(join(dir, 'cut.tar'), whole.subarray(0, 4096 + 100));
      await refused(store, join(dir, 'cut.tar'), /cut\.tar is not a (valid|readable) tar archive/);
      writeFileSync(join(dir, 'cut.tar.gz'), gzipSync(whole).subarray(0, 300));
      await refused(store, join(dir, 'cut.tar.gz'), /cut\.tar\.gz is not a (valid|readable) tar archive/);
    });
  });
});

describe.skipIf(!isRoot)('image pull', () => {
  const good = smallLayer('pulled');
  const goodGz = gzipSync(good);
  const cfg = imageConfig([`sha256:${sha(good)}`]);
  const wrong = Buffer.from('not what the digest says');
  const wrongDigest = `sha256:${sha('something')}`;
  const hugeDigest = `sha256:${sha('huge')}`;
  let hugeSent = 0;
  let hugeClosed: Promise<void> = Promise.resolve();
  const manifest = (layer: string): Buffer =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${sha(cfg)}`, size: cfg.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer, size: 1 }],
      }),
    );
  const manifests: Record<string, Buffer> = {
    '/v2/tss/good/manifests/v1': manifest(`sha256:${sha(goodGz)}`),
    '/v2/tss/corrupt/manifests/v1': manifest(wrongDigest),
    '/v2/tss/huge/manifests/v1': manifest(hugeDigest),
    '/v2/tss/authed/manifests/v1': manifest(`sha256:${sha(goodGz)}`),
    '/v2/tss/ftprealm/manifests/v1': manifest(`sha256:${sha(goodGz)}`),
  };
  let tokenRequests: string[] = [];
  const blobs: Record<string, Buffer> = { [`sha256:${sha(goodGz)}`]: goodGz, [`sha256:${sha(cfg)}`]: cfg, [wrongDigest]: wrong };

  /** Sends 1 MiB chunks without a Content-Length until the client hangs up (or 64 MiB). */
  function streamHuge(res: ServerResponse): void {
    hugeSent = 0;
    hugeClosed = new Promise((r) => res.on('close', () => r()));
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(1 << 20, 0x5a);
    const more = (): void => {
      while (hugeSent < 64 << 20 && !res.destroyed) {
        hugeSent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  }

  let server: Server;
  let port = 0;
  let dir: string;
  beforeEach(async () => {
    dir = mkdtempSync('/tmp/tss-images-pull-');
    server ??= await new Promise<Server>((resolve) => {
      const s = createServer((req, res) => {
        const url = req.url ?? '';
        if (url.startsWith('/token')) {
          tokenRequests.push(url);
          return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tss-token' }));
        }
        // Repositories behind a token server, named by the realm of the 401 as a registry does.
        const authed = /^\/v2\/tss\/(authed|ftprealm)\//.exec(url);
        if (authed && req.headers.authorization !== 'Bearer tss-token') {
          const realm = `${authed[1] === 'authed' ? 'http' : 'ftp'}://127.0.0.1:${port}/token`;
          return void res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="tss-registry"` }).end();
        }
        const m = manifests[url];
        if (m)
          return void res
            .writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': m.length })
            .end(m);
        const digest = url.split('/blobs/')[1] ?? '';
        if (url.startsWith('/v2/tss/') && digest === hugeDigest) return streamHuge(res);
        const b = blobs[digest];
        if (b && url.startsWith('/v2/tss/')) return void res.writeHead(200, { 'content-length': b.length }).end(b);
        res.writeHead(404).end();
      });
      s.listen(0, '127.0.0.1', () => resolve(s));
    });
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  afterAll(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  it('pulls a good image: blobs verified, the layer unpacked, no staged files left', async () => {
    const s = new ImageStore(join(dir, 'store'), log);
    s.init();
    const [img] = await s.pull(`127.0.0.1:${port}/tss/good:v1`);
    expect(img!.id).toBe(`sha256:${sha(cfg)}`);
    expect(readFileSync(join(s.resolve(`127.0.0.1:${port}/tss/good:v1`)!.layers[0]!, 'etc/hello'), 'utf8')).toBe('pulled');
    expect(readdirSync(join(dir, 'store', 'staging'))).toEqual([]);
  });

  it('a blob whose content does not match its digest fails the pull and stores nothing', async () => {
    const s = new ImageStore(join(dir, 'store'), log);
    s.init();
    const before = listing(join(dir, 'store'));
    const e = await failure(s.pull(`127.0.0.1:${port}/tss/corrupt:v1`));
    expect(e.message).toMatch(/blob sha256:[0-9a-f]{12} from 127\.0\.0\.1:\d+ arrived corrupt/);
    expect(listing(join(dir, 'store'))).toEqual(before);
    expect(s.list()).toEqual([]);
  });

  it('a blob streamed past maxBlobBytes is cut off at the cap: the connection is dropped and nothing is stored', async () => {
    const s = new ImageStore(join(dir, 'store'), log, { maxBlobBytes: 2 << 20 });
    s.init();
    const before = listing(join(dir, 'store'));
    const e = await failure(s.pull(`127.0.0.1:${port}/tss/huge:v1`));
    expect(e.message).toMatch(/blob sha256:[0-9a-f]{12} from 127\.0\.0\.1:\d+ exceeds the image store's maxBlobBytes cap of 2097152 bytes/);
    await hugeClosed;
    expect(hugeSent).toBeLessThan(64 << 20);
    expect(listing(join(dir, 'store'))).toEqual(before);
  });

  it('fetches a token from the realm a local registry names, and refuses a realm that is not http(s) without contacting it', async () => {
    tokenRequests = [];
    const s = new ImageStore(join(dir, 'store'), log);
    s.init();
    const [img] = await s.pull(`127.0.0.1:${port}/tss/authed:v1`);
    expect(img!.id).toBe(`sha256:${sha(cfg)}`);
    expect(tokenRequests).toEqual(['/token?service=tss-registry&scope=repository%3Atss%2Fauthed%3Apull']);
    tokenRequests = [];
    const e = await failure(s.pull(`127.0.0.1:${port}/tss/ftprealm:v1`));
    expect(e.message).toMatch(
      /the registry 127\.0\.0\.1:\d+ names the token server "ftp:\/\/127\.0\.0\.1:\d+\/token", which is neither https nor http/,
    );
    expect(tokenRequests).toEqual([]);
  });

  it('a reference with a malformed digest is refused before any request', async () => {
    const s = new ImageStore(join(dir, 'store'), log);
    s.init();
    await expect(s.pull(`127.0.0.1:${port}/tss/good@sha256:ABC`)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
