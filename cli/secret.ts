// `tsswarm secret create|ls|inspect|rm` and `tsswarm config create|ls|inspect|rm`,
// as docker's. The value comes from a file or standard input (`-`), is checked
// with the code the managers run (spec/secret.ts) before it is sent, and is
// never shown again for a secret (the managers do not answer it); a config's
// data is shown by `config inspect`, as docker does.
import { readFileSync, statSync } from 'node:fs';
import { TsswarmError, UsageError } from '../lib/errors.js';
import { type Config, ConfigSpec, type Secret, SecretSpec } from '../proto/gen/objects.js';
import { checkObjectData, type FileObjectKind, MAX_FILE_OBJECT_BYTES, validateConfigSpec, validateSecretSpec } from '../spec/index.js';
import { checkFilterKeys, type DockerFilters, anyOf, anyPrefix, filterValues, matchLabels } from '../spec/docker/filters.js';
import { CONFIG_FIELDS, filtersFromFlags, formatChoice, labelsText, renderList, SECRET_FIELDS } from './format.js';
import { controlApi, controlRead } from './client.js';
import { type Command, forEachArg, group, type Io, leaf } from './command.js';
import { type Stdin, stdin as stdinSource } from './stdin.js';
import { ago, table } from './table.js';
export { setStdin } from './stdin.js';

/**
 * The value of `create NAME FILE|-`: the file's bytes, or standard input's
 * for `-`. What is too large is refused before it is all read (a regular
 * file by its size, standard input as soon as it passes the limit).
 */
