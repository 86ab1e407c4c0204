// The registry client shared by the agent's puller (images.ts) and the engine
// API's `/distribution/{name}/json`: one authenticated session per repository
// (anonymous, basic, or a Bearer token fetched from the realm the registry
// names, with or without credentials), manifest fetches bounded and checked
// against their digest, and the descriptor and platforms dockerd answers with.
import { createHash } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, isIPv4, isIPv6, type LookupFunction } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { TsswarmError, UsageError } from '../../lib/errors.js';
import { asArray, asObject, checkDigest, type Json, optString, parseJson, readCapped } from './blobs.js';

/** Credentials for one registry, as dockerd's AuthConfig carries them. */
export interface RegistryAuth {
  username?: string;
  password?: string;
  /** An OAuth refresh token (`identitytoken`), traded for a Bearer token at the realm. */
  identityToken?: string;
  /** A Bearer token used as it is (`registrytoken`). */
  registryToken?: string;
}

/** Where a registry's own CA and client certificate are looked for, as dockerd's /etc/docker/certs.d. */
export const DEFAULT_CERTS_DIR = '/etc/tsswarm/certs.d';
const MAX_CERT_FILE_BYTES = 1024 * 1024;

/** TLS material for one registry: CAs trusted besides the system's, and a client certificate and key. */
export interface RegistryTls {
  ca: string[];
  cert?: string;
  key?: string;
}

/**
 * The TLS material `<certsDir>/<host[:port]>/` holds for a registry, as
 * dockerd reads certs.d: every `*.crt` is a CA added to the system's, and a
 * `NAME.cert` with its `NAME.key` is the client certificate (a certificate
 * without its key, or a key without its certificate, is an error naming the
 * file). Undefined when the directory does not exist. Files are bounded.
 */
export function registryTls(certsDir: string, registry: string): RegistryTls | undefined {
  if (!certsDir) return undefined;
  const dir = join(certsDir, registry);
  // A registry name with a path separator or dots alone never names a directory here.
  if (!registry || /[/\\]/.test(registry) || /^\.+$/.test(registry)) return undefined;
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return undefined;
  }
  const read = (name: string): string => {
    const path = join(dir, name);
    const st = statSync(path);
    if (!st.isFile() || st.size > MAX_CERT_FILE_BYTES)
      throw new TsswarmError('INVALID_ARGUMENT', `${path}: not a regular file of at most ${MAX_CERT_FILE_BYTES} bytes`);
    return readFileSync(path, 'utf8');
  };
  const out: RegistryTls = { ca: [] };
  for (const n of names) {
    if (n.endsWith('.crt')) out.ca.push(read(n));
    else if (n.endsWith('.cert')) {
      const key = `${n.slice(0, -5)}.key`;
      if (!names.includes(key))
        throw new TsswarmError('INVALID_ARGUMENT', `${join(dir, n)}: the client certificate has no key: put it in ${join(dir, key)}`);
      out.cert = read(n);
      out.key = read(key);
    } else if (n.endsWith('.key') && !names.includes(`${n.slice(0, -4)}.cert`))
      throw new TsswarmError(
        'INVALID_ARGUMENT',
        `${join(dir, n)}: the client key has no certificate: put it in ${join(dir, `${n.slice(0, -4)}.cert`)}`,
      );
  }
  return out;
}

/** An address a host name was checked at, which the connection then uses rather than resolve the name again. */
export interface PinnedAddress {
  address: string;
  family: number;
}

/** A `lookup` for node:net that answers `pin` for any name (the name was checked at that address). */
function pinnedLookup(pin: PinnedAddress): LookupFunction {
  return ((_host: string, opts: { all?: boolean }, cb: (...a: unknown[]) => void) =>
    opts?.all ? cb(null, [pin]) : cb(null, pin.address, pin.family)) as unknown as LookupFunction;
}

