// Reads compose files as `docker stack deploy -c A -c B` does: per file,
// YAML → version → forbidden keys → interpolation → schema → normalise;
// then the merge. The result is one compose config in normalised form,
// which convert.ts turns into Docker objects.
import { ComposeError } from './errors.js';
import { type Environment, interpolate } from './interpolate.js';
import { mergeFiles } from './merge.js';
import { type NormalizeContext, normalizeServices } from './normalize.js';
import { LATEST_MINOR, validateCompose } from './schema.js';
import { lineOf, parseComposeYaml, type YamlMap } from './yaml.js';

export interface ComposeFile {
  /** The file's name for messages (`-` for stdin). */
  name: string;
  text: string;
}

export interface LoadOptions {
  /** The variables interpolation sees (docker: the CLI's environment; `.env` is never read). */
  env: Environment;
  /** Absolute: the first file's directory, against which relative paths resolve. */
  workingDir: string;
  /**
   * Reads a file the compose file names (env_file, secret and config files):
   * the caller refuses anything but a regular file and anything larger than
   * maxBytes. The loader itself touches no disk.
   */
  readFile: (path: string, maxBytes: number) => Uint8Array;
}

export interface LoadedCompose {
  /** `3.N`, the version every file agreed on. */
  version: string;
  config: YamlMap;
  warnings: string[];
}

/** docker's `Compose file contains unsupported options` keys, with the hint docker prints for each. */
export const FORBIDDEN: Record<string, string> = {
  extends: 'Support for `extends` is not implemented yet.',
  volume_driver:
    'Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there.',
  volumes_from:
    'To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.',
  cpu_quota: 'Set resource limits using deploy.resources',
  cpu_shares: 'Set resource limits using deploy.resources',
  cpuset: 'Set resource limits using deploy.resources',
  mem_limit: 'Set resource limits using deploy.resources',
  memswap_limit: 'Set resource limits using deploy.resources',
};

/** The version a file asks for, as a minor number of 3. */
export function composeMinor(file: YamlMap): number {
  if (!('version' in file)) return LATEST_MINOR;
  const v = file.version;
  if (typeof v !== 'string') throw new ComposeError('version must be a string');
  if (v === '' || v === '3') return LATEST_MINOR;
  const m = /^3\.(\d+)$/.exec(v);
  const minor = m ? Number(m[1]) : Number.NaN;
  if (!(minor >= 0 && minor <= LATEST_MINOR) || String(minor) !== m?.[1]) throw new ComposeError(`unsupported Compose file version: ${v}`);
  return minor;
}

function checkForbidden(file: YamlMap): void {
  const services = file.services;
  if (!services || typeof services !== 'object' || Array.isArray(services)) return;
  const found = new Set<string>();
  for (const svc of Object.values(services))
    if (svc && typeof svc === 'object' && !Array.isArray(svc)) for (const k of Object.keys(svc)) if (k in FORBIDDEN) found.add(k);
  if (found.size === 0) return;
  const blocks = [...found].sort().map((k) => `${k}: ${FORBIDDEN[k]}`);
  throw new ComposeError(`Compose file contains unsupported options:\n\n${blocks.join('\n\n')}\n`);
}

/** Loads and merges the files; throws a ComposeError with docker's text. */
export function loadComposeFiles(files: readonly ComposeFile[], options: LoadOptions): LoadedCompose {
  if (files.length === 0) throw new ComposeError('Specify a Compose file (with --compose-file)');
  const warnings: string[] = [];
  const ctx: NormalizeContext = { ...options, warnings };
  const loaded: YamlMap[] = [];
  let version: string | undefined;
  for (const f of files) {
    const raw = parseComposeYaml(f.text);
    const minor = composeMinor(raw);
    const v = `3.${minor}`;
    if (version !== undefined && v !== version) throw new ComposeError(`version mismatched between two composefiles : ${version} and ${v}`);
    version = v;
    checkForbidden(raw);
    const file = interpolate(raw, options.env);
    try {
      validateCompose(file, minor);
    } catch (err) {
      if (err instanceof ComposeError && err.path) {
        const line = lineOf(f.text, err.path);
        if (line !== undefined) err.where = `${f.name}, line ${line}`;
      }
      throw err;
    }
    if (file.services && typeof file.services === 'object') file.services = normalizeServices(file.services as YamlMap, ctx);
    loaded.push(file);
  }
  return { version: version as string, config: mergeFiles(loaded), warnings };
}