export async function readValue(kind: FileObjectKind, path: string, stdin: Stdin = stdinSource()): Promise<Uint8Array> {
  if (path === '-') {
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of stdin) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
      parts.push(b);
      n += b.length;
      if (n >= MAX_FILE_OBJECT_BYTES) checkObjectData(kind, n);
    }
    return new Uint8Array(Buffer.concat(parts));
  }
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new UsageError(`FILE ${path} is a directory: give a file, or - to read standard input`, { field: 'FILE' });
    size = st.size;
  } catch (e) {
    if (e instanceof TsswarmError) throw e;
    throw new UsageError(
      `FILE ${path} cannot be read: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      {
        field: 'FILE',
      },
    );
  }
  if (size >= MAX_FILE_OBJECT_BYTES) checkObjectData(kind, size);
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new UsageError(`FILE ${path} cannot be read: ${(e as Error).message}`, { field: 'FILE' });
  }
}

function labelsOf(flags: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const l of flags) {
    const eq = l.indexOf('=');
    if (eq === 0 || l === '') throw UsageError.invalid('--label', 'KEY=VALUE or KEY', l);
    labels[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return labels;
}

/** `create [--label k=v] NAME FILE|-` → the spec to send, checked as the managers check it. */
export async function createSpec(
  kind: FileObjectKind,
  labelFlags: readonly string[],
  positionals: readonly string[],
  stdin?: Stdin,
): Promise<SecretSpec | ConfigSpec> {
  if (positionals.length !== 2)
    throw new UsageError(
      `give a name and a file (or - for standard input): tsswarm ${kind} create [OPTIONS] ${kind.toUpperCase()} FILE|- (got ${positionals.length} argument${positionals.length === 1 ? '' : 's'})`,
      { field: 'NAME' },
    );
  const [name, path] = positionals as [string, string];
  const labels = labelsOf(labelFlags);
  // The name first: a bad name is refused before a large input is read.
  const probe = { name, labels, data: new Uint8Array(1) };
  if (kind === 'secret') validateSecretSpec(probe);
  else validateConfigSpec(probe);
  const data = await readValue(kind, path, stdin);
  const spec = { name, labels, data };
  return kind === 'secret' ? validateSecretSpec(SecretSpec.create(spec)) : validateConfigSpec(ConfigSpec.create(spec));
}

const iso = (ms: number): string | undefined => (ms ? new Date(ms).toISOString() : undefined);

/** A secret or config as `inspect` shows it: docker's shape (a config with its data, base64 as docker's JSON has it). */
export function objectJson(kind: FileObjectKind, o: Secret | Config): object {
  const spec: Record<string, unknown> = { Name: o.spec.name, Labels: { ...o.spec.labels } };
  if (kind === 'config') spec.Data = Buffer.from(o.spec.data).toString('base64');
  return {
    ID: o.meta.id,
    Version: { Index: o.meta.version },
    CreatedAt: iso(o.meta.createdAt),
    UpdatedAt: iso(o.meta.updatedAt),
    Spec: spec,
  };
}

/** docker's `--pretty` time: `2026-12-07 15:16:06.123 +0000 utc`. */
function prettyTime(ms: number): string {
  return ms ? `${new Date(ms).toISOString().replace('T', ' ').replace('Z', '')} +0000 utc` : '';
}

/** `inspect --pretty`, as docker's template. */
export function prettyObject(kind: FileObjectKind, o: Secret | Config): string {
  const out = [`ID:              ${o.meta.id}`, `Name:            ${o.spec.name}`];
  const labels = Object.entries(o.spec.labels);
  if (labels.length) out.push('Labels:', ...labels.map(([k, v]) => ` - ${k}${v ? `=${v}` : ''}`));
  if (kind === 'secret') out.push('Driver:          ');
  out.push(`Created at:      ${prettyTime(o.meta.createdAt)}`, `Updated at:      ${prettyTime(o.meta.updatedAt)}`);
  if (kind === 'config') out.push('Data:', Buffer.from(o.spec.data).toString('utf8'));
  return out.join('\n') + '\n';
}

/** `ls` rows: docker's columns (secrets: ID NAME DRIVER CREATED UPDATED; configs: no DRIVER). */
export function objectRows(kind: FileObjectKind, objects: readonly (Secret | Config)[], now = Date.now()): string[][] {
  return objects.map((o) => [
    o.meta.id,
    o.spec.name,
    ...(kind === 'secret' ? [''] : []),
    o.meta.createdAt ? ago(o.meta.createdAt, now) : '',
    o.meta.updatedAt ? ago(o.meta.updatedAt, now) : '',
  ]);
}

/** `secret ls` / `config ls --filter` keys, as the Engine API's: id and name by prefix, names exactly, label KEY or KEY=VALUE. */
export const OBJECT_FILTER_KEYS = ['id', 'name', 'names', 'label'] as const;

/** The filter of `ls --filter`; unknown keys refused as docker's daemon refuses them. */
export function objectFilter(f: DockerFilters): (o: Secret | Config) => boolean {
  checkFilterKeys(f, OBJECT_FILTER_KEYS);
  const ids = filterValues(f, 'id');
  const names = filterValues(f, 'name');
  const exact = filterValues(f, 'names');
  const labels = filterValues(f, 'label');
  return (o) =>
    anyPrefix(o.meta.id, ids) && anyPrefix(o.spec.name, names) && anyOf(o.spec.name, exact) && matchLabels(o.spec.labels ?? {}, labels);
}

/** A listing row as docker's `--format` templates see it (`{{.ID}}`, `{{.Name}}`, `{{.CreatedAt}}`, `{{.Labels}}`). */
export function objectContexts(kind: FileObjectKind, objects: readonly (Secret | Config)[], now = Date.now()): object[] {
  return objects.map((o) => ({
    ID: o.meta.id,
    Name: o.spec.name,
    ...(kind === 'secret' ? { Driver: '' } : {}),
    CreatedAt: o.meta.createdAt ? ago(o.meta.createdAt, now) : '',
    UpdatedAt: o.meta.updatedAt ? ago(o.meta.updatedAt, now) : '',
    Labels: labelsText(o.spec.labels),
  }));
}

function json(io: Io, v: unknown): void {
  io.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

function commandsFor(kind: FileObjectKind): Command {
  const Kind = kind === 'secret' ? 'Secret' : 'Config';
  const KIND = kind.toUpperCase();
  const get = async (io: Io, ref: string): Promise<Secret | Config> =>
    kind === 'secret' ? (await controlRead(io, 'getSecret', { ref })).secret : (await controlRead(io, 'getConfig', { ref })).config;
  const list = async (io: Io): Promise<(Secret | Config)[]> =>
    kind === 'secret' ? (await controlRead(io, 'listSecrets')).secrets : (await controlRead(io, 'listConfigs')).configs;

  const create = leaf({
    name: 'create',
    summary: `Create a ${kind} from a file or STDIN as content`,
    usage: `[OPTIONS] ${KIND} FILE|-`,
    description:
      kind === 'secret'
        ? 'The value (1 byte to 500 KiB) is kept by the managers and never shown again. A secret cannot be changed: to rotate one, create a new secret and move services to it (see docs/secrets.md).'
        : 'The data (1 byte to 500 KiB) is kept by the managers; `config inspect` shows it. A config cannot be changed: create a new one and move services to it.',
    flags: { label: { type: 'string', multiple: true, short: 'l', valueName: 'KEY=VALUE', description: `${Kind} label` } },
    async run({ flags, positionals, io }) {
      const spec = await createSpec(kind, flags.label, positionals);
      const id =
        kind === 'secret'
          ? (await controlApi('createSecret', { spec: spec as SecretSpec })).secret.meta.id
          : (await controlApi('createConfig', { spec: spec as ConfigSpec })).config.meta.id;
      io.stdout.write(`${id}\n`);
      return 0;
    },
  });

  const ls = leaf({
    name: 'ls',
    summary: `List ${kind}s`,
    flags: {
      quiet: { type: 'boolean', short: 'q', description: 'Only display IDs' },
      format: {
        type: 'string',
        valueName: 'FORMAT',
        description: 'Output format: table (default), json, `table TEMPLATE` or a Go template ({{.ID}}, {{.Name}}, {{.Labels}}, ...)',
      },
      filter: {
        type: 'string',
        short: 'f',
        multiple: true,
        valueName: 'KEY=VALUE',
        description: 'Filter as docker: id=PREFIX, name=PREFIX, label=KEY[=VALUE]',
      },
    },
    async run({ flags, positionals, io }) {
      if (positionals.length) throw new UsageError(`"tsswarm ${kind} ls" accepts no arguments (got "${positionals.join(' ')}")`);
      const choice = formatChoice(flags.format);
      const keep = objectFilter(filtersFromFlags(flags.filter)); // refuses unknown keys before anything is asked
      const objects = (await list(io)).filter(keep);
      if (choice.kind === 'json')
        json(
          io,
          objects.map((o) => objectJson(kind, o)),
        );
      else if (choice.kind === 'table' || choice.kind === 'raw')
        io.stdout.write(renderList(choice, kind === 'secret' ? SECRET_FIELDS : CONFIG_FIELDS, objectContexts(kind, objects)));
      else if (flags.quiet) io.stdout.write(objects.map((o) => `${o.meta.id}\n`).join(''));
      else
        io.stdout.write(
          table(
            kind === 'secret' ? ['ID', 'NAME', 'DRIVER', 'CREATED', 'UPDATED'] : ['ID', 'NAME', 'CREATED', 'UPDATED'],
            objectRows(kind, objects),
          ),
        );
      return 0;
    },
  });

  const inspect = leaf({
    name: 'inspect',
    summary: `Display detailed information on one or more ${kind}s (JSON unless --pretty)`,
    usage: `[OPTIONS] ${KIND} [${KIND}...]`,
    flags: { pretty: { type: 'boolean', description: 'Print the information in a human friendly format' } },
    async run({ flags, positionals, io }) {
      if (!positionals.length) throw new UsageError(`give at least one ${kind} (id, id prefix or name)`);
      const found: (Secret | Config)[] = [];
      for (const ref of positionals) found.push(await get(io, ref));
      if (flags.pretty) io.stdout.write(found.map((o) => prettyObject(kind, o)).join('\n'));
      else
        json(
          io,
          found.map((o) => objectJson(kind, o)),
        );
      return 0;
    },
  });

  const rm = leaf({
    name: 'rm',
    summary: `Remove one or more ${kind}s (refused while services use them)`,
    usage: `${KIND} [${KIND}...]`,
    flags: {},
    async run({ positionals, io }) {
      if (!positionals.length) throw new UsageError(`give at least one ${kind} to remove`);
      return forEachArg(io, positionals, async (ref) => {
        if (kind === 'secret') await controlApi('removeSecret', { ref });
        else await controlApi('removeConfig', { ref });
        io.stdout.write(`${ref}\n`);
      });
    },
  });

  const subs: readonly Command[] = [create, inspect, ls, rm];
  return group({ name: kind, summary: `Manage ${kind}s`, subcommands: () => subs });
}

export const secretCommand: Command = commandsFor('secret');
export const configCommand: Command = commandsFor('config');