/**
 * fetch over node:http(s) with a registry's own TLS material (Node's fetch
 * takes no CA per request) and, for a token server whose name was checked
 * (`pin`), the address it was checked at, so that a second DNS answer cannot
 * move the request elsewhere. Redirects are followed by hand, at most 10: the
 * Authorization header, the client certificate and the pin go only to the
 * host first asked (blob storage elsewhere gets none), as fetch drops
 * Authorization on a cross-origin redirect.
 */
export async function tlsFetch(
  url: string | URL,
  o: {
    headers: Record<string, string>;
    signal: AbortSignal;
    tls?: RegistryTls;
    redirect?: 'follow' | 'error';
    method?: 'GET' | 'POST';
    body?: string;
    pin?: PinnedAddress;
  },
): Promise<Response> {
  const first = new URL(String(url));
  let at = first;
  for (let hop = 0; ; hop++) {
    const same = at.host === first.host && at.protocol === first.protocol;
    const headers = { ...o.headers };
    if (!same) delete headers.authorization;
    const method = hop === 0 ? (o.method ?? 'GET') : 'GET';
    const tls =
      same && o.tls ? { ca: o.tls.ca.length ? [...rootCertificates, ...o.tls.ca] : undefined, cert: o.tls.cert, key: o.tls.key } : {};
    const r: Response = await new Promise<Response>((res, rej) => {
      const options = {
        method,
        headers,
        signal: o.signal,
        ...(same && o.pin ? { lookup: pinnedLookup(o.pin) } : {}),
      };
      const req = (at.protocol === 'https:' ? httpsRequest : httpRequest)(
        at,
        at.protocol === 'https:' ? { ...options, ...tls } : options,
        (m) => {
          const h = new Headers();
          for (const [k, v] of Object.entries(m.headers)) {
            if (Array.isArray(v)) for (const x of v) h.append(k, x);
            else if (v !== undefined) h.set(k, v);
          }
          const status = m.statusCode ?? 502;
          const empty = status === 204 || status === 304 || (status >= 300 && status < 400);
          if (empty) m.resume();
          res(
            new Response(empty ? null : (Readable.toWeb(m) as unknown as ReadableStream), {
              status,
              statusText: m.statusMessage ?? '',
              headers: h,
            }),
          );
        },
      );
      req.on('error', rej);
      req.end(method === 'POST' && hop === 0 ? (o.body ?? '') : undefined);
    });
    const loc = r.headers.get('location');
    if (r.status < 300 || r.status >= 400 || !loc) return r;
    await r.body?.cancel();
    if (o.redirect === 'error') throw new Error(`redirected to ${new URL(loc, at).origin}`);
    if (hop >= 10) throw new Error('too many redirects');
    at = new URL(loc, at);
  }
}

/** The media types a manifest is asked for in: indexes and lists first, then single-platform manifests. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** A reference split for the registry: `tag` is '' when only a digest was given; `digest` '' when only a tag (or none). */
export interface RegistryRef {
  registry: string;
  repo: string;
  tag: string;
  digest: string;
}

/**
 * Whether a registry is reached over plain http: loopback always (as dockerd
 * treats 127.0.0.0/8), else when `insecure` names it as HOST:PORT, HOST, or a
 * CIDR holding its IPv4 address (dockerd's `insecure-registries`).
 */
export function registryIsInsecure(registry: string, insecure: readonly string[] = []): boolean {
  const host = registry.replace(/:\d+$/, '');
  if (host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host)) return true;
  for (const e of insecure) {
    if (e === registry || e === host) return true;
    const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(e);
    if (m && isIPv4(host)) {
      const bits = Number(m[2]);
      const n = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
      const size = 2 ** (32 - bits);
      if (Math.floor(n(host) / size) === Math.floor(n(m[1]!) / size)) return true;
    }
  }
  return false;
}

