// `tsswarm ca client-cert`: an operator's client certificate for the Docker
// Engine API over TCP (docs/engine-api.md). The key is made here and never
// leaves this host; only a CSR goes to the leader, which signs it with the
// operator role. The files are what the docker CLI's DOCKER_CERT_PATH holds:
// ca.pem, cert.pem, key.pem (0600).
import { mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../lib/errors.js';
import { writeFileAtomic } from '../lib/files.js';
import { parseGoDuration } from '../spec/cluster.js';
import {
  createCSR,
  DEFAULT_OPERATOR_CERT_VALIDITY_MS,
  generateNodeKey,
  MAX_OPERATOR_CERT_VALIDITY_MS,
  MIN_OPERATOR_CERT_VALIDITY_MS,
  OPERATOR_NAME_PATTERN,
} from '../ca/index.js';
import { controlApi } from './client.js';
import { type Command, group, leaf } from './command.js';

/** `--expiry`: a Go duration from 1m to a year; the default 30 days. */
export function parseOperatorExpiry(text: string | undefined): number {
  if (text === undefined) return DEFAULT_OPERATOR_CERT_VALIDITY_MS;
  const ms = parseGoDuration('--expiry', text);
  if (ms < MIN_OPERATOR_CERT_VALIDITY_MS || ms > MAX_OPERATOR_CERT_VALIDITY_MS)
    throw UsageError.invalid('--expiry', 'a duration from 1m to 8760h (one year), e.g. 720h for 30 days (the default)', text);
  return ms;
}

/** `--name`: the certificate's CN; default the user who ran the command (sudo's caller, else the login name). */
export function operatorName(given: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const name = given ?? (env.SUDO_USER || userInfo().username || 'operator');
  if (!OPERATOR_NAME_PATTERN.test(name))
    throw UsageError.invalid('--name', 'letters, digits and . _ @ -, starting with a letter or digit, at most 64 characters', name);
  return name;
}

/** Writes a file whole or not at all, with its mode from the start (a key is never readable by others, not even briefly). */

const clientCertCommand = leaf({
  name: 'client-cert',
  summary: 'Get an operator client certificate for the Docker Engine API over TCP',
  usage: '--out DIR [OPTIONS]',
  description:
    'Makes a key here, has the leader sign it with the operator role, and writes DIR/ca.pem (the roots the cluster trusts), ' +
    'DIR/cert.pem and DIR/key.pem (mode 0600), as the docker CLI reads them from DOCKER_CERT_PATH. Run it on a manager: ' +
    'whoever can use its socket may already do anything the certificate allows. The certificate cannot be revoked on its ' +
    'own: keep its expiry short; a root CA rotation (`tsswarm swarm ca --rotate`) voids every certificate of the old root.',
  flags: {
    out: {
      type: 'string',
      short: 'o',
      valueName: 'DIR',
      description: 'Directory to write ca.pem, cert.pem and key.pem to (made 0700 when missing)',
    },
    expiry: { type: 'string', valueName: 'DURATION', description: 'Validity, from 1m to 8760h (default 720h: 30 days)' },
    name: {
      type: 'string',
      valueName: 'NAME',
      description: "Operator's name, the certificate's CN (default: the user running the command)",
    },
  },
  async run({ flags, positionals, io, path }) {
    if (positionals.length) throw new UsageError(`"${path}" accepts no arguments (got "${positionals.join(' ')}")`);
    if (!flags.out) throw new UsageError(`"${path}" needs --out DIR: where to write ca.pem, cert.pem and key.pem`, { field: '--out' });
    const validityMs = parseOperatorExpiry(flags.expiry);
    const name = operatorName(flags.name);
    const dir = resolve(flags.out);
    const key = generateNodeKey();
    const issued = await controlApi('issueOperatorCertificate', {
      csrPem: createCSR(key.privateKeyPem, { nodeId: name }),
      name,
      validityMs,
    });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // The key first: a certificate on disk always has its key.
    writeFileAtomic(join(dir, 'key.pem'), key.privateKeyPem, 0o600);
    writeFileAtomic(join(dir, 'cert.pem'), issued.certPem, 0o644);
    writeFileAtomic(join(dir, 'ca.pem'), issued.caCertPem, 0o644);
    const until = new Date(Number(issued.notAfterMs)).toISOString();
    io.stdout.write(
      `Wrote ${join(dir, 'ca.pem')}, cert.pem and key.pem: operator ${name}, serial ${issued.serial}, valid until ${until}.\n` +
        `Use it with: DOCKER_HOST=tcp://NODE:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=${dir} docker info\n`,
    );
    return 0;
  },
});

export const caCommand: Command = group({
  name: 'ca',
  summary: 'Client certificates of the cluster CA (the Docker Engine API over TCP)',
  subcommands: () => [clientCertCommand],
});
