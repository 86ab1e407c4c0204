// Cluster verbs of the `tsswarm` command, in the docker CLI's spirit:
// daemon, init, join, join-token, leave, info, `swarm update` (and `swarm
// init | join | join-token | leave`, the same commands as the top-level ones),
// and `node ls | inspect | update | promote | demote | rm`. Each talks to the
// local daemon.
import { oneOf } from './args.js';
import { closeClients, controlApi, controlRead, daemonApi, DEFAULT_SOCKET, socketPath, warnIfStale } from './client.js';
import { group, leaf, type Command, type Io } from './command.js';
import { ago, table } from './table.js';
import { filtersFromFlags, formatChoice, NODE_FIELDS, renderInspect, renderList } from './format.js';
import { checkNodeFilters, filterNodes, toDockerNode } from '../spec/docker/node.js';
import { tsswarmVersion } from './version.js';
import { swarmCaCommand } from './ca.js';
import { type Node, NodeAvailability, NodeRole, NodeState } from '../proto/gen/objects.js';
import { TsswarmError, UsageError } from '../lib/errors.js';
import type { ClusterSettings, UpdateClusterRequest } from '../proto/gen/control.js';
import { stdin as readStdin } from './stdin.js';
import {
  CLUSTER_SETTING_FLAGS,
  formatGoDuration,
  humanDuration,
  parseCertExpiry,
  parseDispatcherHeartbeat,
  parseSnapshotInterval,
  parseTaskHistoryLimit,
} from '../spec/cluster.js';

const formatFlag = {
  format: { type: 'string', short: 'f', valueName: 'FORMAT', description: 'Output format: table/text (default) or json' },
} as const;