/** One insecure-registry entry checked for form: HOST, HOST:PORT or an IPv4 CIDR; the error names `field`. */
export function checkInsecureRegistry(v: string, field: string): string {
  const s = v.trim().replace(/^https?:\/\//, '');
  const cidr = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d{1,2})$/.exec(s);
  if (cidr) {
    if (cidr.slice(1, 5).every((o) => Number(o) <= 255) && Number(cidr[5]) <= 32) return s;
  } else if (/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/i.test(s) && !/:(0|\d{6,})$/.test(s)) return s.toLowerCase();
  throw new TsswarmError(
    'INVALID_ARGUMENT',
    `${field} "${v}" is not a registry: give HOST, HOST:PORT or an IPv4 network such as 10.0.0.0/8 (registries reached over plain http)`,
  );
}

/** A registry's error document (`{"errors":[{"code","message"}]}`) as the docker CLI prints it: `manifest unknown: manifest unknown`. */
export function registryErrorText(body: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return undefined;
  }
  const errs = (doc as { errors?: unknown })?.errors;
  if (!Array.isArray(errs) || errs.length === 0) return undefined;
  return errs
    .slice(0, 4)
    .map((e) => {
      const x = (e ?? {}) as { code?: unknown; message?: unknown };
      const code = typeof x.code === 'string' ? x.code.toLowerCase().replace(/_/g, ' ') : 'unknown';
      const message = typeof x.message === 'string' ? x.message : '';
      return `${code}: ${message}`.slice(0, 300);
    })
    .join('\n');
}

/** A registry answered with an error status: `status` is its HTTP status, the code follows it. */
export class RegistryError extends TsswarmError {
  constructor(
    readonly status: number,
    message: string,
    readonly registryText?: string,
  ) {
    super(
      status === 404 ? 'NOT_FOUND' : status === 401 ? 'UNAUTHENTICATED' : status === 403 ? 'PERMISSION_DENIED' : 'UNAVAILABLE',
      message,
    );
  }
}

/** Why an address may not serve a token for a registry elsewhere: this host's own services and the cloud metadata range sit there. */
function internalAddress(host: string): string | undefined {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return 'loopback';
  const v4 = isIPv4(h) ? h : /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h)?.[1];
  if (v4) {
    const [a, b] = v4.split('.').map(Number);
    if (a === 127) return 'loopback';
    if (a === 169 && b === 254) return 'link-local';
    if (a === 0) return 'unspecified';
    return undefined;
  }
  if (isIPv6(h)) {
    if (h === '::1') return 'loopback';
    if (h === '::') return 'unspecified';
    if (/^fe[89ab][0-9a-f]?:/.test(h)) return 'link-local';
    // IPv4-mapped in hex form, as the URL parser writes it (::ffff:7f00:1).
    const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h);
    if (m)
      return internalAddress(
        [parseInt(m[1]!, 16) >> 8, parseInt(m[1]!, 16) & 255, parseInt(m[2]!, 16) >> 8, parseInt(m[2]!, 16) & 255].join('.'),
      );
  }
  return undefined;
}

/**
 * The URL of the token server a registry's WWW-Authenticate names, if the
 * agent may fetch it: the realm comes from the registry, so it could aim the
 * agent (root, on the node's network) at anything. It must be https unless
 * the registry itself is reached over plain http, and unless the registry is
 * on this host it must not be a loopback, link-local (cloud metadata) or
 * unspecified address. Pure; checkedTokenRealm adds the DNS answer.
 */
export function tokenRealmUrl(realm: string, o: { registry: string; plainHttp: boolean; reference: string }): URL {
  const refuse = (why: string): TsswarmError =>
    new TsswarmError(
      'UNAVAILABLE',
      `pulling ${o.reference}: the registry ${o.registry} names the token server ${JSON.stringify(realm.slice(0, 200))}, which ${why}; the registry is misconfigured or hostile`,
    );
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw refuse('is not a URL');
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && o.plainHttp)) {
    throw refuse(
      o.plainHttp ? 'is neither https nor http' : 'is not https (only a registry reached over plain http may name an http token server)',
    );
  }
  const registryHost = new URL(`http://${o.registry}`).hostname;
  if (!internalAddress(registryHost)) {
    const kind = internalAddress(url.hostname);
    if (kind) throw refuse(`is a ${kind} address while the registry is not on this host`);
  }
  return url;
}

