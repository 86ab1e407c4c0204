// `--env-file FILE` as the docker CLI reads it: one KEY=VALUE a line, the
// value taken as written (no quotes removed, no expansion), `#` comments and
// blank lines skipped, a bare KEY taken from the caller's environment (and
// skipped when unset there). The file is read whole, so it is bounded.
import { readFileSync, statSync } from 'node:fs';
import { UsageError } from '../lib/errors.js';

/** The most of an env file read: far above any real one, and well under what a spec may carry. */
export const ENV_FILE_MAX_BYTES = 1024 * 1024;

/** The entries of an env file's text, in order. */
export function parseEnvFile(field: string, path: string, text: string, env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) return;
    const where = `${field} ${path} line ${i + 1}`;
    const eq = line.indexOf('=');
    const key = eq < 0 ? line.replace(/\s+$/, '') : line.slice(0, eq);
    if (!key) throw new UsageError(`${where}: no variable name before "=": write KEY=VALUE`, { field });
    if (/\s/.test(key)) throw new UsageError(`${where}: variable name "${key}" contains white space: write KEY=VALUE`, { field });
    if (/\0/.test(line)) throw new UsageError(`${where}: holds a NUL character`, { field });
    if (eq >= 0) out.push(line);
    else if (env[key] !== undefined) out.push(`${key}=${env[key]}`);
  });
  return out;
}

/** Reads an env file from disk, refusing a directory, a missing file or one above ENV_FILE_MAX_BYTES. */
export function readEnvFileText(field: string, path: string): string {
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UsageError(`${field} ${path} is not a regular file: give a file of KEY=VALUE lines`, { field });
    if (st.size > ENV_FILE_MAX_BYTES)
      throw new UsageError(`${field} ${path} is ${st.size} bytes: at most ${ENV_FILE_MAX_BYTES} (1 MiB) are read`, { field });
    const b = readFileSync(path);
    if (b.length > ENV_FILE_MAX_BYTES)
      throw new UsageError(`${field} ${path} is over ${ENV_FILE_MAX_BYTES} bytes: at most 1 MiB is read`, { field });
    const text = b.toString('utf8');
    if (text.includes('\uFFFD') && !b.includes(Buffer.from('\uFFFD')))
      throw new UsageError(`${field} ${path} is not UTF-8 text: save it as UTF-8`, { field });
    return text;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`${field} ${path} cannot be read: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { field });
  }
}
