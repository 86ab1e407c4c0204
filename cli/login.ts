// `tsswarm login` and `tsswarm logout`, as the docker CLI's: the daemon checks
// the credentials against the registry (its certs.d CA and insecure
// registries apply), then they are kept in the docker CLI's config file
// (registry-auth.ts), where `--with-registry-auth` reads them.
import { UsageError } from '../lib/errors.js';
import { daemonApi } from './client.js';
import { leaf } from './command.js';
import {
  DOCKER_HUB_REGISTRY,
  DOCKER_HUB_SERVER,
  dockerConfigPath,
  readDockerConfig,
  serverKey,
  withLogin,
  withoutLogin,
  writeDockerConfig,
} from './registry-auth.js';
import { stdin } from './stdin.js';

const MAX_PASSWORD_BYTES = 16 * 1024;

/** The password given on standard input, without its trailing newline (as docker reads it). */
async function passwordFromStdin(): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of stdin()) {
    const b = Buffer.from(chunk);
    parts.push(b);
    n += b.length;
    if (n > MAX_PASSWORD_BYTES) throw new UsageError(`--password-stdin: more than ${MAX_PASSWORD_BYTES} bytes on standard input`);
  }
  return Buffer.concat(parts)
    .toString('utf8')
    .replace(/[\r\n]+$/, '');
}

export const loginCommand = leaf({
  name: 'login',
  summary: 'Log in to a registry',
  usage: '[OPTIONS] [SERVER]',
  description: `Checks the credentials against the registry (through the daemon, with its certs.d and insecure registries) and stores them in the docker CLI's config file ($DOCKER_CONFIG/config.json, else ~/.docker/config.json; mode 0600), where --with-registry-auth reads them. Without SERVER: Docker Hub (${DOCKER_HUB_SERVER}). Credential helpers (credsStore, credHelpers) are not run: a server one holds is refused.`,
  flags: {
    username: { type: 'string', short: 'u', valueName: 'USER', description: 'Username' },
    password: { type: 'string', short: 'p', valueName: 'PASSWORD', description: 'Password (prefer --password-stdin)' },
    'password-stdin': { type: 'boolean', description: 'Take the password from stdin' },
  },
  async run({ flags, positionals, io }) {
    if (positionals.length > 1) throw new UsageError('give at most one server: tsswarm login [OPTIONS] [SERVER]');
    const key = serverKey(positionals[0]);
    const registry = key === DOCKER_HUB_SERVER ? DOCKER_HUB_REGISTRY : key;
    const username = flags.username?.trim() ?? '';
    if (flags['password-stdin'] && flags.password !== undefined)
      throw new UsageError('--password and --password-stdin are mutually exclusive', { field: '--password-stdin' });
    if (!username)
      throw new UsageError('give the username: tsswarm login -u USER --password-stdin [SERVER] (tsswarm does not prompt)', {
        field: '--username',
      });
    let password = flags.password ?? '';
    if (flags['password-stdin']) password = await passwordFromStdin();
    else if (flags.password !== undefined) io.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    if (!password)
      throw new UsageError('give the password: --password-stdin (read from standard input) or -p PASSWORD', { field: '--password' });
    const path = dockerConfigPath();
    // Refused before the registry is asked when a credential helper holds this server.
    const next = withLogin(readDockerConfig(path), key, username, password, path);
    const r = await daemonApi('registryLogin', { registry, username, password }, 60_000);
    writeDockerConfig(path, next);
    io.stdout.write(`${r.status || 'Login Succeeded'}\n`);
    return 0;
  },
});

export const logoutCommand = leaf({
  name: 'logout',
  summary: 'Log out from a registry',
  usage: '[SERVER]',
  description: `Removes the server's credentials from the docker CLI's config file. Without SERVER: Docker Hub (${DOCKER_HUB_SERVER}).`,
  flags: {},
  async run({ positionals, io }) {
    if (positionals.length > 1) throw new UsageError('give at most one server: tsswarm logout [SERVER]');
    const key = serverKey(positionals[0]);
    const path = dockerConfigPath();
    const next = withoutLogin(readDockerConfig(path), key);
    if (!next) {
      io.stdout.write(`Not logged in to ${key}\n`);
      return 0;
    }
    io.stdout.write(`Removing login credentials for ${key}\n`);
    writeDockerConfig(path, next);
    return 0;
  },
});