/**
 * tokenRealmUrl, plus the same address rule for every address the realm's
 * host name resolves to, and the address to connect to (`pin`): the request
 * goes to the address checked, never to a second DNS answer (a name that
 * resolves to a public address for the check and to 127.0.0.1 or the
 * metadata address for the fetch). Private ranges are allowed: registries in
 * private networks are normal.
 */
async function checkedTokenRealm(
  realm: string,
  o: { registry: string; plainHttp: boolean; reference: string },
): Promise<{ url: URL; pin?: PinnedAddress }> {
  const url = tokenRealmUrl(realm, o);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) || internalAddress(new URL(`http://${o.registry}`).hostname)) return { url };
  const addrs = await lookup(host, { all: true }).catch(() => []);
  if (!addrs.length)
    throw new TsswarmError(
      'UNAVAILABLE',
      `pulling ${o.reference}: the token server ${url.origin} of the registry ${o.registry} does not resolve`,
    );
  const bad = addrs.find((a) => internalAddress(a.address));
  if (bad) {
    throw new TsswarmError(
      'UNAVAILABLE',
      `pulling ${o.reference}: the registry ${o.registry} names the token server ${url.origin}, whose name resolves to ${bad.address}, a ${internalAddress(bad.address)} address, while the registry is not on this host; the registry is misconfigured or hostile`,
    );
  }
  return { url, pin: { address: addrs[0]!.address, family: addrs[0]!.family } };
}

/** A fetch body as Buffers (an empty body is no bytes). */
export async function* bodyOf(r: Response): AsyncGenerator<Buffer> {
  if (!r.body) return;
  for await (const c of r.body as unknown as AsyncIterable<Uint8Array>) yield Buffer.from(c.buffer, c.byteOffset, c.byteLength);
}

const basic = (a: RegistryAuth): string | undefined =>
  a.username || a.password ? `Basic ${Buffer.from(`${a.username ?? ''}:${a.password ?? ''}`).toString('base64')}` : undefined;

/**
 * Requests to one repository of one registry, authenticated as the registry
 * asks on its first 401: Basic with the credentials, or a Bearer token from
 * the realm (fetched with the credentials when there are some). `verb` starts
 * every message (`pulling busybox:latest`). Credentials never reach a message.
 */
export class RegistrySession {
  readonly base: string;
  private authorization = '';
  private tried = false;

  constructor(
    readonly ref: RegistryRef,
    private readonly o: { plainHttp: boolean; auth?: RegistryAuth; maxJsonBytes: number; verb: string; tls?: RegistryTls },
  ) {
    this.base = `${o.plainHttp ? 'http' : 'https'}://${ref.registry}/v2/${ref.repo}`;
    if (o.auth?.registryToken) this.authorization = `Bearer ${o.auth.registryToken}`;
  }

  async get(url: string, accept: string | undefined, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (accept) headers.accept = accept;
    if (this.authorization) headers.authorization = this.authorization;
    let r = await this.fetchOrExplain(url, headers, signal);
    if (r.status === 401 && !this.tried) {
      this.tried = true;
      const ch = r.headers.get('www-authenticate') ?? '';
      await r.body?.cancel();
      const auth = await this.authenticate(ch, signal);
      if (auth) {
        this.authorization = auth;
        headers.authorization = auth;
        r = await this.fetchOrExplain(url, headers, signal);
      } else r = new Response(null, { status: 401, statusText: 'Unauthorized' });
    }
    if (!r.ok) {
      const text = registryErrorText(
        (await readCapped(bodyOf(r), 64 * 1024, 'the registry error').catch(() => ({ buf: Buffer.alloc(0) }))).buf.toString(),
      );
      const hint =
        r.status === 401 || r.status === 403
          ? this.o.auth && (this.o.auth.username || this.o.auth.identityToken || this.o.auth.registryToken)
            ? ' (the credentials given were refused)'
            : ' (the registry needs credentials)'
          : '';
      throw new RegistryError(
        r.status,
        `${this.o.verb}: ${url} answered ${r.status} ${r.statusText}${hint}${text ? `: ${text}` : ''}`,
        text,
      );
    }
    return r;
  }

