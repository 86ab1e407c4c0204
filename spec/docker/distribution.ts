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
}

/** The longest X-Registry-Auth read: an AuthConfig with a token is a few KiB. */
export const MAX_REGISTRY_AUTH_CHARS = 16 * 1024;
const MAX_FIELD_CHARS = 8 * 1024;

/**
 * X-Registry-Auth decoded as dockerd decodes it for this route: base64url
 * (padded or not) JSON of an AuthConfig; an empty, unparsable or `{}` header
 * means no credentials (dockerd ignores a bad one here), `auth` ("user:pass"
 * in base64) stands for username and password. Too long is a 400.
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
    return typeof v === 'string' && v !== '' ? v.slice(0, MAX_FIELD_CHARS) : undefined;
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
  return Object.keys(out).length ? out : undefined;
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