function json(io: Io, v: unknown): void {
  io.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

function noArgs(positionals: string[], path: string): void {
  if (positionals.length) throw new UsageError(`"${path}" accepts no arguments (got "${positionals.join(' ')}")`);
}

const stateName = (s: NodeState | undefined): string =>
  ({ [NodeState.UNKNOWN]: 'Unknown', [NodeState.READY]: 'Ready', [NodeState.DOWN]: 'Down', [NodeState.DISCONNECTED]: 'Disconnected' })[
    s ?? NodeState.UNKNOWN
  ] ?? 'Unknown';
const availName = (a: NodeAvailability | undefined): string =>
  ({ [NodeAvailability.ACTIVE]: 'Active', [NodeAvailability.PAUSE]: 'Pause', [NodeAvailability.DRAIN]: 'Drain' })[
    a ?? NodeAvailability.ACTIVE
  ] ?? 'Active';
function managerStatus(n: Node): string {
  const m = n.managerStatus;
  if (!m || !m.raftId) return '';
  if (m.leader) return 'Leader';
  return m.reachability === 'reachable' ? 'Reachable' : 'Unreachable';
}

/** A node as `--format json` shows it: readable names instead of enum numbers. */
function nodeJson(n: Node): object {
  return {
    ID: n.meta?.id,
    Version: n.meta?.version,
    CreatedAt: n.meta?.createdAt ? new Date(n.meta.createdAt).toISOString() : undefined,
    UpdatedAt: n.meta?.updatedAt ? new Date(n.meta.updatedAt).toISOString() : undefined,
    Spec: {
      Name: n.spec?.name,
      Role: n.spec?.role === NodeRole.MANAGER ? 'manager' : 'worker',
      Availability: availName(n.spec?.availability).toLowerCase(),
      Labels: n.spec?.labels ?? {},
    },
    Description: n.description,
    Status: { State: stateName(n.status?.state).toLowerCase(), Message: n.status?.message, Addr: n.status?.addr },
    ManagerStatus: n.managerStatus?.raftId
      ? { Leader: !!n.managerStatus.leader, Reachability: n.managerStatus.reachability, Addr: n.managerStatus.addr }
      : undefined,
    Certificate: n.certificate
      ? { Serial: n.certificate.serial, Expiry: n.certificate.expiryMs ? new Date(n.certificate.expiryMs).toISOString() : undefined }
      : undefined,
  };
}

// ------------------------------------------------------------------ daemon, init, join, leave, info

const daemonCommand = leaf({
  name: 'daemon',
  summary: 'Run the tsswarm daemon on this host (agent, and manager when the node is one)',
  description: 'Settings come from --config FILE (JSON, as deploy/install.sh writes to /etc/tsswarm/daemon.json), and flags override it.',
  flags: {
    config: {
      type: 'string',
      valueName: 'FILE',
      description:
        'Read settings from this JSON file (keys: advertiseAddr, listenAddr, stateDir, socket, socketGroup, dockerSocket, dockerTcp, nodeName, metricsAddr, heartbeatPeriodMs, logLevel, lbBackend, insecureRegistries, labels)',
    },
    'node-name': { type: 'string', valueName: 'NAME', description: 'Name of this node (default: the hostname)' },
    'state-dir': { type: 'string', valueName: 'DIR', description: 'State directory (default /var/lib/tsswarm)' },
    'listen-addr': { type: 'string', valueName: 'HOST:PORT', description: 'Address the manager services listen on (default 0.0.0.0:4242)' },
    'advertise-addr': {
      type: 'string',
      valueName: 'ADDR[:PORT]',
      description: 'Address other nodes reach this node at: an IPv4 address, or an interface or host name resolved to one at start',
    },
    'metrics-addr': { type: 'string', valueName: 'HOST:PORT', description: 'Serve Prometheus metrics at this address' },
    'heartbeat-period': {
      type: 'string',
      valueName: 'MS',
      description:
        'Agent heartbeat period in ms of a cluster this daemon initializes (default 5000); later the cluster setting rules: `tsswarm swarm update --dispatcher-heartbeat`',
    },
    'log-level': { type: 'string', valueName: 'LEVEL', description: 'trace, debug, info (default), warn, error' },
    'docker-socket': {
      type: 'string',
      valueName: 'PATH',
      description:
        "Serve the Docker Engine API on this unix socket (default: docker.sock beside the CLI socket, /run/tsswarm/docker.sock); '' or none: off",
    },
    'node-generic-resource': {
      type: 'string',
      valueName: 'LIST',
      description: 'Generic resources this node offers to tasks that reserve them: KIND=COUNT, comma-separated (e.g. gpu=4,fpga=1)',
    },
    'insecure-registry': {
      type: 'string',
      valueName: 'LIST',
      description: 'Registries pulled from over plain http (HOST, HOST:PORT or an IPv4 CIDR, comma-separated); loopback always is',
    },
    'certs-dir': {
      type: 'string',
      valueName: 'DIR',
      description:
        "A registry's own CA and client certificate: DIR/HOST[:PORT]/ca.crt, client.cert, client.key (default /etc/tsswarm/certs.d, as dockerd's /etc/docker/certs.d)",
    },
    'docker-tcp': {
      type: 'string',
      valueName: 'IP:PORT',
      description:
        'Also serve the Docker Engine API over TCP with TLS, e.g. 0.0.0.0:2376: only clients with an operator certificate (`tsswarm ca client-cert`) get in (default: off)',
    },
    'lb-backend': {
      type: 'string',
      valueName: 'BACKEND',
      description: 'Service load balancer: auto (default), nftables, iptables or ipvs',
    },
    label: {
      type: 'string',
      multiple: true,
      valueName: 'KEY=VALUE',
      description: "Engine label of this node, as dockerd's (repeatable): matched by `--constraint engine.labels.KEY==VALUE`",
    },
  },
  async run({ flags, positionals, path }) {
    noArgs(positionals, path);
    // The one path from cli/ into the node's composition (docs/architecture.md).
    const { runDaemon } = await import('../node/index.js');
    // --host or TSSWARM_HOST, when either was given, names the socket for the CLI and the daemon alike.
    const chosen = socketPath();
    return runDaemon({
      flags,
      socketOverride: chosen !== DEFAULT_SOCKET ? chosen : undefined,
      defaultSocket: DEFAULT_SOCKET,
      version: tsswarmVersion(),
    });
  },
});

/** "90s", "15m", "2160h", "90d" → milliseconds. */
export function parseDuration(field: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(v.trim());
  if (!m) throw UsageError.invalid(field, 'a duration such as 90s, 15m, 2160h or 90d', v);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

function joinCommandLine(token: string, addr: string): string {
  return `    tsswarm join --token ${token} ${addr}`;
}

const initCommand = leaf({
  name: 'init',
  summary: 'Initialize a cluster: this node becomes its first manager',
  flags: {
    'advertise-addr': { type: 'string', valueName: 'HOST[:PORT]', description: 'Address other nodes reach this manager at' },
    'force-new-cluster': { type: 'boolean', description: "Recover from a lost quorum, keeping this manager's state" },
    'cert-expiry': {
      type: 'string',
      valueName: 'DURATION',
      description: 'Validity of node certificates, e.g. 2160h (default 90 days); nodes renew with a third left',
    },
    autolock: {
      type: 'boolean',
      description: 'Lock the managers: each waits for `tsswarm unlock` and the unlock key (printed here) after a restart',
    },
  },
  async run({ flags, positionals, io, path }) {
    noArgs(positionals, path);
    const certExpiryMs = flags['cert-expiry'] ? parseDuration('--cert-expiry', flags['cert-expiry']) : 0;
    if (flags.autolock && flags['force-new-cluster'])
      throw new UsageError(
        '--autolock cannot be given with --force-new-cluster: the cluster keeps its own setting; change it afterwards with `tsswarm swarm update --autolock`',
        { field: '--autolock' },
      );
    const r = await daemonApi('init', {
      advertiseAddr: flags['advertise-addr'] ?? '',
      forceNewCluster: flags['force-new-cluster'],
      certExpiryMs,
      autolock: flags.autolock,
    });
    io.stdout.write(
      `Swarm initialized: current node (${r.nodeId}) is now a manager.\n\nTo add a worker to this cluster, run the following command:\n\n${joinCommandLine(r.workerToken, r.addr)}\n\nTo add a manager to this cluster, run 'tsswarm join-token manager' and follow the instructions.\n\n`,
    );
    if (r.unlockKey) io.stdout.write(unlockKeyText(r.unlockKey));
    return 0;
  },
});

const joinCommand = leaf({
  name: 'join',
  summary: 'Join a cluster as a node (worker or manager, as the token says)',
  usage: '--token TOKEN HOST:PORT',
  flags: {
    token: { type: 'string', valueName: 'TOKEN', description: 'Join token from `tsswarm join-token worker|manager`' },
    'advertise-addr': { type: 'string', valueName: 'HOST[:PORT]', description: 'Address other nodes reach this node at' },
  },
  async run({ flags, positionals, io }) {
    if (!flags.token)
      throw new UsageError('--token is required: get one with `tsswarm join-token worker` on a manager', { field: '--token' });
    if (positionals.length !== 1)
      throw new UsageError('give exactly one manager address: tsswarm join --token TOKEN HOST:PORT', { field: 'HOST:PORT' });
    const r = await daemonApi('join', {
      token: flags.token,
      remoteAddr: positionals[0],
      advertiseAddr: flags['advertise-addr'] ?? '',
    });
    io.stdout.write(r.role === 'manager' ? 'This node joined a swarm as a manager.\n' : 'This node joined a swarm as a worker.\n');
    return 0;
  },
});

const joinTokenCommand = leaf({
  name: 'join-token',
  summary: 'Show (or rotate) the join token for workers or managers',
  usage: '[OPTIONS] (worker|manager)',
  flags: {
    rotate: { type: 'boolean', description: 'Replace the token: the old one stops working' },
    quiet: { type: 'boolean', short: 'q', description: 'Only print the token' },
  },
  async run({ flags, positionals, io }) {
    if (positionals.length !== 1) throw new UsageError('say which token: tsswarm join-token worker|manager');
    const role = oneOf('role', positionals[0]!, ['worker', 'manager']);
    const t = flags.rotate ? await controlApi('rotateJoinToken', { role }) : await controlApi('getJoinTokens');
    const token = role === 'worker' ? t.worker : t.manager;
    if (flags.quiet) {
      io.stdout.write(`${token}\n`);
      return 0;
    }
    if (flags.rotate) io.stdout.write(`Successfully rotated ${role} join token.\n\n`);
    io.stdout.write(
      `To add a ${role} to this cluster, run the following command:\n\n${joinCommandLine(token, t.managerAddrs[0] ?? 'MANAGER-ADDR')}\n\n`,
    );
    return 0;
  },
});

const leaveCommand = leaf({
  name: 'leave',
  summary: 'Leave the cluster',
  flags: { force: { type: 'boolean', short: 'f', description: 'Leave even if this node is a manager' } },
  async run({ flags, positionals, io, path }) {
    noArgs(positionals, path);
    await daemonApi('leave', { force: flags.force });
    io.stdout.write('Node left the swarm.\n');
    return 0;
  },
});

const infoCommand = leaf({
  name: 'info',
  summary: 'Show cluster-wide information: cluster id, managers, leader, Raft status',
  flags: formatFlag,
  async run({ flags, positionals, io, path }) {
    noArgs(positionals, path);
    const format = oneOf('--format', flags.format ?? 'text', ['text', 'json']);
    const i = await daemonApi('info');
    warnIfStale(io, i);
    if (format === 'json') {
      json(io, i);
      return 0;
    }
    const lines = [`Server Version: ${i.version}`, `Swarm: ${i.state}`];
    if (i.state === 'locked') lines.push(` ${i.error}`);
    if (i.state === 'active') {
      lines.push(
        ` NodeID: ${i.nodeId}`,
        ` Node Name: ${i.nodeName}`,
        ` Node Address: ${i.nodeAddr}`,
        ` Is Manager: ${i.isManager}`,
        ` ClusterID: ${i.clusterId}`,
      );
      if (i.isManager) {
        lines.push(
          ` Managers: ${i.managers.length}`,
          ` Nodes: ${i.nodes}`,
          ` Leader: ${i.leaderNodeId || '(none: no quorum or election under way)'} ${i.leaderAddr}`,
        );
        const cs = i.clusterSettings;
        const limit = Number(cs?.taskHistoryLimit ?? 0);
        if (cs) lines.push(' Orchestration:', `  Task History Retention Limit: ${limit}${limit < 0 ? ' (all kept)' : ''}`);
        lines.push(
          ' Raft:',
          ...(cs ? [`  Snapshot Interval: ${cs.snapshotInterval}`] : []),
          `  State: ${i.raftState}`,
          `  Term: ${i.raftTerm}`,
          `  Commit: ${i.raftCommit}`,
          `  Applied: ${i.raftApplied}`,
        );
        if (cs) lines.push(...settingsSections(cs));
        const r = i.caRotation;
        lines.push(
          `  Root Rotation In Progress: ${r ? `true (${r.nodesDone}/${r.nodesTotal} nodes have certificates from the new root)` : 'false'}`,
        );
        lines.push(' Manager Addresses:');
        for (const m of i.managers)
          lines.push(`  ${m.addr}${m.leader ? ' (leader)' : ''}${m.reachable ? '' : ' (unreachable)'}${m.voter ? '' : ' (learner)'}`);
      }
      if (i.certExpiryMs) lines.push(` Certificate Expiry: ${new Date(i.certExpiryMs).toISOString()}`);
    }
    io.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
});

/** docker info's Dispatcher and CA Configuration sections, with the exact duration `swarm update` takes. */
function settingsSections(cs: ClusterSettings): string[] {
  const hb = Number(cs.dispatcherHeartbeatMs);
  const ex = Number(cs.certExpiryMs);
  return [
    ` Autolock Managers: ${cs.autolock}`,
    ' Dispatcher:',
    `  Heartbeat Period: ${humanDuration(hb)} (${formatGoDuration(hb)})`,
    ' CA Configuration:',
    `  Expiry Duration: ${humanDuration(ex)} (${formatGoDuration(ex)})`,
  ];
}

// ------------------------------------------------------------------ swarm update

type SwarmUpdateFlags = Partial<Record<Exclude<(typeof CLUSTER_SETTING_FLAGS)[number], 'autolock'>, string>> & { autolock?: boolean };

/** `swarm update`'s flags to the request's settings, each checked as the Control API checks it. */
export function settingsFromFlags(flags: SwarmUpdateFlags): Pick<UpdateClusterRequest, 'settings' | 'set'> {
  const settings: ClusterSettings = {
    taskHistoryLimit: 0,
    dispatcherHeartbeatMs: 0,
    certExpiryMs: 0,
    snapshotInterval: 0,
    autolock: false,
  };
  const set: string[] = [];
  const given = (f: Exclude<(typeof CLUSTER_SETTING_FLAGS)[number], 'autolock'>): string | undefined => {
    const v = flags[f];
    if (v !== undefined) set.push(f);
    return v;
  };
  const th = given('task-history-limit');
  if (th !== undefined) settings.taskHistoryLimit = parseTaskHistoryLimit(th);
  const hb = given('dispatcher-heartbeat');
  if (hb !== undefined) settings.dispatcherHeartbeatMs = parseDispatcherHeartbeat(hb);
  const ce = given('cert-expiry');
  if (ce !== undefined) settings.certExpiryMs = parseCertExpiry(ce);
  const si = given('snapshot-interval');
  if (si !== undefined) settings.snapshotInterval = parseSnapshotInterval(si);
  if (flags.autolock !== undefined) {
    set.push('autolock');
    settings.autolock = flags.autolock;
  }
  if (set.length === 0)
    throw new UsageError(
      `"tsswarm swarm update" needs at least one setting to change: ${CLUSTER_SETTING_FLAGS.map((f) => `--${f}`).join(', ')}`,
    );
  return { settings, set };
}

const swarmUpdateLeaf = leaf({
  name: 'update',
  summary: "Update the cluster's settings; every manager applies them without a restart",
  usage: '[OPTIONS]',
  description:
    'Durations as docker takes them (5s, 1m30s, 2160h). --task-history-limit: ended tasks kept per slot (0 none, -1 all; default 5). ' +
    '--dispatcher-heartbeat: how often agents report (100ms to 24h; default 5s); a node is down after 3 missed periods. ' +
    '--cert-expiry: validity of node certificates issued from now on, at least 1h (default 2160h); existing ones keep theirs until renewed. ' +
    '--snapshot-interval: Raft entries between two snapshots, at least 1 (default 10000). ' +
    '--autolock=true: every manager locks its keys with a new unlock key (printed here; `tsswarm unlock-key` shows it again) and waits for `tsswarm unlock` after a restart; --autolock=false: managers keep their keys unlocked again.',
  flags: {
    'task-history-limit': { type: 'string', valueName: 'N', description: 'Ended tasks kept per slot (0: none, -1: all; default 5)' },
    'dispatcher-heartbeat': { type: 'string', valueName: 'DURATION', description: 'Agent heartbeat period (default 5s)' },
    'cert-expiry': { type: 'string', valueName: 'DURATION', description: 'Validity of node certificates (default 2160h0m0s)' },
    'snapshot-interval': { type: 'string', valueName: 'N', description: 'Raft entries between snapshots (default 10000)' },
    autolock: { type: 'boolean', optional: true, description: 'Lock managers after a restart until `tsswarm unlock` (true or false)' },
  },
  async run({ flags, positionals, io, path }) {
    noArgs(positionals, path);
    const change = settingsFromFlags(flags);
    let unlockKey = '';
    // Read the cluster's version, then write against it: a change that lands in between is read again.
    for (let attempt = 0; ; attempt++) {
      const info = await daemonApi('info');
      if (!info.isManager)
        throw new TsswarmError(
          'FAILED_PRECONDITION',
          'this node is not a manager: run `tsswarm swarm update` on a manager (`tsswarm node ls` there shows them)',
        );
      try {
        unlockKey = (await controlApi('updateCluster', { version: info.clusterVersion, ...change })).unlockKey;
        break;
      } catch (e) {
        if (attempt < 5 && (e as TsswarmError).code === 'CONFLICT') continue;
        throw e;
      }
    }
    io.stdout.write('Swarm updated.\n');
    if (unlockKey) io.stdout.write(unlockKeyText(unlockKey));
    return 0;
  },
});

// ------------------------------------------------------------------ autolock: unlock, unlock-key

/** What `init --autolock`, `swarm update --autolock=true` and `unlock-key` print around the key, as docker does. */
export function unlockKeyText(key: string): string {
  return `To unlock a swarm manager after it restarts, run the \`tsswarm unlock\`\ncommand and provide the following key:\n\n    ${key}\n\nRemember to store this key in a password manager, since without it you\nwill not be able to restart the manager.\n`;
}

/** The most an unlock key read from standard input may be: the key is 52 characters. */
const MAX_KEY_INPUT = 4096;

/**
 * The key for `unlock`: typed at a prompt without echo on a terminal, else the first line of
 * standard input (`echo $KEY | tsswarm unlock`), as docker reads it.
 */
async function readUnlockKey(io: Io): Promise<string> {
  const tty = process.stdin.isTTY && readStdin() === process.stdin;
  if (tty) {
    io.stderr.write('Enter unlock key: ');
    process.stdin.setRawMode(true);
  }
  let text = '';
  try {
    for await (const chunk of readStdin()) {
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      if (tty && text.includes('\u0003')) throw new UsageError('unlock cancelled');
      if (/[\r\n]/.test(text)) break;
      if (text.length > MAX_KEY_INPUT)
        throw new UsageError(`the unlock key read from standard input is over ${MAX_KEY_INPUT} bytes: give the key alone`);
    }
  } finally {
    if (tty) {
      process.stdin.setRawMode(false);
      process.stdin.pause();
      io.stderr.write('\n');
    }
  }
  const key = text.split(/[\r\n]/)[0]?.trim() ?? '';
  if (!key)
    throw new UsageError(
      'no unlock key given: type it at the prompt, or pipe it in (`tsswarm unlock-key -q` on an unlocked manager shows it)',
    );
  return key;
}

const unlockCommand = leaf({
  name: 'unlock',
  summary: 'Unlock a locked manager (autolock) with the unlock key',
  description: 'The key is read at a prompt, or from standard input when it is not a terminal.',
  flags: {},
  async run({ positionals, io, path }) {
    noArgs(positionals, path);
    await daemonApi('unlock', { key: await readUnlockKey(io) });
    return 0;
  },
});

const unlockKeyCommand = leaf({
  name: 'unlock-key',
  summary: "Show (or rotate) the managers' unlock key",
  flags: {
    rotate: { type: 'boolean', description: 'Make a new unlock key: managers take it at once; the old one stops unlocking them' },
    quiet: { type: 'boolean', short: 'q', description: 'Only print the key' },
  },
  async run({ flags, positionals, io, path }) {
    noArgs(positionals, path);
    const r = flags.rotate ? await controlApi('rotateUnlockKey') : await controlApi('getUnlockKey');
    if (flags.quiet) {
      io.stdout.write(`${r.unlockKey}\n`);
      return 0;
    }
    if (flags.rotate) io.stdout.write('Successfully rotated manager unlock key.\n\n');
    io.stdout.write(unlockKeyText(r.unlockKey));
    return 0;
  },
});

// ------------------------------------------------------------------ node

const LIST_FORMAT_HELP = 'table (default), json, or a Go template: {{.ID}}, {{json .}}, table {{.ID}}\\t{{.Hostname}}';

/** `node ls` template fields, docker's: ID, Self, Hostname, Status, Availability, ManagerStatus, EngineVersion, TLSStatus. */
export function nodeContexts(nodes: readonly Node[], selfId: string, version: string): Array<Record<string, string | boolean>> {
  return nodes.map((n) => ({
    ID: n.meta.id,
    Self: n.meta.id === selfId,
    Hostname: n.description?.hostname || n.spec?.name || '',
    Status: stateName(n.status?.state),
    Availability: availName(n.spec?.availability),
    ManagerStatus: managerStatus(n),
    EngineVersion: n.description?.engineVersion || version,
    // Every node renews from the cluster's current root (swarm ca --rotate waits for them all).
    TLSStatus: 'Ready',
  }));
}

const nodeLs = leaf({
  name: 'ls',
  summary: 'List nodes in the cluster',
  flags: {
    format: { type: 'string', valueName: 'FORMAT', description: LIST_FORMAT_HELP },
    filter: {
      type: 'string',
      short: 'f',
      multiple: true,
      valueName: 'KEY=VALUE',
      description: 'Filter as docker: id=, label=, node.label=KEY[=VALUE], membership=accepted|pending, name=, role=manager|worker',
    },
    quiet: { type: 'boolean', short: 'q', description: 'Only display IDs' },
  },
  async run({ flags, positionals, io, path }) {
    noArgs(positionals, path);
    const choice = formatChoice(flags.format);
    const f = checkNodeFilters(filtersFromFlags(flags.filter));
    const [r, me] = await Promise.all([controlRead(io, 'listNodes'), daemonApi('info')]);
    const nodes = filterNodes(r.nodes, f);
    if (choice.kind === 'json') {
      json(io, nodes.map(nodeJson));
      return 0;
    }
    if (choice.kind === 'table' || choice.kind === 'raw') {
      io.stdout.write(renderList(choice, NODE_FIELDS, nodeContexts(nodes, me.nodeId, me.version)));
      return 0;
    }
    if (flags.quiet) {
      io.stdout.write(nodes.map((n) => `${n.meta.id}\n`).join(''));
      return 0;
    }
    const rows = nodes.map((n) => [
      `${n.meta.id}${n.meta.id === me.nodeId ? ' *' : ''}`,
      n.description?.hostname || n.spec?.name || '',
      stateName(n.status?.state),
      availName(n.spec?.availability),
      managerStatus(n),
      n.description?.engineVersion || me.version,
    ]);
    io.stdout.write(table(['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ENGINE VERSION'], rows));
    return 0;
  },
});

const nodePs = leaf({
  name: 'ps',
  summary: 'List the tasks running on one or more nodes (default: this node)',
  usage: '[OPTIONS] [NODE...]',
  flags: {
    filter: {
      type: 'string',
      short: 'f',
      multiple: true,
      valueName: 'KEY=VALUE',
      description: 'Filter as docker: desired-state=running|shutdown|accepted|…, id=, label=, name=',
    },
    format: { type: 'string', valueName: 'FORMAT', description: LIST_FORMAT_HELP.replace('Hostname', 'Name') },
    'no-trunc': { type: 'boolean', description: 'Do not truncate output' },
    quiet: { type: 'boolean', short: 'q', description: 'Only display task IDs' },
  },
  async run({ flags, positionals, io }) {
    const { nodePsOutput } = await import('./service.js');
    const refs = positionals.length ? positionals : ['self'];
    const me = refs.includes('self') || flags.filter.includes('node=self') ? await daemonApi('info') : undefined;
    const ids: string[] = [];
    for (const ref of refs) ids.push(ref === 'self' ? me!.nodeId : (await controlRead(io, 'getNode', { ref })).node.meta.id);
    io.stdout.write(
      await nodePsOutput(io, ids, {
        filter: flags.filter,
        format: flags.format,
        noTrunc: flags['no-trunc'],
        quiet: flags.quiet,
        selfId: me?.nodeId,
      }),
    );
    return 0;
  },
});

const nodeInspect = leaf({
  name: 'inspect',
  summary: 'Display detailed information on one or more nodes (JSON; `self` is this node)',
  usage: 'NODE [NODE...]',
  flags: {
    pretty: { type: 'boolean', description: 'Print in a human friendly format' },
    format: {
      type: 'string',
      short: 'f',
      valueName: 'FORMAT',
      description: 'A Go template over the node as the Docker API shows it: {{.ID}}, {{.Spec.Role}}, {{json .Spec.Labels}}',
    },
  },
  async run({ flags, positionals, io }) {
    if (!positionals.length) throw new UsageError('give at least one node (id, id prefix, name, or `self`)');
    formatChoice(flags.format);
    if (flags.pretty && flags.format !== undefined)
      throw new UsageError('--format is incompatible with human friendly format (--pretty): give one of them', { field: '--format' });
    const me =
      positionals.includes('self') || (flags.format !== undefined && flags.format !== 'json') ? await daemonApi('info') : undefined;
    const nodes: Node[] = [];
    for (const ref of positionals) nodes.push((await controlRead(io, 'getNode', { ref: ref === 'self' ? me!.nodeId : ref })).node);
    if (flags.format !== undefined && flags.format !== 'json') {
      // The root CA's details are not read by the CLI: Description.TLSInfo is empty here.
      const tls = { TrustRoot: '', CertIssuerSubject: '', CertIssuerPublicKey: '' };
      io.stdout.write(
        renderInspect(
          flags.format,
          nodes.map((n) => toDockerNode(n, tls, me!.version)),
        ),
      );
      return 0;
    }
    if (!flags.pretty) {
      json(io, nodes.map(nodeJson));
      return 0;
    }
    for (const n of nodes) {
      io.stdout.write(
        [
          `ID:\t\t\t${n.meta.id}`,
          `Hostname:\t\t${n.description?.hostname ?? n.spec?.name}`,
          `Joined at:\t\t${new Date(n.meta.createdAt).toISOString()} (${ago(n.meta.createdAt)})`,
          'Status:',
          ` State:\t\t\t${stateName(n.status?.state)}`,
          ` Availability:\t\t${availName(n.spec?.availability)}`,
          ` Address:\t\t${n.status?.addr}`,
          ...(n.managerStatus?.raftId
            ? [
                'Manager Status:',
                ` Address:\t\t${n.managerStatus.addr}`,
                ` Raft Status:\t\t${managerStatus(n)}`,
                ` Leader:\t\t${n.managerStatus.leader ? 'Yes' : 'No'}`,
              ]
            : []),
          ...(Object.keys(n.spec?.labels ?? {}).length
            ? ['Labels:', ...Object.entries(n.spec.labels).map(([k, v]) => ` - ${k}=${v}`)]
            : []),
          // The daemon's own labels (`tsswarm daemon --label`), as docker's `Engine Labels:`.
          ...(Object.keys(n.description?.engineLabels ?? {}).length
            ? ['Engine Labels:', ...Object.entries(n.description!.engineLabels).map(([k, v]) => ` - ${k}=${v}`)]
            : []),
        ].join('\n') + '\n',
      );
    }
    return 0;
  },
});

function parseLabel(s: string): [string, string] {
  const i = s.indexOf('=');
  if (i === 0) throw UsageError.invalid('--label-add', 'KEY=VALUE or KEY', s);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + 1)];
}

async function updateNode(ref: string, change: object): Promise<void> {
  // Read the version, then write against it: a concurrent change is refused, and retried once.
  for (let attempt = 0; ; attempt++) {
    const node = (await controlApi('getNode', { ref })).node;
    try {
      await controlApi('updateNode', { ref: node.meta.id, version: node.meta.version, ...change });
      return;
    } catch (e) {
      if (attempt < 5 && ((e as TsswarmError).code === 'CONFLICT' || /handing leadership over/.test((e as Error).message))) {
        await new Promise((r) => setTimeout(r, 300));
        continue;
      }
      throw e;
    }
  }
}

const nodeUpdate = leaf({
  name: 'update',
  summary: 'Update a node: availability, labels',
  usage: '[OPTIONS] NODE',
  flags: {
    availability: { type: 'string', valueName: 'STATE', description: 'active, pause or drain' },
    'label-add': { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'Add or update a node label' },
    'label-rm': { type: 'string', multiple: true, valueName: 'KEY', description: 'Remove a node label' },
    role: { type: 'string', valueName: 'ROLE', description: 'worker or manager' },
  },
  async run({ flags, positionals, io }) {
    if (positionals.length !== 1) throw new UsageError('give exactly one node to update');
    const availability = flags.availability ? oneOf('--availability', flags.availability, ['active', 'pause', 'drain']) : '';
    const role = flags.role ? oneOf('--role', flags.role, ['worker', 'manager']) : '';
    await updateNode(positionals[0]!, {
      availability,
      role,
      labelAdd: Object.fromEntries(flags['label-add'].map(parseLabel)),
      labelRm: flags['label-rm'],
    });
    io.stdout.write(`${positionals[0]}\n`);
    return 0;
  },
});

function roleCommand(name: 'promote' | 'demote'): Command {
  return leaf({
    name,
    summary: name === 'promote' ? 'Promote one or more nodes to manager' : 'Demote one or more nodes from manager to worker',
    usage: 'NODE [NODE...]',
    flags: {},
    async run({ positionals, io }) {
      if (!positionals.length) throw new UsageError(`give at least one node to ${name}`);
      for (const ref of positionals) {
        await updateNode(ref, { role: name === 'promote' ? 'manager' : 'worker', labelRm: [], labelAdd: {} });
        io.stdout.write(`Node ${ref} ${name}d to ${name === 'promote' ? 'a manager' : 'a worker'} in the swarm.\n`);
      }
      return 0;
    },
  });
}

const nodeRm = leaf({
  name: 'rm',
  summary: 'Remove one or more nodes from the cluster (their certificates are revoked)',
  usage: '[OPTIONS] NODE [NODE...]',
  flags: { force: { type: 'boolean', short: 'f', description: 'Remove a node that is not down' } },
  async run({ flags, positionals, io }) {
    if (!positionals.length) throw new UsageError('give at least one node to remove');
    for (const ref of positionals) {
      await controlApi('removeNode', { ref, force: flags.force });
      io.stdout.write(`${ref}\n`);
    }
    return 0;
  },
});

const nodeTransferLeader = leaf({
  name: 'transfer-leader',
  summary: 'Hand Raft leadership to another manager',
  usage: '[NODE]',
  description:
    'Asks the leader to hand leadership to NODE (id, id prefix or hostname), or, without NODE, to the reachable manager ' +
    'whose log is the most caught up, and waits until that manager leads. Use it before maintenance on the leader. ' +
    'Refused when NODE is not a voting manager or the leader has not heard from it lately.',
  flags: {},
  async run({ positionals, io }) {
    if (positionals.length > 1) throw new UsageError('give at most one node: tsswarm node transfer-leader [NODE]', { field: 'NODE' });
    const r = await controlApi('transferLeader', { ref: positionals[0] ?? '' }, 20_000);
    const n = await controlApi('getNode', { ref: r.nodeId }).catch(() => undefined);
    const name = n?.node?.description?.hostname || n?.node?.spec?.name || r.nodeId;
    io.stdout.write(r.unchanged ? `${name} already leads (term ${r.term}).\n` : `Leadership moved to ${name} (term ${r.term}).\n`);
    return 0;
  },
});

const nodeCommands = [nodeLs, nodePs, nodeInspect, nodeUpdate, roleCommand('promote'), roleCommand('demote'), nodeTransferLeader, nodeRm];
const nodeCommand = group({ name: 'node', summary: 'Manage the nodes of the cluster', subcommands: () => nodeCommands });

const swarmCommand = group({
  name: 'swarm',
  summary: 'Manage the cluster: update its settings, unlock (and init, join, join-token, leave as the top-level commands)',
  subcommands: () => [
    initCommand,
    joinCommand,
    joinTokenCommand,
    leaveCommand,
    swarmUpdateLeaf,
    swarmCaCommand,
    unlockCommand,
    unlockKeyCommand,
  ],
});

export const clusterCommands: readonly Command[] = [
  daemonCommand,
  initCommand,
  joinCommand,
  joinTokenCommand,
  leaveCommand,
  infoCommand,
  unlockCommand,
  unlockKeyCommand,
  swarmCommand,
  nodeCommand,
];
export { closeClients };
void TsswarmError;