  private async fetchOrExplain(url: string | URL, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    try {
      if (this.o.tls && !this.o.plainHttp) return await tlsFetch(url, { headers, signal, tls: this.o.tls });
      return await fetch(url, { headers, signal, redirect: 'follow' });
    } catch (e) {
      if (signal.aborted) throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new TsswarmError(
        'UNAVAILABLE',
        `${this.o.verb}: cannot reach ${new URL(String(url)).origin} (${cause?.code ?? cause?.message ?? (e as Error).message})${this.o.plainHttp ? '' : "; a registry served over plain http must be listed in the daemon's insecureRegistries (--insecure-registry)"}`,
      );
    }
  }

  /** The Authorization header the challenge asks for, or undefined when there is nothing to answer it with. */
  private async authenticate(challenge: string, signal: AbortSignal): Promise<string | undefined> {
    const a = this.o.auth ?? {};
    if (/^basic\b/i.test(challenge)) return basic(a);
    const realm = /realm="([^"]+)"/i.exec(challenge)?.[1];
    if (!/^bearer\b/i.test(challenge) || !realm) return undefined;
    const { registry, repo } = this.ref;
    const { url: at, pin } = await checkedTokenRealm(realm, {
      registry,
      plainHttp: this.o.plainHttp,
      reference: this.o.verb.replace(/^\w+ /, ''),
    });
    const service = /service="([^"]+)"/i.exec(challenge)?.[1];
    // A login (no repository) asks for a token without a scope, as docker login does.
    const scope = repo ? `repository:${repo}:pull` : '';
    // A token server on the registry's own host is trusted as the registry is (its certs.d CA), whichever grant is
    // asked; no redirects: each hop would need the checks above, and token servers answer directly.
    const tls = this.o.tls && at.protocol === 'https:' && at.host === registry ? this.o.tls : undefined;
    let tr: Response;
    try {
      if (a.identityToken) {
        // OAuth2 refresh-token grant, as the docker CLI's identity tokens are used.
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: a.identityToken, client_id: 'tsswarm' });
        if (scope) form.set('scope', scope);
        if (service) form.set('service', service);
        const body = form.toString();
        tr = await tlsFetch(at, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) },
          signal,
          tls,
          pin,
          redirect: 'error',
        });
      } else {
        if (service) at.searchParams.set('service', service);
        if (scope) at.searchParams.set('scope', scope);
        const h = basic(a);
        const headers: Record<string, string> = h ? { authorization: h } : {};
        tr = await tlsFetch(at, { headers, signal, tls, pin, redirect: 'error' });
      }
    } catch (e) {
      throw new TsswarmError(
        'UNAVAILABLE',
        `${this.o.verb}: the token server ${at.origin} failed or redirected (redirects are not followed): ${(e as Error).message}`,
      );
    }
    if (!tr.ok) {
      await tr.body?.cancel();
      throw new RegistryError(
        tr.status === 401 || tr.status === 403 ? 401 : 503,
        `${this.o.verb}: the token server ${at.origin} answered ${tr.status} ${tr.statusText}${tr.status === 401 || tr.status === 403 ? ' (the credentials were refused or are needed)' : ''}`,
      );
    }
    const t = asObject(
      parseJson((await readCapped(bodyOf(tr), this.o.maxJsonBytes, 'the registry token')).buf, 'the registry token'),
      'the registry token',
    );
    const token = optString(t.token, 'token') ?? optString(t.access_token, 'access_token') ?? '';
    return token ? `Bearer ${token}` : undefined;
  }

  /** A manifest by tag or digest, bounded; a digest is checked against the content. */
  async manifest(
    refOrDigest: string,
    what: string,
    signal: AbortSignal,
  ): Promise<{ buf: Buffer; digest: string; mediaType: string; doc: Record<string, Json> }> {
    const r = await this.get(`${this.base}/manifests/${refOrDigest}`, MANIFEST_ACCEPT, signal);
    const { buf, hex } = await readCapped(bodyOf(r), this.o.maxJsonBytes, what);
    if (refOrDigest.startsWith('sha256:') && `sha256:${hex}` !== refOrDigest)
      throw new TsswarmError(
        'UNAVAILABLE',
        `${this.o.verb}: ${what} arrived corrupt (its content does not match ${refOrDigest.slice(0, 19)})`,
      );
    const doc = asObject(parseJson(buf, what), what);
    const mediaType = optString(doc.mediaType, `${what} mediaType`) || (r.headers.get('content-type') ?? '').split(';')[0]!.trim();
    return { buf, digest: `sha256:${hex}`, mediaType, doc };
  }

  /** A small JSON blob (an image config), bounded and checked against its digest. */
  async jsonBlob(digest: string, what: string, signal: AbortSignal): Promise<Json> {
    const hex = checkDigest(digest, what);
    const r = await this.get(`${this.base}/blobs/${digest}`, undefined, signal);
    const got = await readCapped(bodyOf(r), this.o.maxJsonBytes, what);
    if (got.hex !== hex)
      throw new TsswarmError('UNAVAILABLE', `${this.o.verb}: ${what} arrived corrupt (its content does not match its digest)`);
    return parseJson(got.buf, what);
  }
}

