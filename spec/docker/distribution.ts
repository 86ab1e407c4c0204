// `GET /distribution/{name}/json` as dockerd reads its request: the image
// reference (a name with a tag and/or a digest; a bare image id has no
// manifest), and the registry credentials of `X-Registry-Auth` (base64url
// JSON AuthConfig), bounded and never echoed. Pure.
import { TsswarmError, UsageError } from '../../lib/errors.js';

/** The credentials an AuthConfig carries (the registry client's RegistryAuth, without importing agent/). */
export interface DockerRegistryAuth {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
  /**
   * The registry the credentials are for, as the AuthConfig's serveraddress
   * names it (the docker CLI and tsswarm's own always send it); set only with
   * credentials. See credentialsFitImage for one without it.
   */
  serverAddress?: string;
}

/**
 * X-Registry-Auth that carries no credentials (`{}` in base64url, as the
 * docker CLI sends `--with-registry-auth` without a login): given in a spec
 * it replaces the credentials a service holds with none, as dockerd replaces
 * PullOptions.RegistryAuth whenever the header comes.
 */
export const EMPTY_REGISTRY_AUTH = Buffer.from('{}').toString('base64url');

/** The longest X-Registry-Auth read: an AuthConfig with a token is a few KiB. */
export const MAX_REGISTRY_AUTH_CHARS = 16 * 1024;
const MAX_FIELD_CHARS = 8 * 1024;

/**
 * X-Registry-Auth decoded as dockerd decodes it for this route: base64url
 * (padded or not) JSON of an AuthConfig; an empty, unparsable or `{}` header
 * means no credentials (dockerd ignores a bad one here), `auth` ("user:pass"
 * in base64) stands for username and password. Too long, as a whole or in one
 * field, is a 400: a field is never cut, which would send other credentials.
 */
export function decodeRegistryAuth(header: string | string[] | undefined): DockerRegistryAuth | undefined {
  const raw = Array.isArray(header) ? header[0] : header;
  if (raw === undefined || raw.trim() === '') return undefined;
  if (raw.length > MAX_REGISTRY_AUTH_CHARS)
    throw new UsageError(
      `X-Registry-Auth is ${raw.length} characters long: at most ${MAX_REGISTRY_AUTH_CHARS} are read (log in again to get a shorter token)`,
      { field: 'X-Registry-Auth' },
    );
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(raw.trim(), 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const d = doc as Record<string, unknown>;
  const field = (k: string): string | undefined => {
    const v = d[k];
    if (typeof v !== 'string' || v === '') return undefined;
    if (v.length > MAX_FIELD_CHARS)
      throw new UsageError(
        `X-Registry-Auth: its "${k}" is ${v.length} characters long: at most ${MAX_FIELD_CHARS} are read (log in again to get a shorter token)`,
        { field: 'X-Registry-Auth' },
      );
    return v;
  };
  const out: DockerRegistryAuth = {};
  let username = field('username');
  let password = field('password');
  const combined = field('auth');
  if (!username && !password && combined) {
    const text = Buffer.from(combined, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon > 0) {
      username = text.slice(0, colon);
      password = text.slice(colon + 1);
    }
  }
  if (username) out.username = username;
  if (password) out.password = password;
  const identity = field('identitytoken');
  if (identity) out.identityToken = identity;
  const token = field('registrytoken');
  if (token) out.registryToken = token;
  if (!Object.keys(out).length) return undefined;
  const server = field('serveraddress');
  if (server) out.serverAddress = server;
  return out;
}

/** Docker Hub's names for itself; its registry is registry-1.docker.io. */
const HUB_HOSTS = /^(docker\.io|index\.docker\.io|registry-1\.docker\.io|registry\.hub\.docker\.com)$/;
/** Docker Hub's registry, as image references and serveraddresses name it here. */
export const HUB_REGISTRY = 'registry-1.docker.io';

/**
 * The registry (HOST[:PORT], lower case) an AuthConfig's serveraddress names,
 * as dockerd reads it: no scheme, no path; empty or any of Docker Hub's names
 * is Docker Hub. Not a registry is a UsageError naming `field`.
 */
export function serverRegistry(serveraddress: unknown, field = 'serveraddress'): string {
  const host = (typeof serveraddress === 'string' ? serveraddress : '')
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .split('/')[0]!
    .toLowerCase();
  if (host.length > 255 || (host && !/^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:]+\](:\d{1,5})?$/.test(host)))
    throw new UsageError(`${field} is not a registry: give HOST[:PORT]`, { field });
  return !host || HUB_HOSTS.test(host) ? HUB_REGISTRY : host;
}

