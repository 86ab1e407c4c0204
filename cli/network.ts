// `tsswarm network create|ls|inspect|rm`: cluster-wide overlay networks, in
// the docker CLI's spirit. The command line becomes a spec in a pure function
// (networkCreateSpec); the managers allocate VNI, subnet and gateway.
// `inspect --dataplane` renders the nodes' data-plane reports (pure too).
import type { DataplaneReport, Difference, VipRow } from '../spec/dataplane-report.js';
import { UsageError } from '../lib/errors.js';
import { ENCRYPTION_UNAVAILABLE } from '../spec/index.js';
import type { InspectDataplaneResponse, NetworkResponse } from '../proto/gen/control.js';
import { Network, NetworkSpec } from '../proto/gen/objects.js';
import { type FlagDefs, oneOf } from './args.js';
import { controlApi, controlRead } from './client.js';
import { type Command, forEachArg, group, type Io, leaf } from './command.js';
import { table } from './table.js';
import { filtersFromFlags, formatChoice, goTimeString, labelsText, NETWORK_FIELDS, renderInspect, renderList } from './format.js';
import { networkFilter, networkToDocker } from '../spec/docker/objects.js';

const createFlags = {
  driver: { type: 'string', short: 'd', valueName: 'DRIVER', description: 'Driver: overlay (the default and the only one)' },
  subnet: { type: 'string', valueName: 'CIDR', description: 'Subnet, e.g. 10.10.0.0/24 (default: the next free /24 of 10.0.0.0/8)' },
  gateway: { type: 'string', valueName: 'IP', description: "Gateway address inside the subnet (default: the subnet's first address)" },
  attachable: { type: 'boolean', description: 'Let standalone containers attach (recorded; services attach in any case)' },
  ingress: { type: 'boolean', description: "Create the routing mesh's network (one per cluster)" },
  opt: {
    type: 'string',
    multiple: true,
    valueName: 'KEY[=VALUE]',
    description: 'Driver option (encrypted is not available on this kernel yet)',
    short: 'o',
  },
  label: { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'Network label' },
} as const satisfies FlagDefs;

type CreateFlags = {
  [K in keyof typeof createFlags]: (typeof createFlags)[K]['type'] extends 'boolean'
    ? boolean
    : (typeof createFlags)[K] extends { multiple: true }
      ? string[]
      : string | undefined;
};

function keyValue(field: string, s: string): [string, string] {
  const eq = s.indexOf('=');
  if (eq === 0 || s === '') throw UsageError.invalid(field, 'KEY=VALUE or KEY', s);
  return eq < 0 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
}

/** `network create` flags and NAME → the spec to send. Pure. */
export function networkCreateSpec(flags: Partial<CreateFlags>, positionals: readonly string[]): NetworkSpec {
  if (positionals.length !== 1)
    throw new UsageError('give exactly one network name: tsswarm network create [OPTIONS] NAME', { field: 'NAME' });
  const driver = oneOf('--driver', flags.driver ?? 'overlay', ['overlay'] as const);
  const driverOpts: Record<string, string> = {};
  for (const o of flags.opt ?? []) {
    const [k, v] = keyValue('--opt', o);
    if (k === 'encrypted') throw new UsageError(`--opt encrypted: ${ENCRYPTION_UNAVAILABLE}`, { field: '--opt' });
    driverOpts[k] = v;
  }
  const labels: Record<string, string> = {};
  for (const l of flags.label ?? []) {
    const [k, v] = keyValue('--label', l);
    labels[k] = v;
  }
  return NetworkSpec.create({
    name: positionals[0]!,
    driver,
    subnet: flags.subnet ?? '',
    gateway: flags.gateway ?? '',
    attachable: flags.attachable ?? false,
    ingress: flags.ingress ?? false,
    driverOpts,
    labels,
  });
}

/** A network as `inspect` shows it: every field, enum names, plus who uses it. */
export function networkJson(r: NetworkResponse): object {
  return {
    ...(Network.toObject(r.network) as object),
    services: r.services,
    tasks: r.tasks,
  };
}

/** A network as `docker network inspect` templates see it: the Engine API's shape, with Go's field name ID beside the JSON's Id. */
function dockerNetwork(n: Network): object {
  const o = networkToDocker(n);
  Object.defineProperty(o, 'ID', { value: n.meta.id, enumerable: false });
  return o;
}

