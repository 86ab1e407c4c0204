// `tsswarm version`: the version of this tsswarm (from package.json) and of
// the Node.js running it, as text or JSON.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../lib/paths.js';
import { oneOf } from './args.js';
import { leaf } from './command.js';

export interface VersionInfo {
  version: string;
  node: string;
  platform: string;
  arch: string;
}

let cached: string | undefined;

/** tsswarm's version, read from package.json next to cli/. */
export function tsswarmVersion(): string {
  cached ??= (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return cached;
}

export function versionInfo(): VersionInfo {
  return { version: tsswarmVersion(), node: process.version, platform: process.platform, arch: process.arch };
}

export const versionCommand = leaf({
  name: 'version',
  summary: 'Show the tsswarm version information',
  flags: {
    format: { type: 'string', short: 'f', valueName: 'FORMAT', description: 'Output format: text (default) or json' },
  },
  async run({ flags, positionals, io, path }) {
    const format = oneOf('--format', flags.format ?? 'text', ['text', 'json']);
    if (positionals.length) {
      io.stderr.write(`${path}: takes no arguments (got "${positionals.join(' ')}")\n`);
      return 1;
    }
    const v = versionInfo();
    io.stdout.write(
      format === 'json' ? `${JSON.stringify(v)}\n` : `tsswarm version ${v.version}\nnode ${v.node} (${v.platform}/${v.arch})\n`,
    );
    return 0;
  },
});
