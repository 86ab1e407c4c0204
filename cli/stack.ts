// `tsswarm stack deploy | ls | services | ps | rm`, as docker's: the compose
// loader (spec/compose/) turns the files into the Docker objects `docker
// stack deploy` would create, spec/docker/ turns each ServiceSpec into ours
// (refusing by Docker field path what tsswarm cannot run), and this file
// reads the files, compares with what the stack already has (objects carrying
// com.docker.stack.namespace) and makes the calls. Every service is converted
// before the first write, so a bad file changes nothing.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../lib/errors.js';
import type { NetworkSpec, ServiceSpec } from '../proto/gen/objects.js';
import {
  ComposeError,
  type ComposeFile,
  type ComposeStack,
  type DockerNetworkCreate,
  LABEL_NAMESPACE,
  loadStack,
  MAX_COMPOSE_BYTES,
} from '../spec/compose/index.js';
import { serviceSpecFromDocker } from '../spec/docker/service.js';
import { controlApi, controlRead } from './client.js';
import { applyPin, type ImagePin, resolvePin } from './resolve-image.js';
import { dockerConfigPath, encodedAuthFor, readDockerConfig } from './registry-auth.js';
import { EMPTY_REGISTRY_AUTH } from '../spec/docker/distribution.js';
import { type Command, group, type Io, leaf } from './command.js';
import { serviceRows, taskRows } from './service.js';
import { type Stdin, stdin as stdinSource } from './stdin.js';
import { table } from './table.js';

/**
 * Reads a file a compose file names (env_file, secret, config): a regular
 * file only (no FIFO, device or directory: a named pipe would block, a device
 * never ends), and refused past maxBytes before it is read. Relative paths,
 * `..` included, are the compose file's business, as docker allows them.
 */
