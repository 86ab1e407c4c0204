// Registry credentials where the docker CLI keeps them: `auths` in
// ~/.docker/config.json (or $DOCKER_CONFIG/config.json), `auth` being base64
// of user:password, the file mode 0600 and every other key of it kept. Read by
// `--with-registry-auth`, written by `tsswarm login`/`logout`. Credential
// helpers (credsStore, credHelpers) are not run: where one holds a server's
// credentials, both refuse, saying so. Pure but for the file functions.
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UsageError } from '../lib/errors.js';

/** Docker Hub's key in `auths`, as the docker CLI writes it. */
export const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';
/** The host Docker Hub's images are pulled from (what the daemon checks a login against). */
export const DOCKER_HUB_REGISTRY = 'registry-1.docker.io';
const MAX_CONFIG_BYTES = 1024 * 1024;

/** The docker CLI's config file: $DOCKER_CONFIG/config.json, else ~/.docker/config.json. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

export type DockerConfig = Record<string, unknown> & {
  auths?: Record<string, { auth?: string; identitytoken?: string; [k: string]: unknown }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
};

/** The config file as JSON ({} when there is none); bounded, and a broken one named. */
export function readDockerConfig(path: string): DockerConfig {
  let text: string;
  try {
    if (statSync(path).size > MAX_CONFIG_BYTES)
      throw new UsageError(`${path} is larger than ${MAX_CONFIG_BYTES} bytes: it is not a docker config file`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  if (text.trim() === '') return {};
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path} is not valid JSON (${(e as Error).message}): fix or remove it`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`${path} is not a JSON object: fix or remove it`);
  const c = doc as DockerConfig;
  if (c.auths !== undefined && (c.auths === null || typeof c.auths !== 'object' || Array.isArray(c.auths)))
    throw new UsageError(`${path}: "auths" is not an object: fix or remove it`);
  return c;
}

/** Writes the config file as the docker CLI does: mode 0600 (its directory 0700 when made here), replaced whole. */
export function writeDockerConfig(path: string, c: DockerConfig): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tss-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(c, null, '\t')}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** A registry address as the docker CLI's hostname conversion reads it: no scheme, no path. */
export function hostnameOf(server: string): string {
  return server
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .split('/')[0]!
    .toLowerCase();
}

const HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/**
 * The key a server is stored under: Docker Hub's is its v1 URL (whatever
 * spelling is given), any other registry its HOST[:PORT].
 */
export function serverKey(server: string | undefined): string {
  if (!server) return DOCKER_HUB_SERVER;
  const host = hostnameOf(server);
  if (!host) throw new UsageError(`"${server}" is not a registry: give HOST[:PORT]`, { field: 'SERVER' });
  return HUB_HOSTS.has(host) ? DOCKER_HUB_SERVER : host;
}

/** The registry an image is pulled from (HOST[:PORT]), as the familiar name is read: no domain is Docker Hub. */
export function imageRegistry(image: string): string {
  const first = image.split('/')[0]!;
  const hasDomain = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  return hasDomain && !HUB_HOSTS.has(first.toLowerCase()) ? first.toLowerCase() : DOCKER_HUB_REGISTRY;
}

/** Refuses when a credential helper holds `key`'s credentials: tsswarm runs none. */
function refuseHelper(c: DockerConfig, key: string, path: string, doing: string): void {
  const helper = c.credHelpers?.[key] ?? c.credHelpers?.[hostnameOf(key)] ?? c.credsStore;
  if (!helper) return;
  const where = c.credHelpers?.[key] || c.credHelpers?.[hostnameOf(key)] ? `credHelpers["${key}"]` : 'credsStore';
  throw new UsageError(
    `${doing}: ${path} sets ${where} to "${helper}", and tsswarm does not run credential helpers: remove it from ${path} to keep the credentials in the file (as docker does without a helper), or log in with docker and give the service its image pulled on every node`,
  );
}

/** An `auths` entry for a registry: its exact key, else one whose hostname is the registry's (as the docker CLI looks up). */
function entryFor(c: DockerConfig, key: string): { key: string; auth?: string; identitytoken?: string } | undefined {
  const auths = c.auths ?? {};
  if (auths[key]) return { key, ...auths[key] };
  const host = key === DOCKER_HUB_SERVER ? undefined : key;
  for (const [k, v] of Object.entries(auths)) {
    const h = hostnameOf(k);
    if (host ? h === host : HUB_HOSTS.has(h)) return { key: k, ...v };
  }
  return undefined;
}

/** `tsswarm login`'s record: base64 user:password under the server's key, the rest of the file as it was. */
export function withLogin(c: DockerConfig, key: string, username: string, password: string, path = 'the docker config'): DockerConfig {
  refuseHelper(c, key, path, `storing the credentials for ${key}`);
  const auths = { ...(c.auths ?? {}) };
  auths[key] = { ...(auths[key] ?? {}), auth: Buffer.from(`${username}:${password}`).toString('base64') };
  delete auths[key]!.identitytoken;
  return { ...c, auths };
}

/** `tsswarm logout`'s change: the server's entry removed (found as the lookup finds it); undefined when there was none. */
export function withoutLogin(c: DockerConfig, key: string): DockerConfig | undefined {
  const e = entryFor(c, key);
  if (!e) return undefined;
  const auths = { ...(c.auths ?? {}) };
  delete auths[e.key];
  return { ...c, auths };
}

/**
 * The X-Registry-Auth value (base64url JSON AuthConfig, as the docker CLI
 * encodes it) for an image's registry from the config; undefined when there
 * is no login for it (nothing is sent, and a service keeps what it has).
 */
export function encodedAuthFor(c: DockerConfig, image: string, path = 'the docker config'): string | undefined {
  const registry = imageRegistry(image);
  const key = registry === DOCKER_HUB_REGISTRY ? DOCKER_HUB_SERVER : registry;
  const e = entryFor(c, key);
  const doc: Record<string, string> = {};
  if (e?.auth) {
    const text = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon <= 0) throw new UsageError(`${path}: the "auth" of ${e.key} is not base64 of USER:PASSWORD: log in again`);
    doc.username = text.slice(0, colon);
    doc.password = text.slice(colon + 1);
  }
  if (e?.identitytoken) doc.identitytoken = e.identitytoken;
  if (!doc.username && !doc.identitytoken) refuseHelper(c, key, path, `reading the credentials for ${key}`);
  if (!Object.keys(doc).length) return undefined;
  doc.serveraddress = e!.key;
  return Buffer.from(JSON.stringify(doc)).toString('base64url');
}
