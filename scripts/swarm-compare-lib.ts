// The comparison half of scripts/swarm-compare.ts, pure so that a unit test
// can run it on recorded outputs: the one command list both clusters get, the
// masking of what must differ between two clusters (ids, times, tokens,
// addresses, host names, images, versions), and the verdict per command
// (exit status, header columns, row count, then the masked text).

/** How a command's standard output is compared once masked. */
export type Shape = 'table' | 'text' | 'lines' | 'json' | 'progress';

export interface CompareCommand {
  /** The docker CLI arguments; {IMAGE}, {COMPOSE}, {SECRET_FILE} and {CONFIG_FILE} are filled per cluster. */
  args: readonly string[];
  shape: Shape;
  /** Poll the command until it exits 0 (a removal racing the tasks' shutdown); the attempts are reported. */
  retryUntilOk?: boolean;
  /** Before running: wait until every service of this stack runs all its replicas. */
  waitStack?: string;
  /** Before running: wait until no task of this service is still running with desired state shutdown (old tasks stopping). */
  settle?: string;
  /** Task slots are compared as `name.<SLOT>`: which replicas land on a given node is the scheduler's choice. */
  anySlot?: boolean;
}

export const NETWORK = 'tsscmp';
export const SERVICE = 'tsscmp-web';
export const STACK = 'tsscmpstack';

/** The Swarm fields of `docker info`, one per line, as `docker info --format` prints them. */
const INFO_FORMAT = [
  'LocalNodeState={{.Swarm.LocalNodeState}}',
  'ControlAvailable={{.Swarm.ControlAvailable}}',
  'Error={{.Swarm.Error}}',
  'NodeID={{.Swarm.NodeID}}',
  'NodeAddr={{.Swarm.NodeAddr}}',
  'RemoteManagers={{len .Swarm.RemoteManagers}}',
  'Nodes={{.Swarm.Nodes}}',
  'Managers={{.Swarm.Managers}}',
  'Cluster.ID={{.Swarm.Cluster.ID}}',
  'Cluster.Spec.Name={{.Swarm.Cluster.Spec.Name}}',
  'TaskHistoryRetentionLimit={{.Swarm.Cluster.Spec.Orchestration.TaskHistoryRetentionLimit}}',
  'HeartbeatPeriod={{.Swarm.Cluster.Spec.Dispatcher.HeartbeatPeriod}}',
  'SnapshotInterval={{.Swarm.Cluster.Spec.Raft.SnapshotInterval}}',
  'NodeCertExpiry={{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}',
  'AutoLockManagers={{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}',
  'DefaultAddrPool={{.Swarm.Cluster.DefaultAddrPool}}',
  'SubnetSize={{.Swarm.Cluster.SubnetSize}}',
  'DataPathPort={{.Swarm.Cluster.DataPathPort}}',
].join('\n');