export function readRegularFile(path: string, maxBytes: number): Uint8Array {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UsageError(`${path} is not a regular file: a compose file may name regular files only`);
    if (st.size > maxBytes) throw new UsageError(`${path} is ${st.size} bytes: larger than the ${maxBytes} bytes allowed here`);
    const buf = Buffer.alloc(st.size);
    let n = 0;
    while (n < st.size) {
      const r = readSync(fd, buf, n, st.size - n, n);
      if (r === 0) break;
      n += r;
    }
    return new Uint8Array(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/** The -c files (`-` is standard input) and the working directory: the first file's, or the current one for stdin. */
export async function composeInputs(
  paths: readonly string[],
  cwd: string,
  read: (path: string, maxBytes: number) => Uint8Array = readRegularFile,
  stdin: Stdin = stdinSource(),
): Promise<{ files: ComposeFile[]; workingDir: string }> {
  if (paths.length === 0) throw new UsageError('Specify a Compose file (with --compose-file)');
  const files: ComposeFile[] = [];
  for (const p of paths) {
    if (p === '-') {
      const parts: Buffer[] = [];
      let n = 0;
      for await (const chunk of stdin) {
        parts.push(Buffer.from(chunk));
        n += chunk.length;
        if (n > MAX_COMPOSE_BYTES) throw new UsageError(`the compose file on standard input is larger than ${MAX_COMPOSE_BYTES} bytes`);
      }
      files.push({ name: '-', text: Buffer.concat(parts).toString('utf8') });
    } else files.push({ name: p, text: Buffer.from(read(resolve(cwd, p), MAX_COMPOSE_BYTES)).toString('utf8') });
  }
  const first = paths[0] as string;
  return { files, workingDir: first === '-' ? cwd : dirname(resolve(cwd, first)) };
}

/** A Docker network create body as our NetworkSpec; what tsswarm lacks is refused by its Docker field. */
export function networkSpecFromCompose(n: DockerNetworkCreate): NetworkSpec {
  const config = n.IPAM?.Config ?? [];
  if (n.IPAM?.Driver && n.IPAM.Driver !== 'default')
    throw new UsageError(`network ${n.Name}: IPAM.Driver ${n.IPAM.Driver} is not supported by tsswarm (only the default IPAM)`, {
      field: 'IPAM.Driver',
    });
  if (config.length > 1)
    throw new UsageError(`network ${n.Name}: IPAM.Config has ${config.length} subnets: tsswarm networks have one`, {
      field: 'IPAM.Config',
    });
  if (n.Driver !== 'overlay' && n.Driver !== 'bridge')
    throw new UsageError(`network ${n.Name}: driver ${n.Driver} is not supported by tsswarm (overlay only)`, { field: 'Driver' });
  return {
    name: n.Name,
    labels: { ...n.Labels },
    driver: n.Driver,
    subnet: config[0]?.Subnet ?? '',
    gateway: '',
    attachable: n.Attachable,
    internal: n.Internal,
    vni: 0,
    driverOpts: { ...(n.Options ?? {}) },
    ingress: false,
  };
}

/** Each service of the stack as our spec, every one converted before anything is written. */
export function stackServiceSpecs(stack: ComposeStack): ServiceSpec[] {
  return stack.services.map((s) => {
    try {
      return serviceSpecFromDocker(JSON.parse(JSON.stringify(s)));
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`service ${s.Name}: ${err.message}`, { cause: err });
      throw err;
    }
  });
}

const inStack = (ns: string) => (o: { spec?: { labels?: Record<string, string> } }) => o.spec?.labels?.[LABEL_NAMESPACE] === ns;

/** `stack ls` rows: NAME SERVICES, sorted by name. */
export function stackRows(labels: readonly Record<string, string>[]): string[][] {
  const count = new Map<string, number>();
  for (const l of labels) {
    const ns = l[LABEL_NAMESPACE];
    if (ns !== undefined) count.set(ns, (count.get(ns) ?? 0) + 1);
  }
  return [...count.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([ns, n]) => [ns, String(n)]);
}

function stackName(positionals: readonly string[], verb: string): string {
  if (positionals.length !== 1) throw new UsageError(`"tsswarm stack ${verb}" requires exactly 1 argument: the stack's name`);
  return positionals[0] as string;
}

const deploy = leaf({
  name: 'deploy',
  summary: 'Deploy a new stack or update an existing stack',
  usage: '[OPTIONS] STACK',
  description:
    'Reads compose files as docker stack deploy does (v3.0-3.13; variables from the environment only, never .env) and creates or updates networks, secrets, configs and services labelled com.docker.stack.namespace=STACK.',
  flags: {
    'compose-file': {
      type: 'string',
      multiple: true,
      short: 'c',
      valueName: 'FILE',
      description: 'Path to a Compose file, or "-" to read from stdin',
    },
    prune: { type: 'boolean', description: 'Prune services that are no longer referenced' },
    'resolve-image': {
      type: 'string',
      valueName: 'MODE',
      description:
        'Query the registry to resolve image digest and supported platforms ("always", "changed", "never"): the digest is pinned in the spec, as docker stack deploy does; a registry that cannot be reached is a warning and the tag is kept',
    },
    'with-registry-auth': {
      type: 'boolean',
      description: "Send the credentials of `tsswarm login` for each image's registry to the nodes that pull it",
    },
  },
  async run({ flags, positionals, io }) {
    const ns = stackName(positionals, 'deploy');
    const resolveImage = flags['resolve-image'] ?? 'always';
    if (!['always', 'changed', 'never'].includes(resolveImage))
      throw new UsageError(`Invalid option ${resolveImage} for flag --resolve-image`);
    const authPath = dockerConfigPath();
    const authConfig = flags['with-registry-auth'] ? readDockerConfig(authPath) : undefined;
    const { files, workingDir } = await composeInputs(flags['compose-file'], process.cwd());
    let stack: ComposeStack;
    try {
      stack = loadStack(files, ns, { env: process.env, workingDir, readFile: readRegularFile });
    } catch (err) {
      // docker's text first, so the two CLIs read alike; then where it is, which docker does not say.
      if (err instanceof ComposeError && err.where) throw new ComposeError(`${err.message} (${err.where})`);
      throw err;
    }
    for (const w of stack.warnings) io.stderr.write(w.endsWith('\n') ? w : `${w}\n`);
    const specs = stackServiceSpecs(stack);
    const networkSpecs = stack.networks.map(networkSpecFromCompose);

    const services = (await controlRead(io, 'listServices')).services.map((s) => s.service).filter(inStack(ns));
    if (flags.prune) {
      const keep = new Set(specs.map((s) => s.name));
      for (const s of services)
        if (!keep.has(s.spec.name)) {
          io.stdout.write(`Removing service ${s.spec.name}\n`);
          await controlApi('removeService', { ref: s.meta.id });
        }
    }
    const networks = (await controlRead(io, 'listNetworks')).networks;
    for (const name of stack.externalNetworks) {
      if (['host', 'bridge', 'none'].includes(name)) continue;
      if (!networks.some((n) => n.spec.name === name))
        throw new UsageError(
          `network "${name}" is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed`,
        );
    }
    const ours = new Set(networks.filter(inStack(ns)).map((n) => n.spec.name));
    for (const spec of networkSpecs) {
      if (ours.has(spec.name)) continue;
      io.stdout.write(`Creating network ${spec.name}\n`);
      await controlApi('createNetwork', { spec });
    }
    // As docker: a secret or config that exists is updated, which Swarm allows for its labels only (the same value is sent again).
    const secrets = new Map((await controlRead(io, 'listSecrets')).secrets.map((s) => [s.spec.name, s]));
    for (const s of stack.secrets) {
      const spec = { name: s.Name, labels: s.Labels, data: new Uint8Array(Buffer.from(s.Data ?? '', 'base64')) };
      const held = secrets.get(s.Name);
      if (held) {
        io.stdout.write(`Updating secret ${s.Name}\n`);
        await controlApi('updateSecret', { ref: held.meta.id, version: held.meta.version, spec });
      } else {
        io.stdout.write(`Creating secret ${s.Name}\n`);
        await controlApi('createSecret', { spec });
      }
    }
    const configs = new Map((await controlRead(io, 'listConfigs')).configs.map((c) => [c.spec.name, c]));
    for (const c of stack.configs) {
      const spec = { name: c.Name, labels: c.Labels, data: new Uint8Array(Buffer.from(c.Data ?? '', 'base64')) };
      const held = configs.get(c.Name);
      if (held) {
        io.stdout.write(`Updating config ${c.Name}\n`);
        await controlApi('updateConfig', { ref: held.meta.id, version: held.meta.version, spec });
      } else {
        io.stdout.write(`Creating config ${c.Name}\n`);
        await controlApi('createConfig', { spec });
      }
    }
    const byName = new Map(services.map((s) => [s.spec.name, s]));
    const pins = new Map<string, ImagePin | undefined>();
    for (const spec of specs) {
      const old = byName.get(spec.name);
      // As docker stack deploy: always, or (changed) when the image differs from the one the stack recorded.
      const image = spec.task?.container?.image ?? '';
      const registryAuth = authConfig && image ? encodedAuthFor(authConfig, image, authPath) : undefined;
      // --with-registry-auth without a login for this image's registry: an explicit none, replacing what the service held.
      if (authConfig && image) spec.task.container.pullOptions = { registryAuth: registryAuth ?? EMPTY_REGISTRY_AUTH };
      const query = resolveImage === 'always' || (resolveImage === 'changed' && image !== old?.spec.labels['com.docker.stack.image']);
      if (image && query) {
        if (!pins.has(image)) pins.set(image, await resolvePin(io, image, registryAuth));
        applyPin(spec, pins.get(image));
      }
      if (old) {
        // As docker: ForceUpdate is carried over, so a redeploy alone does not restart every task.
        if (spec.task && old.spec.task) spec.task.forceUpdate = old.spec.task.forceUpdate;
        io.stdout.write(`Updating service ${spec.name} (id: ${old.meta.id})\n`);
        await controlApi('updateService', { ref: old.meta.id, version: old.meta.version, spec, rollback: false });
      } else {
        io.stdout.write(`Creating service ${spec.name}\n`);
        await controlApi('createService', { spec });
      }
    }
    return 0;
  },
});

const ls = leaf({
  name: 'ls',
  summary: 'List stacks',
  flags: {},
  async run({ positionals, io }) {
    if (positionals.length) throw new UsageError(`"tsswarm stack ls" accepts no arguments (got "${positionals.join(' ')}")`);
    const services = (await controlRead(io, 'listServices')).services;
    io.stdout.write(table(['NAME', 'SERVICES'], stackRows(services.map((s) => s.service.spec.labels))));
    return 0;
  },
});

const nothing = (io: Io, ns: string): number => {
  io.stderr.write(`Nothing found in stack: ${ns}\n`);
  return 0;
};

const services = leaf({
  name: 'services',
  summary: 'List the services in the stack',
  usage: 'STACK',
  flags: {},
  async run({ positionals, io }) {
    const ns = stackName(positionals, 'services');
    const r = await controlRead(io, 'listServices');
    const mine = { ...r, services: r.services.filter((s) => inStack(ns)(s.service)) };
    if (!mine.services.length) return nothing(io, ns);
    io.stdout.write(table(['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE'], serviceRows(mine)));
    return 0;
  },
});

const ps = leaf({
  name: 'ps',
  summary: 'List the tasks in the stack',
  usage: 'STACK',
  flags: { 'no-trunc': { type: 'boolean', description: 'Do not truncate output' } },
  async run({ flags, positionals, io }) {
    const ns = stackName(positionals, 'ps');
    const ids = (await controlRead(io, 'listServices')).services
      .map((s) => s.service)
      .filter(inStack(ns))
      .map((s) => s.meta.id);
    if (!ids.length) return nothing(io, ns);
    const tasks = (await controlRead(io, 'listTasks', { services: ids, nodes: [], desiredRunning: false })).tasks;
    if (!tasks.length) return nothing(io, ns);
    io.stdout.write(
      table(
        ['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR', 'PORTS'],
        taskRows(tasks, { noTrunc: flags['no-trunc'] }),
      ),
    );
    return 0;
  },
});

const rm = leaf({
  name: 'rm',
  summary: 'Remove one or more stacks',
  usage: 'STACK [STACK...]',
  flags: {},
  async run({ positionals, io }) {
    if (!positionals.length) throw new UsageError('"tsswarm stack rm" requires at least 1 argument: the stacks to remove');
    for (const ns of positionals) {
      const svcs = (await controlRead(io, 'listServices')).services.map((s) => s.service).filter(inStack(ns));
      const secrets = (await controlRead(io, 'listSecrets')).secrets.filter(inStack(ns));
      const configs = (await controlRead(io, 'listConfigs')).configs.filter(inStack(ns));
      const networks = (await controlRead(io, 'listNetworks')).networks.filter(inStack(ns));
      if (!svcs.length && !secrets.length && !configs.length && !networks.length) {
        nothing(io, ns);
        continue;
      }
      // Services first: secrets, configs and networks in use cannot go.
      for (const s of svcs) {
        io.stdout.write(`Removing service ${s.spec.name}\n`);
        await controlApi('removeService', { ref: s.meta.id });
      }
      for (const s of secrets) {
        io.stdout.write(`Removing secret ${s.spec.name}\n`);
        await controlApi('removeSecret', { ref: s.meta.id });
      }
      for (const c of configs) {
        io.stdout.write(`Removing config ${c.spec.name}\n`);
        await controlApi('removeConfig', { ref: c.meta.id });
      }
      for (const n of networks) {
        io.stdout.write(`Removing network ${n.spec.name}\n`);
        await controlApi('removeNetwork', { ref: n.meta.id });
      }
    }
    return 0;
  },
});

export const stackCommand: Command = group({ name: 'stack', summary: 'Manage stacks', subcommands: () => [deploy, ls, services, ps, rm] });