/** An OCI platform as dockerd's DistributionInspect lists it (lower-case keys). */
export interface DistributionPlatform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

/** What `GET /distribution/{name}/json` answers. */
export interface DistributionInspect {
  Descriptor: { mediaType: string; digest: string; size: number };
  Platforms: DistributionPlatform[];
}

function platformOf(v: Json, field: string): DistributionPlatform | undefined {
  if (v === undefined || v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const p = v as Record<string, Json>;
  const out: DistributionPlatform = {
    architecture: optString(p.architecture, `${field}.architecture`) ?? '',
    os: optString(p.os, `${field}.os`) ?? '',
  };
  const variant = optString(p.variant, `${field}.variant`);
  if (variant) out.variant = variant;
  const osVersion = optString(p['os.version'], `${field}.os.version`);
  if (osVersion) out['os.version'] = osVersion;
  if (Array.isArray(p['os.features'])) out['os.features'] = p['os.features'].filter((x): x is string => typeof x === 'string').slice(0, 64);
  return out.architecture || out.os ? out : undefined;
}

/**
 * The descriptor and platforms of a manifest document, as dockerd builds them
 * (pure): an index lists its entries' platforms; a single manifest's comes
 * from its config, read by `config` only when needed.
 */
export async function describeManifest(
  m: { buf: Buffer; digest: string; mediaType: string; doc: Record<string, Json> },
  config: (digest: string) => Promise<Json>,
): Promise<DistributionInspect> {
  const out: DistributionInspect = { Descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.buf.length }, Platforms: [] };
  if (m.doc.manifests !== undefined) {
    const list = asArray(m.doc.manifests, 'the index manifests');
    if (list.length > 1024) throw new TsswarmError('INVALID_ARGUMENT', `the index lists ${list.length} manifests: at most 1024 are read`);
    for (const [k, e] of list.entries()) {
      const p = platformOf(asObject(e, `manifests[${k}]`).platform, `manifests[${k}].platform`);
      if (p) out.Platforms.push(p);
    }
    return out;
  }
  if (m.doc.config !== undefined) {
    const c = asObject(m.doc.config, 'the manifest config');
    const digest = checkDigest(c.digest, 'the manifest config.digest');
    const p = platformOf(await config(`sha256:${digest}`).catch(() => undefined), 'the image config');
    if (p) out.Platforms.push(p);
  }
  return out;
}