/** The one list, run in this order against each cluster. */
export const COMMANDS: readonly CompareCommand[] = [
  { args: ['info', '--format', INFO_FORMAT], shape: 'text' },
  { args: ['info', '--format', '{{json .Swarm}}'], shape: 'json' },
  { args: ['node', 'ls'], shape: 'table' },
  { args: ['node', 'inspect', 'self', '--pretty'], shape: 'text' },
  { args: ['node', 'ps'], shape: 'table' },
  { args: ['network', 'create', '-d', 'overlay', '--attachable', NETWORK], shape: 'text' },
  { args: ['network', 'ls', '--filter', 'driver=overlay'], shape: 'table' },
  { args: ['network', 'inspect', NETWORK], shape: 'json' },
  {
    args: [
      'service',
      'create',
      '--name',
      SERVICE,
      '--replicas',
      '3',
      '--network',
      NETWORK,
      '-p',
      '8080:80',
      '--no-resolve-image',
      '{IMAGE}',
      'sleep',
      '3600',
    ],
    shape: 'progress',
  },
  { args: ['service', 'ls'], shape: 'table' },
  { args: ['service', 'ps', SERVICE], shape: 'table' },
  { args: ['service', 'inspect', '--pretty', SERVICE], shape: 'text' },
  { args: ['service', 'inspect', SERVICE], shape: 'json' },
  { args: ['node', 'ps'], shape: 'table', anySlot: true },
  { args: ['service', 'scale', `${SERVICE}=5`], shape: 'progress' },
  { args: ['service', 'update', '--env-add', 'A=1', SERVICE], shape: 'progress' },
  { args: ['service', 'rollback', SERVICE], shape: 'progress' },
  // Right after the rollback converged: are the tasks it replaced stopped? (stop-first: SwarmKit starts a new task once its predecessor stopped)
  { args: ['service', 'ps', SERVICE, '--filter', 'desired-state=shutdown', '--format', '{{.Name}} {{.CurrentState}}'], shape: 'lines' },
  { args: ['service', 'ls'], shape: 'table', settle: SERVICE },
  { args: ['secret', 'create', 'tsscmp-secret', '{SECRET_FILE}'], shape: 'text' },
  { args: ['secret', 'ls'], shape: 'table' },
  { args: ['config', 'create', 'tsscmp-config', '{CONFIG_FILE}'], shape: 'text' },
  { args: ['config', 'ls'], shape: 'table' },
  // The CLI creates the stack's networks in the order of a Go map: compared sorted.
  { args: ['stack', 'deploy', '--resolve-image', 'never', '-c', '{COMPOSE}', STACK], shape: 'lines' },
  { args: ['stack', 'ls'], shape: 'table', waitStack: STACK },
  { args: ['stack', 'services', STACK], shape: 'table' },
  { args: ['stack', 'ps', STACK], shape: 'table' },
  { args: ['stack', 'rm', STACK], shape: 'lines' },
  { args: ['service', 'rm', SERVICE], shape: 'text' },
  { args: ['secret', 'rm', 'tsscmp-secret'], shape: 'text' },
  { args: ['config', 'rm', 'tsscmp-config'], shape: 'text' },
  { args: ['network', 'rm', NETWORK], shape: 'text', retryUntilOk: true },
  { args: ['swarm', 'join-token', 'worker'], shape: 'text' },
];

/** The compose file `stack deploy` gets; IMAGE is each cluster's local busybox image. */
export function composeFile(image: string): string {
  return `version: "3.8"
services:
  app:
    image: ${image}
    command: ["sleep", "3600"]
    networks: [back]
    secrets: [stack_secret]
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
  worker:
    image: ${image}
    command: ["sleep", "3600"]
    deploy:
      mode: global
networks:
  back:
    driver: overlay
secrets:
  stack_secret:
    file: ./stack-secret.txt
`;
}