/** The registry an image reference is pulled from (lower case), as the registry client splits it: no domain is Docker Hub. */
export function imageRegistry(image: string): string {
  const r = image.trim();
  const first = r.split('/')[0]!.toLowerCase();
  const hasDomain = r.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  return hasDomain && !HUB_HOSTS.test(first) ? first : HUB_REGISTRY;
}

/**
 * Whether credentials may be sent when pulling `image`: only to the registry
 * their serveraddress names (Docker Hub's aliases counting as one), so a
 * service moved to another registry never hands it the old one's login.
 * Credentials without a serveraddress (a hand-made header: the docker CLI and
 * tsswarm always send it) are for the image they came with: they fit here,
 * and the manager carries them over an update only while the image stays on
 * the same registry (keepsPullAuth).
 */
export function credentialsFitImage(auth: DockerRegistryAuth, image: string): boolean {
  if (auth.serverAddress === undefined) return true;
  try {
    return serverRegistry(auth.serverAddress) === imageRegistry(image);
  } catch {
    return false;
  }
}

/**
 * Whether a service's stored X-Registry-Auth (`held`, given with `oldImage`)
 * still applies to `newImage` when an update sends none: with a serveraddress,
 * when it names the new image's registry; without one, when the image stays
 * on the registry it had. Unreadable credentials are not kept.
 */
export function keepsPullAuth(held: string, oldImage: string, newImage: string): boolean {
  let auth: DockerRegistryAuth | undefined;
  try {
    auth = decodeRegistryAuth(held);
  } catch {
    return false;
  }
  if (!auth) return false;
  if (auth.serverAddress === undefined) return imageRegistry(oldImage) === imageRegistry(newImage);
  return credentialsFitImage(auth, newImage);
}

const NAME_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN =
  '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?';
const REFERENCE = new RegExp(
  `^(?:(${DOMAIN})/)?(${NAME_COMPONENT}(?:/${NAME_COMPONENT})*)(?::([\\w][\\w.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$`,
);

/**
 * The reference the route resolves, checked as dockerd's reference parser
 * checks it: a 64-hex image id has no manifest (dockerd's words), anything
 * not `[registry/]name[:tag][@sha256:…]` is "invalid reference format" (400).
 */
export function distributionRef(name: string): string {
  if (/^(sha256:)?[0-9a-f]{64}$/.test(name)) throw new TsswarmError('INTERNAL', 'no manifest found for full image ID');
  const m = REFERENCE.exec(name);
  if (!m || name.length > 4096) {
    // dockerd names the repository when only its case is wrong: `Busybox` is library/Busybox.
    const lower = REFERENCE.exec(name.toLowerCase());
    if (lower && name.length <= 4096) {
      const repo = name.slice(lower[1] ? lower[1].length + 1 : 0).split(/[:@]/)[0]!;
      const full = lower[1] ? repo : repo.includes('/') ? repo : `library/${repo}`;
      throw new UsageError(`invalid reference format: repository name (${full}) must be lowercase`, { field: 'name' });
    }
    throw new UsageError('invalid reference format', { field: 'name' });
  }
  // A domain-less first component with a dot or a colon is taken as a registry, as dockerd splits it.
  const path = m[2]!;
  if (path.length > 255)
    throw new UsageError('invalid reference format: repository name must not be more than 255 characters', { field: 'name' });
  return name;
}