/** `network ls` rows. */
export function networkRows(networks: readonly Network[], noTrunc = false): string[][] {
  return networks.map((n) => [
    noTrunc ? n.meta.id : n.meta.id.slice(0, 12),
    n.spec.name,
    n.spec.driver || 'overlay',
    'swarm',
    n.status?.subnet || (n.status?.message ? 'allocation failed' : 'pending'),
    n.spec.ingress ? 'ingress' : n.spec.attachable ? 'attachable' : '',
  ]);
}

function json(io: Io, v: unknown): void {
  io.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

const createCommand = leaf({
  name: 'create',
  summary: 'Create an overlay network',
  usage: '[OPTIONS] NAME',
  description: 'The managers give it a VXLAN id (from 4096), a subnet (the next free /24 of 10.0.0.0/8 unless --subnet) and a gateway.',
  flags: createFlags,
  async run({ flags, positionals, io }) {
    const spec = networkCreateSpec(flags, positionals);
    const r = await controlApi('createNetwork', { spec });
    io.stdout.write(`${r.network.meta.id}\n`);
    return 0;
  },
});

/** `network ls` template fields, docker's: ID, Name, Driver, Scope, IPv6, Internal, Labels, CreatedAt. */
export function networkContexts(networks: readonly Network[], noTrunc = false): Array<Record<string, string>> {
  return networks.map((n) => ({
    ID: noTrunc ? n.meta.id : n.meta.id.slice(0, 12),
    Name: n.spec.name,
    Driver: n.spec.driver || 'overlay',
    Scope: 'swarm',
    IPv6: 'false',
    Internal: String(!!n.spec.internal),
    Labels: labelsText(n.spec.labels),
    CreatedAt: goTimeString(n.meta.createdAt),
  }));
}

const lsCommand = leaf({
  name: 'ls',
  summary: 'List networks',
  flags: {
    quiet: { type: 'boolean', short: 'q', description: 'Only display IDs' },
    format: {
      type: 'string',
      valueName: 'FORMAT',
      description: 'table (default), json, or a Go template: {{.ID}}, {{json .}}, table {{.ID}}\\t{{.Name}}',
    },
    filter: {
      type: 'string',
      short: 'f',
      multiple: true,
      valueName: 'KEY=VALUE',
      description: 'Filter as docker: driver=, id=, label=KEY[=VALUE], name=, scope=swarm, type=custom|builtin, dangling=true|false',
    },
    'no-trunc': { type: 'boolean', description: 'Do not truncate IDs' },
  },
  async run({ flags, positionals, io }) {
    if (positionals.length) throw new UsageError(`"tsswarm network ls" accepts no arguments (got "${positionals.join(' ')}")`);
    const choice = formatChoice(flags.format);
    const f = filtersFromFlags(flags.filter);
    networkFilter(f); // refuses unknown keys and values before anything is asked
    const all = (await controlRead(io, 'listNetworks')).networks;
    // `dangling` needs to know which networks services use: asked only when filtered on.
    const used = new Set<string>();
    if (f.has('dangling'))
      for (const n of all) if ((await controlApi('getNetwork', { ref: n.meta.id })).services.length) used.add(n.meta.id);
    const networks = all.filter(networkFilter(f, (n) => used.has(n.meta.id)));
    if (choice.kind === 'json')
      json(
        io,
        networks.map((n) => Network.toObject(n)),
      );
    else if (choice.kind === 'table' || choice.kind === 'raw')
      io.stdout.write(renderList(choice, NETWORK_FIELDS, networkContexts(networks, flags['no-trunc'])));
    else if (flags.quiet) io.stdout.write(networks.map((n) => `${n.meta.id}\n`).join(''));
    else io.stdout.write(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET', 'FLAGS'], networkRows(networks, flags['no-trunc'])));
    return 0;
  },
});

// ---------------------------------------------------------------- inspect --dataplane

/** One node's part of `inspect --dataplane`: its report, or why there is none. */
export interface NodeDataplaneView {
  nodeId: string;
  hostname: string;
  report?: DataplaneReport;
  error?: string;
}

/** What `inspect --dataplane --format json` prints: the reports, and the verdict. */
export interface DataplaneView {
  network: { id: string; name: string };
  nodes: NodeDataplaneView[];
  /** Differences over every node read. */
  differences: number;
  /** Nodes whose data plane could not be read. */
  unreadable: number;
  inSync: boolean;
}

/** The response with each node's report decoded. Pure. */
export function dataplaneView(r: InspectDataplaneResponse): DataplaneView {
  const nodes = r.nodes.map((n): NodeDataplaneView => {
    const v: NodeDataplaneView = { nodeId: n.nodeId, hostname: n.hostname };
    if (n.error) v.error = n.error;
    if (n.reportJson) {
      try {
        v.report = JSON.parse(n.reportJson) as DataplaneReport;
      } catch {
        v.error = `the node's report is not valid JSON: ${n.reportJson.slice(0, 80)}`;
      }
    }
    if (!v.report && !v.error) v.error = 'no report';
    return v;
  });
  const differences = nodes.reduce((k, n) => k + (n.report?.differences ?? 0), 0);
  const unreadable = nodes.filter((n) => !n.report).length;
  return {
    network: { id: r.networkId, name: r.networkName },
    nodes,
    differences,
    unreadable,
    inSync: differences === 0 && unreadable === 0,
  };
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** `in sync`, or `N differences` (and nodes not read). */
export function dataplaneVerdict(v: Pick<DataplaneView, 'differences' | 'unreadable'>): string {
  if (v.differences === 0 && v.unreadable === 0) return 'in sync';
  const parts = [];
  if (v.differences > 0 || v.unreadable === 0) parts.push(plural(v.differences, 'difference'));
  if (v.unreadable > 0) parts.push(`${plural(v.unreadable, 'node')} not read`);
  return parts.join(', ');
}

const mark = (d: Difference | undefined): string => (d ? `<- ${d.kind}` : '');

/** Rows of one section: each expected key with what the kernel has, then what it has beyond. */
function rows<E, A>(
  expected: readonly E[],
  actual: readonly A[],
  ek: (e: E) => string,
  ak: (a: A) => string,
  ev: (e: E) => string,
  av: (as: A[]) => string,
  diffs: readonly Difference[],
): string[][] {
  const byKey = new Map<string, A[]>();
  for (const a of actual) byKey.set(ak(a), [...(byKey.get(ak(a)) ?? []), a]);
  const d = (k: string): Difference | undefined => diffs.find((x) => x.key === k || x.key.startsWith(`${k} `));
  const out: string[][] = [];
  for (const e of expected) {
    const k = ek(e);
    const a = byKey.get(k);
    out.push([k, ev(e), a ? av(a) : '-', mark(d(k))]);
    byKey.delete(k);
  }
  for (const [k, a] of byKey) out.push([k, '-', av(a), mark(d(k))]);
  return out;
}

const indent = (text: string, by: string): string =>
  text
    .split('\n')
    .map((l) => (l ? by + l : l))
    .join('\n');

function renderNode(n: NodeDataplaneView): string {
  const head = `${n.hostname} (node ${n.nodeId.slice(0, 12)})`;
  if (!n.report) return `${head}: could not be read: ${n.error}\n`;
  const r = n.report;
  if (!r.held) return `${head}: does not hold this network\n`;
  const lines: string[] = [`${head}: vni ${r.vni}, namespace ${r.netns || '(none)'}, device ${r.device || '(none)'}`];
  for (const d of r.deviceDifferences) lines.push(`  ${d.key}: ${d.kind}`);
  for (const e of r.errors) lines.push(`  error: ${e}`);
  const fdb = rows(
    r.fdb.expected,
    r.fdb.actual,
    (e) => e.mac,
    (a) => a.mac,
    (e) => e.dst,
    (as) => as.map((a) => a.dst).join(', '),
    r.fdb.differences,
  );
  lines.push(`  FDB entries (mac -> vtep, on ${r.device}): ${r.fdb.expected.length} expected, ${r.fdb.actual.length} in the kernel`);
  if (fdb.length) lines.push(indent(table(['MAC', 'EXPECTED', 'ACTUAL', ''], fdb), '    ').trimEnd());
  const neighText = (n: { mac: string; permanent: boolean }): string => `${n.mac}${n.permanent ? '' : ' (not permanent)'}`;
  const neigh = rows(
    r.neigh.expected,
    r.neigh.actual,
    (e) => e.ip,
    (a) => a.ip,
    neighText,
    (as) => as.map(neighText).join(', '),
    r.neigh.differences,
  );
  lines.push(`  Neighbor entries (ip -> mac): ${r.neigh.expected.length} expected, ${r.neigh.actual.length} in the kernel`);
  if (neigh.length) lines.push(indent(table(['IP', 'EXPECTED', 'ACTUAL', ''], neigh), '    ').trimEnd());
  if (r.containers.length === 0) lines.push('  VIP entries: no container on this network here');
  for (const c of r.containers) {
    lines.push(
      `  VIP entries in task ${c.taskId.slice(0, 12)}'s container${c.backend ? ` (${c.backend})` : ''}: ${c.expected.length} expected, ${c.error ? 'not read' : `${c.actual.length} in the kernel`}`,
    );
    if (c.error) lines.push(`    could not be read: ${c.error}`);
    for (const d of c.differences.filter((x) => x.key === 'table')) lines.push(`    table: ${d.kind}: ${d.actual ?? ''}`);
    const be = (v: VipRow): string => v.backends.join(', ') || '(none)';
    const vips = rows(
      c.expected,
      c.actual,
      (e) => e.frontend,
      (a) => a.frontend,
      be,
      (as) => as.map((a) => be(a) + (a.problem ? ` (${a.problem})` : '')).join('; '),
      c.differences,
    );
    if (vips.length) lines.push(indent(table(['FRONTEND', 'EXPECTED', 'ACTUAL', ''], vips), '    ').trimEnd());
  }
  lines.push(`  ${dataplaneVerdict({ differences: r.differences, unreadable: 0 })}`);
  return lines.join('\n') + '\n';
}

/** The text of `inspect --dataplane`: per node FDB, neighbors and VIPs, expected against actual, differences marked. Pure. */
export function renderDataplane(v: DataplaneView): string {
  const out = [
    `Network ${v.network.name || v.network.id} (${v.network.id.slice(0, 12)}): data plane on ${plural(v.nodes.length, 'node')}`,
    '',
  ];
  for (const n of v.nodes) out.push(renderNode(n));
  out.push(dataplaneVerdict(v));
  return out.join('\n') + '\n';
}

const inspectCommand = leaf({
  name: 'inspect',
  summary: "Display detailed information on one or more networks (JSON), or a network's data plane",
  usage: '[OPTIONS] NETWORK [NETWORK...]',
  description:
    'With --dataplane: for each node holding the network (or the one given with --node), the FDB entries (mac -> vtep) and neighbor entries (ip -> mac) its VXLAN device should hold and holds, ' +
    'and the VIP entries (VIP port -> backends) of each local container, with the differences (missing, stale, wrong) and a last line: "in sync" or "N differences".',
  flags: {
    dataplane: {
      type: 'boolean',
      description: "Show the network's data plane on its nodes: expected and actual entries, and the differences",
    },
    node: { type: 'string', valueName: 'NODE', description: 'With --dataplane: only this node (id, id prefix or hostname)' },
    format: {
      type: 'string',
      short: 'f',
      valueName: 'FORMAT',
      description:
        'json, or a Go template over the network as the Docker API shows it ({{.Name}}, {{json .IPAM}}); with --dataplane: text (default) or json',
    },
  },
  async run({ flags, positionals, io }) {
    if (!positionals.length) throw new UsageError('give at least one network (id, id prefix or name)');
    if (!flags.dataplane) {
      if (flags.node !== undefined)
        throw new UsageError('--node goes with --dataplane: tsswarm network inspect --dataplane --node NODE NETWORK', { field: '--node' });
      formatChoice(flags.format);
      const got: NetworkResponse[] = [];
      for (const ref of positionals) got.push(await controlRead(io, 'getNetwork', { ref }));
      if (flags.format !== undefined && flags.format !== 'json')
        io.stdout.write(
          renderInspect(
            flags.format,
            got.map((r) => dockerNetwork(r.network)),
          ),
        );
      else json(io, got.map(networkJson));
      return 0;
    }
    if (positionals.length !== 1)
      throw new UsageError(`--dataplane shows one network at a time (got ${positionals.length}: ${positionals.join(' ')})`, {
        field: 'NETWORK',
      });
    const format = oneOf('--format', flags.format ?? 'text', ['text', 'json']);
    if (flags.node === '') throw UsageError.invalid('--node', 'a node id, id prefix or hostname', flags.node);
    const view = dataplaneView(await controlApi('inspectDataplane', { ref: positionals[0]!, node: flags.node ?? '' }));
    if (format === 'json') json(io, view);
    else io.stdout.write(renderDataplane(view));
    return 0;
  },
});

const rmCommand = leaf({
  name: 'rm',
  summary: 'Remove one or more networks (refused while services use them)',
  usage: 'NETWORK [NETWORK...]',
  flags: {},
  async run({ positionals, io }) {
    if (!positionals.length) throw new UsageError('give at least one network to remove');
    return forEachArg(io, positionals, async (ref) => {
      await controlApi('removeNetwork', { ref });
      io.stdout.write(`${ref}\n`);
    });
  },
});

const networkCommands: readonly Command[] = [createCommand, inspectCommand, lsCommand, rmCommand];

export const networkCommand: Command = group({ name: 'network', summary: 'Manage overlay networks', subcommands: () => networkCommands });