/** What must differ between the two clusters, as literal strings, each replaced by its placeholder. */
export interface ClusterLiterals {
  /** The busybox image the cluster's tasks run. */
  image: string;
  /** Engine version strings (`20.10.24+dfsg1`, tsswarm's). */
  versions: readonly string[];
  /** Host names of the cluster's nodes, longest first is not needed: each is matched as a whole word. */
  hosts: readonly string[];
  /** Paths of the files the commands were given. */
  paths: readonly string[];
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Generic masks, in order: what differs between any two clusters whatever they run. */
const MASKS: readonly [RegExp, string][] = [
  // Each cluster has its own root CA: the certificate (PEM, or PEM inside a JSON string) and its issuer's subject and key.
  [/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g, '<CERT>'],
  [/(Issuer Subject:\s+|"CertIssuerSubject":\s*")[A-Za-z0-9+/=]+/g, '$1<CA-SUBJECT>'],
  [/(Issuer Public Key:\s+|"CertIssuerPublicKey":\s*")[A-Za-z0-9+/=]+/g, '$1<CA-KEY>'],
  // The store's version of an object counts every write the cluster made so far.
  [/("Version":\s*\{\s*"Index":\s*)\d+/g, '$1"<N>"'],
  [/SWMTKN-1-[0-9a-z]+-[0-9a-z]+/g, '<TOKEN>'],
  [/\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?( [+-]\d{4} UTC)?/g, '<TIME>'],
  [
    /\b(about (a|an) (minute|hour|day|week|month|year)|less than a second|\d+ (second|minute|hour|day|week|month|year)s?|(a|an) (minute|hour|day|week|month|year)) ago\b/gi,
    '<AGO>',
  ],
  [/\bsha256:[0-9a-f]{64}\b/g, '<DIGEST>'],
  [/\b[0-9a-f]{64}\b/g, '<ID>'],
  // SwarmKit ids: 25 characters of [0-9a-z]; truncated to 12 in tables. A digit is required so that words are never taken for ids.
  [/\b(?=[0-9a-z]{0,24}\d)[0-9a-z]{25}\b/g, '<ID>'],
  [/\b(?=[0-9a-z]{0,11}\d)[0-9a-z]{12}\b/g, '<ID>'],
  [/\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(\/\d{1,2})?(:\d{1,5})?\b/g, '<ADDR>'],
];

/** Masks one cluster's output: its own literals first, then the generic masks. */
export function mask(text: string, lit: ClusterLiterals): string {
  let out = text;
  const literal = (values: readonly string[], to: string): void => {
    for (const v of [...values].filter(Boolean).sort((a, b) => b.length - a.length)) out = out.replace(new RegExp(escapeRe(v), 'g'), to);
  };
  literal(lit.paths, '<PATH>');
  literal([lit.image], '<IMAGE>');
  for (const h of lit.hosts) out = out.replace(new RegExp(`\\b${escapeRe(h)}\\b`, 'g'), '<HOST>');
  for (const [re, to] of MASKS) out = out.replace(re, to);
  // After the addresses: a version such as 0.1.0 must not be found inside 10.0.1.0/24.
  for (const v of lit.versions.filter(Boolean)) out = out.replace(new RegExp(`(?<![\\w.])${escapeRe(v)}(?![\\w.])`, 'g'), '<VERSION>');
  return out;
}

/** An outcome with its standard output and error masked. */
export const maskOutcome = (o: Outcome, lit: ClusterLiterals): Outcome => ({
  ...o,
  stdout: mask(o.stdout, lit),
  stderr: mask(o.stderr, lit),
});

/** The cells of a table line: docker's tabwriter pads columns with two or more spaces. */
export const cells = (line: string): string[] =>
  line
    .trim()
    .split(/\s{2,}/)
    .filter((c) => c !== '');

const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim() !== '');

/** Key paths of a JSON document (array elements share the path `[]`), with the masked scalar at each. */
export function jsonPaths(value: unknown, path = '$'): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${path} = []`];
    return [...new Set(value.flatMap((v) => jsonPaths(v, `${path}[]`)))];
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    if (keys.length === 0) return [`${path} = {}`];
    return keys.flatMap((k) => jsonPaths((value as Record<string, unknown>)[k], `${path}.${k}`));
  }
  return [`${path} = ${JSON.stringify(value)}`];
}

/**
 * A progress display (`service create|scale|update|rollback` without --detach)
 * prints a line per refresh, as many as the convergence took: what is compared is
 * the set of distinct lines once masked, which keeps the slots, states and the
 * final verdict and drops how often each was redrawn.
 */
function progressLines(text: string): string[] {
  return [
    ...new Set(
      lines(text)
        .map((l) => l.replace(/\s+/g, ' ').trim())
        // The bar and the slot's state while it comes up are timing, not shape.
        .filter((l) => !/^\d+\/\d+: (new|allocated|pending|assigned|accepted|preparing|ready|starting)\b/.test(l))
        .filter((l) => !/^overall progress: \d+ out of \d+ tasks$/.test(l) || /^overall progress: (\d+) out of \1 tasks$/.test(l))
        .filter((l) => !/^verify: Waiting \d+ seconds/.test(l)),
    ),
  ].sort();
}

/** The masked lines that are compared for a shape (rows sorted: both CLIs sort, but by ids, which are masked). */
export function comparable(shape: Shape, masked: string): string[] {
  switch (shape) {
    case 'table': {
      const [head, ...rows] = lines(masked);
      return head === undefined ? [] : [cells(head).join(' | '), ...rows.map((r) => cells(r).join(' | ')).sort()];
    }
    case 'json': {
      try {
        return jsonPaths(JSON.parse(masked));
      } catch {
        return lines(masked);
      }
    }
    case 'progress':
      return progressLines(masked);
    case 'text':
      return lines(masked).map((l) => l.replace(/\s+$/, ''));
    case 'lines':
      // Lines whose order is the server's list order (ids, so random): compared as a sorted list.
      return lines(masked)
        .map((l) => l.replace(/\s+$/, ''))
        .sort();
  }
}

/** What one cluster gave for one command. */
export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
  /** Attempts a retryUntilOk command took (1 when it passed at once). */
  attempts?: number;
  /** Set when the command did not finish in time. */
  timedOut?: boolean;
  /** Seconds a `settle` wait took before the command ran. */
  settledSeconds?: number;
}

export interface Verdict {
  same: boolean;
  /** Each way the outputs differ, in words: exit status, columns, rows, text. */
  differences: string[];
  /** A line diff of the compared lines (`-` Swarm only, `+` tsswarm only); stderr included when it differs. */
  diff: string[];
}

/** A minimal line diff (longest common subsequence), enough for the short outputs compared here. */
export function lineDiff(a: readonly string[], b: readonly string[]): string[] {
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push(`  ${a[i]}`);
      i++;
      j++;
    } else if (j >= m || (i < n && lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) out.push(`- ${a[i++]}`);
    else out.push(`+ ${b[j++]}`);
  }
  return out;
}

const anySlot = (o: Outcome): Outcome => ({ ...o, stdout: o.stdout.replace(/\b([\w-]+)\.\d+(?=\s)/g, '$1.<SLOT>') });

/** Compares what Swarm and tsswarm printed for one command, each already masked. */
export function compareOutcomes(cmd: Pick<CompareCommand, 'shape' | 'anySlot'>, swarmOut: Outcome, tssOut: Outcome): Verdict {
  const { shape } = cmd;
  const swarm = cmd.anySlot ? anySlot(swarmOut) : swarmOut;
  const tss = cmd.anySlot ? anySlot(tssOut) : tssOut;
  const differences: string[] = [];
  const diff: string[] = [];
  if (swarm.timedOut || tss.timedOut)
    differences.push(`timed out on ${[swarm.timedOut && 'Swarm', tss.timedOut && 'tsswarm'].filter(Boolean).join(' and ')}`);
  if (swarm.code !== tss.code) differences.push(`exit status ${swarm.code} on Swarm, ${tss.code} on tsswarm`);
  if (shape === 'table') {
    const [hs] = lines(swarm.stdout);
    const [ht] = lines(tss.stdout);
    const cs = hs === undefined ? [] : cells(hs);
    const ct = ht === undefined ? [] : cells(ht);
    if (cs.join('|') !== ct.join('|'))
      differences.push(`columns ${cs.join(', ') || '(none)'} on Swarm, ${ct.join(', ') || '(none)'} on tsswarm`);
    const rs = Math.max(lines(swarm.stdout).length - 1, 0);
    const rt = Math.max(lines(tss.stdout).length - 1, 0);
    if (rs !== rt) differences.push(`${rs} rows on Swarm, ${rt} on tsswarm`);
  }
  const a = comparable(shape, swarm.stdout);
  const b = comparable(shape, tss.stdout);
  if (a.join('\n') !== b.join('\n')) {
    differences.push('output differs once masked');
    diff.push(...lineDiff(a, b).filter((l) => shape !== 'json' || !l.startsWith('  ')));
  }
  const es = lines(swarm.stderr).map((l) => l.trimEnd());
  const et = lines(tss.stderr).map((l) => l.trimEnd());
  if (es.join('\n') !== et.join('\n')) {
    differences.push('stderr differs once masked');
    diff.push('stderr:', ...lineDiff(es, et));
  }
  return { same: differences.length === 0, differences, diff };
}

/**
 * A difference studied and explained, reported with its reason rather than failing the run:
 * `deliberate`, tsswarm differs on purpose; `open`, a tsswarm bug outside the Engine API's
 * answers, on record until it is fixed (the report says so on every run).
 */
export interface Known {
  kind: 'deliberate' | 'open';
  /** The command, as `docker ARGS` with the placeholders (see label()). */
  command: string;
  /** Every masked diff line of the expected difference must contain one of these (so a new difference in the same command still fails). */
  lines: readonly string[];
  reason: string;
}

/** The command as the report names it: `docker service create ... {IMAGE} sleep 3600`, the info template shortened. */
export function label(c: CompareCommand): string {
  return `docker ${c.args.map((a) => (a.includes('\n') ? "'<Swarm fields>'" : /[\s{}]/.test(a) && !/^\{[A-Z_]+\}$/.test(a) ? `'${a}'` : a)).join(' ')}`;
}

/** Whether every difference in a verdict is explained by a known entry for this command. */
export function explained(command: string, v: Verdict, known: readonly Known[]): Known | undefined {
  if (v.same) return undefined;
  const k = known.find((e) => e.command === command);
  if (!k) return undefined;
  const changed = v.diff.filter((l) => l.startsWith('- ') || l.startsWith('+ '));
  const all = [...v.differences.filter((d) => d !== 'output differs once masked' && d !== 'stderr differs once masked'), ...changed];
  return all.every((l) => k.lines.some((p) => l.includes(p))) ? k : undefined;
}

/** One cluster's recorded run: its literals and what each command of COMMANDS gave, unmasked (TSS_COMPARE_RAW). */
export interface Recorded {
  lit: ClusterLiterals;
  outcomes: readonly Outcome[];
}

export interface Row {
  command: string;
  verdict: Verdict;
  swarm: Outcome;
  tss: Outcome;
  known?: Known;
}

/** Masks each side with its own literals and compares command by command. */
export function compareAll(commands: readonly CompareCommand[], swarm: Recorded, tss: Recorded, known: readonly Known[] = KNOWN): Row[] {
  return commands.map((cmd, i) => {
    const command = label(cmd);
    const s = swarm.outcomes[i];
    const t = tss.outcomes[i];
    if (!s || !t) throw new Error(`no recorded outcome for command ${i + 1} (${command})`);
    const verdict = compareOutcomes(cmd, maskOutcome(s, swarm.lit), maskOutcome(t, tss.lit));
    return { command, verdict, swarm: s, tss: t, known: explained(command, verdict, known) };
  });
}

/** The report: a line per command (same, differs (known), DIFFERS), the differences under it, and a summary line. */
export function renderReport(rows: readonly Row[]): { text: string; summary: string; unexplained: number; open: number } {
  const out: string[] = [];
  let unexplained = 0;
  for (const r of rows) {
    const status = r.verdict.same ? 'same' : r.known?.kind === 'deliberate' ? 'differs (known)' : r.known ? 'DIFFERS (open)' : 'DIFFERS';
    if (!r.verdict.same && !r.known) unexplained++;
    const tries = [r.swarm, r.tss].some((o) => (o.attempts ?? 1) > 1)
      ? ` [attempts: Swarm ${r.swarm.attempts}, tsswarm ${r.tss.attempts}]`
      : '';
    const settled =
      r.swarm.settledSeconds !== undefined
        ? ` [old tasks stopped after: Swarm ${r.swarm.settledSeconds.toFixed(1)} s, tsswarm ${r.tss.settledSeconds?.toFixed(1)} s]`
        : '';
    out.push(`${status.padEnd(16)} ${r.command}${tries}${settled}`);
    if (!r.verdict.same) {
      for (const d of r.verdict.differences) out.push(`    ${d}`);
      if (r.known) out.push(`    ${r.known.kind === 'open' ? 'open tsswarm bug' : 'deliberate'}: ${r.known.reason}`);
      for (const d of r.verdict.diff) out.push(`    ${d}`);
    }
  }
  const same = rows.filter((r) => r.verdict.same).length;
  const known = rows.filter((r) => !r.verdict.same && r.known?.kind === 'deliberate').length;
  const open = rows.filter((r) => !r.verdict.same && r.known?.kind === 'open').length;
  const summary = `${rows.length} commands: ${same} same, ${known} differ deliberately, ${open} differ by an open tsswarm bug, ${unexplained} differ unexplained`;
  out.push(summary);
  return { text: out.join('\n'), summary, unexplained, open };
}

/** The differences studied so far, each with its reason (docs/swarm-compare.md says more). */
export const KNOWN: readonly Known[] = [
  {
    kind: 'deliberate',
    command: "docker info --format '{{json .Swarm}}'",
    lines: ['LogEntriesForSlowFollowers'],
    reason:
      "Raft.LogEntriesForSlowFollowers: SwarmKit keeps 500 entries past a snapshot for slow followers; tsswarm's Raft keeps none (a follower that fell behind gets the snapshot) and says 0, which the CLI's JSON omits. Setting it is refused.",
  },
  {
    kind: 'deliberate',
    command: 'docker node inspect self --pretty',
    lines: ['Plugins:', ' Log:', ' Network:', ' Volume:'],
    reason:
      'Description.Engine.Plugins: a tsswarm node has no plugin system (no log, network or volume drivers to choose from), so it lists none and the CLI prints no Plugins section.',
  },
  {
    kind: 'open',
    command: "docker service ps tsscmp-web --filter desired-state=shutdown --format '{{.Name}} {{.CurrentState}}'",
    lines: [' Running <AGO>', ' Shutdown <AGO>'],
    reason:
      "stop-first updates and rollbacks: SwarmKit starts a slot's new task only once the old one has stopped (its updater delays the start until then), so when the CLI reports convergence every replaced task is down; tsswarm's updater (manager/orchestrator/update.ts) starts the new task while the old one is still stopping, so for up to its stop grace period more tasks run than the replicas (`service ls` showed 8/5 right after the rollback).",
  },
];
