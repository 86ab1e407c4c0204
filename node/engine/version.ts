// The Engine API versions this server speaks, and dockerd's checks of the
// version a request names in its path (`/v1.41/...`; none means the newest).
import { DockerError } from './errors.js';

/**
 * The highest version we advertise. 1.41 (Docker 20.10) is enough for every
 * command of the docker CLI v28 the research note lists, and it is the first
 * at which `GET /services?status=true` counts replicas; a higher one would
 * promise fields (e.g. 1.44's health start interval) tsswarm does not honour.
 */
export const API_VERSION = '1.41';
/** The lowest version accepted, as dockerd's default minimum. */
export const MIN_API_VERSION = '1.24';

/** -1, 0 or 1 as a is below, equal to or above b, comparing dotted numbers part by part. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** The path's version prefix split off: `/v1.41/info` → `{version: '1.41', path: '/info'}`; no prefix: the path as it is. */
export function splitVersion(path: string): { version: string | undefined; path: string } {
  const m = /^\/v([0-9.]+)(\/.*)?$/.exec(path);
  if (!m) return { version: undefined, path };
  return { version: m[1]!, path: m[2] ?? '/' };
}

/** The version a request is served at, or dockerd's 400 when it is outside [MIN_API_VERSION, API_VERSION]. */
export function checkVersion(version: string | undefined): string {
  const v = version ?? API_VERSION;
  if (compareVersions(v, MIN_API_VERSION) < 0)
    throw new DockerError(
      400,
      `client version ${v} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    );
  if (compareVersions(v, API_VERSION) > 0)
    throw new DockerError(400, `client version ${v} is too new. Maximum supported API version is ${API_VERSION}`);
  return v;
}