/** Splits a reference (already normalized: familiar or qualified) for the registry, tag and digest apart. */
export function registryRef(ref: string): RegistryRef {
  const r = ref.trim().replace(/^(docker\.io|index\.docker\.io|registry-1\.docker\.io)\//, '');
  const first = r.split('/')[0]!;
  const hasRegistry = r.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = hasRegistry ? first : 'registry-1.docker.io';
  let rest = hasRegistry ? r.slice(first.length + 1) : r;
  if (!hasRegistry && !rest.includes('/')) rest = `library/${rest}`;
  let digest = '';
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  const hasTag = colon > rest.lastIndexOf('/');
  return { registry, repo: hasTag ? rest.slice(0, colon) : rest, tag: hasTag ? rest.slice(colon + 1) : digest ? '' : 'latest', digest };
}

/**
 * What the registry says of a reference (`GET /distribution/{name}/json`): the
 * manifest the tag names (or the digest pins, checked), its media type, digest
 * and size, and the platforms it holds.
 */
export async function resolveDescriptor(
  reference: string,
  o: { insecure?: readonly string[]; auth?: RegistryAuth; maxJsonBytes?: number; signal?: AbortSignal; certsDir?: string },
): Promise<DistributionInspect> {
  const ref = registryRef(reference);
  if (ref.digest) checkDigest(ref.digest, `the digest in ${reference}`);
  const maxJsonBytes = o.maxJsonBytes ?? 4 * 1024 * 1024;
  const plainHttp = registryIsInsecure(ref.registry, o.insecure);
  const s = new RegistrySession(ref, {
    plainHttp,
    tls: plainHttp ? undefined : registryTls(o.certsDir ?? DEFAULT_CERTS_DIR, ref.registry),
    auth: o.auth,
    maxJsonBytes,
    verb: `resolving ${reference}`,
  });
  const signal = o.signal ?? AbortSignal.timeout(30_000);
  const m = await s.manifest(ref.digest || ref.tag, `the manifest of ${reference}`, signal);
  return describeManifest(m, (d) => s.jsonBlob(d, `the image config ${d.slice(0, 19)}`, signal));
}

/** sha256 of bytes as a digest. */
export const digestOf = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * `tsswarm login`: GET /v2/ on the registry and answer its challenge with the
 * credentials (Basic, or a Bearer token from the realm asked with them), as
 * dockerd checks a login. A registry that asks for nothing accepts anyone.
 * Throws a RegistryError (401) when the credentials are refused.
 */
export async function checkLogin(
  registry: string,
  auth: RegistryAuth,
  o: { insecure?: readonly string[]; certsDir?: string; signal?: AbortSignal } = {},
): Promise<void> {
  // HOST[:PORT] only: the name is a URL's authority and a certs.d directory.
  if (registry.length > 255 || !/^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:]+\](:\d{1,5})?$/.test(registry))
    throw new UsageError(`${JSON.stringify(registry.slice(0, 64))} is not a registry: give HOST[:PORT]`, {
      field: 'registry',
    });
  const plainHttp = registryIsInsecure(registry, o.insecure);
  const s = new RegistrySession(
    { registry, repo: '', tag: '', digest: '' },
    {
      plainHttp,
      tls: plainHttp ? undefined : registryTls(o.certsDir ?? DEFAULT_CERTS_DIR, registry),
      auth,
      maxJsonBytes: 1024 * 1024,
      verb: `logging in to ${registry}`,
    },
  );
  const r = await s.get(`${plainHttp ? 'http' : 'https'}://${registry}/v2/`, undefined, o.signal ?? AbortSignal.timeout(30_000));
  await r.body?.cancel();
}
