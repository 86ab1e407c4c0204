// From a loaded compose config and a stack name to the objects `docker stack
// deploy` creates, as JSON bodies of the Engine API: networks, secrets,
// configs (data read through the caller's readFile) and one ServiceSpec per
// service, with docker's defaults, sort orders, labels and errors. Keys
// tsswarm cannot honour still come out here; spec/docker/ refuses them by
// field path, so nothing is dropped silently on our side.
import { ComposeError } from './errors.js';
import type { LoadedCompose, LoadOptions } from './load.js';
import { absPath, type FileRef, kvMap, type PortConfig, type VolumeConfig } from './normalize.js';
import type {
  ComposeStack,
  DockerConfigReference,
  DockerContainerSpec,
  DockerMount,
  DockerNetworkCreate,
  DockerSecretReference,
  DockerSecretSpec,
  DockerServiceSpec,
  DockerUpdateConfig,
  Labels,
} from './types.js';
import { parseCpus, parseDuration, parseMemory, scalarString } from './values.js';
import type { YamlMap, YamlValue } from './yaml.js';

export const LABEL_NAMESPACE = 'com.docker.stack.namespace';
export const LABEL_IMAGE = 'com.docker.stack.image';
/** The largest secret or config file read: Swarm's limit (spec/secret.ts), less one byte. */
export const MAX_OBJECT_FILE_BYTES = 500 * 1024 - 1;

/** Service keys docker ignores with "Ignoring unsupported options". */
export const UNSUPPORTED_KEYS = [
  'build',
  'cgroupns_mode',
  'cgroup_parent',
  'devices',
  'domainname',
  'external_links',
  'ipc',
  'links',
  'mac_address',
  'network_mode',
  'pid',
  'privileged',
  'restart',
  'security_opt',
  'shm_size',
  'userns_mode',
];
/** Service keys docker ignores with "Ignoring deprecated options", and why. */
export const DEPRECATED_KEYS: Record<string, string> = {
  container_name: 'Setting the container name is not supported.',
  expose: "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
};

const isMap = (v: YamlValue | undefined): v is YamlMap => v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v);
const str = (v: YamlValue | undefined): string | undefined => (v === undefined || v === null ? undefined : scalarString(v));
const num = (v: YamlValue | undefined): number | undefined => (v === undefined || v === null ? undefined : Number(v));
const strs = (v: YamlValue | undefined): string[] | undefined => (Array.isArray(v) ? v.map(scalarString) : undefined);

/** docker's stack-name check, then the daemon's rule for the names built from it. */
export function checkStackName(name: string): void {
  if (name.trim() === '' || /["']/.test(name)) throw new ComposeError(`invalid stack name: ${JSON.stringify(name)}`);
  if (!/^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/.test(name)) throw new ComposeError('name must be valid as a DNS name component');
  if (name.length > 63) throw new ComposeError('name must be 63 characters or fewer');
}

const scope = (ns: string, key: string): string => `${ns}_${key}`;
const withNamespace = (ns: string, labels?: Labels): Labels => ({ ...(labels ?? {}), [LABEL_NAMESPACE]: ns });

/** mattn/go-shellwords as docker uses it for a string command: quotes and backslashes, no expansion. */
export function splitShell(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1] as string)) cur += s[++i];
      else cur += c;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new ComposeError(`invalid command line string: ${s}`);
  if (inWord) out.push(cur);
  return out;
}

const shellCommand = (v: YamlValue | undefined): string[] | undefined =>
  v === undefined || v === null ? undefined : typeof v === 'string' ? splitShell(v) : strs(v);

/** The image as the Engine API client sends it: a tag `latest` added when there is neither tag nor digest. */
export function imageWithTag(service: string, image: string | undefined): string {
  if (!image) throw new ComposeError(`invalid image reference for service ${service}: no image specified`);
  const at = image.indexOf('@');
  const name = at >= 0 ? image.slice(0, at) : image;
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  const hasTag = colon > slash;
  const repo = hasTag ? name.slice(0, colon) : name;
  const parts = repo.split('/');
  const hasDomain = parts.length > 1 && /[.:]|^localhost$/.test(parts[0] as string);
  const path = hasDomain ? parts.slice(1).join('/') : repo;
  if (/[A-Z]/.test(path)) {
    const familiar = !hasDomain && parts.length === 1 ? `library/${path}` : path;
    throw new ComposeError(
      `invalid image reference for service ${service}: invalid reference format: repository name (${familiar}) must be lowercase`,
    );
  }
  const comp = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
  if (!path.split('/').every((c) => comp.test(c)) || (hasTag && !/^[\w][\w.-]{0,127}$/.test(name.slice(colon + 1))))
    throw new ComposeError(`invalid image reference for service ${service}: invalid reference format`);
  let familiar = image;
  for (const prefix of ['docker.io/library/', 'index.docker.io/library/', 'docker.io/', 'index.docker.io/'])
    if (familiar.startsWith(prefix)) {
      familiar = familiar.slice(prefix.length);
      break;
    }
  return at >= 0 || hasTag ? familiar : `${familiar}:latest`;
}

/** opts.EffectiveCapAddCapDrop: upper-cased, `CAP_` added, ALL trumps the rest, added caps never dropped, sorted. */
export function effectiveCaps(add: string[] = [], drop: string[] = []): [string[], string[]] {
  const norm = (l: string[]) =>
    [
      ...new Set(
        l
          .map((c) => c.trim().toUpperCase())
          .filter((c) => c !== '')
          .map((c) => (c === 'ALL' || c.startsWith('CAP_') ? c : `CAP_${c}`)),
      ),
    ].sort();
  let a = norm(add);
  let d = norm(drop);
  if (a.includes('ALL')) a = ['ALL'];
  if (d.includes('ALL')) d = ['ALL'];
  d = d.filter((c) => !a.includes(c));
  return [a, d];
}

function durationOf(v: YamlValue | undefined): number | undefined {
  return typeof v === 'string' ? parseDuration(v) : undefined;
}

function updateConfig(v: YamlValue | undefined): DockerUpdateConfig | undefined {
  if (!isMap(v)) return undefined;
  const delay = durationOf(v.delay);
  const monitor = durationOf(v.monitor);
  return {
    Parallelism: v.parallelism === undefined || v.parallelism === null ? 1 : Number(v.parallelism),
    ...(delay ? { Delay: delay } : {}),
    ...(v.failure_action ? { FailureAction: str(v.failure_action) as string } : {}),
    ...(monitor ? { Monitor: monitor } : {}),
    MaxFailureRatio: num(v.max_failure_ratio) ?? 0,
    Order: str(v.order) ?? '',
  };
}

function restartPolicy(svc: YamlMap): DockerServiceSpec['TaskTemplate']['RestartPolicy'] {
  const d = isMap(svc.deploy) ? svc.deploy : {};
  const rp = d.restart_policy;
  if (isMap(rp)) {
    const delay = durationOf(rp.delay);
    const window = durationOf(rp.window);
    return {
      ...(rp.condition ? { Condition: str(rp.condition) as string } : {}),
      ...(delay !== undefined ? { Delay: delay } : {}),
      ...(rp.max_attempts !== undefined && rp.max_attempts !== null ? { MaxAttempts: Number(rp.max_attempts) } : {}),
      ...(window !== undefined ? { Window: window } : {}),
    };
  }
  const restart = str(svc.restart) ?? '';
  const [name, count, ...more] = restart.split(':');
  if (more.length > 0) throw new ComposeError(`invalid restart policy format: ${restart}`);
  switch (name) {
    case '':
    case 'no':
      if (count !== undefined) throw new ComposeError(`maximum retry count cannot be used with restart policy '${name}'`);
      return undefined;
    case 'always':
    case 'unless-stopped':
      if (count !== undefined) throw new ComposeError(`maximum retry count cannot be used with restart policy '${name}'`);
      return { Condition: 'any' };
    case 'on-failure': {
      if (count !== undefined && !/^\d+$/.test(count))
        throw new ComposeError('invalid restart policy format: maximum retry count must be an integer');
      return { Condition: 'on-failure', MaxAttempts: count === undefined ? 0 : Number(count) };
    }
    default:
      throw new ComposeError(`unknown restart policy: ${name}`);
  }
}

function mode(d: YamlMap): DockerServiceSpec['Mode'] {
  const m = str(d.mode) ?? '';
  const replicas = d.replicas === undefined || d.replicas === null ? undefined : Number(d.replicas);
  switch (m) {
    case 'global-job':
    case 'global':
      if (replicas !== undefined) throw new ComposeError('replicas can only be used with replicated or replicated-job mode');
      return m === 'global' ? { Global: {} } : { GlobalJob: {} };
    case 'replicated-job':
      return { ReplicatedJob: replicas === undefined ? {} : { MaxConcurrent: replicas, TotalCompletions: replicas } };
    case 'replicated':
    case '':
      return { Replicated: replicas === undefined ? {} : { Replicas: replicas } };
    default:
      throw new ComposeError(`Unknown mode: ${m}`);
  }
}

function healthcheck(v: YamlValue | undefined): DockerContainerSpec['Healthcheck'] {
  if (!isMap(v)) return undefined;
  if (v.disable === true) {
    if (Array.isArray(v.test) && v.test.length > 0) throw new ComposeError("test and disable can't be set at the same time");
    return { Test: ['NONE'] };
  }
  const h: NonNullable<DockerContainerSpec['Healthcheck']> = {};
  const test = strs(v.test);
  if (test && test.length > 0) h.Test = test;
  const interval = durationOf(v.interval);
  const timeout = durationOf(v.timeout);
  const startPeriod = durationOf(v.start_period);
  const startInterval = durationOf(v.start_interval);
  if (interval) h.Interval = interval;
  if (timeout) h.Timeout = timeout;
  if (startPeriod) h.StartPeriod = startPeriod;
  if (startInterval) h.StartInterval = startInterval;
  if (v.retries !== undefined && v.retries !== null && Number(v.retries) !== 0) h.Retries = Number(v.retries);
  return h;
}

function resources(d: YamlMap): DockerServiceSpec['TaskTemplate']['Resources'] {
  const r = isMap(d.resources) ? d.resources : {};
  const out: DockerServiceSpec['TaskTemplate']['Resources'] = {};
  if (isMap(r.limits)) {
    const l = r.limits;
    const cpus = l.cpus ? parseCpus(str(l.cpus) as string) : 0;
    const mem = l.memory ? parseMemory(str(l.memory) as string) : 0;
    const pids = num(l.pids) ?? 0;
    out.Limits = { ...(cpus ? { NanoCPUs: cpus } : {}), ...(mem ? { MemoryBytes: mem } : {}), ...(pids ? { Pids: pids } : {}) };
  }
  if (isMap(r.reservations)) {
    const l = r.reservations;
    const cpus = l.cpus ? parseCpus(str(l.cpus) as string) : 0;
    const mem = l.memory ? parseMemory(str(l.memory) as string) : 0;
    const generic = Array.isArray(l.generic_resources)
      ? l.generic_resources.flatMap((g) => {
          const spec = isMap(g) && isMap(g.discrete_resource_spec) ? g.discrete_resource_spec : undefined;
          return spec ? [{ DiscreteResourceSpec: { Kind: str(spec.kind) ?? '', Value: num(spec.value) ?? 0 } }] : [];
        })
      : [];
    out.Reservations = {
      ...(cpus ? { NanoCPUs: cpus } : {}),
      ...(mem ? { MemoryBytes: mem } : {}),
      ...(generic.length > 0 ? { GenericResources: generic } : {}),
    };
  }
  return out;
}

function placement(d: YamlMap): DockerServiceSpec['TaskTemplate']['Placement'] {
  const p = isMap(d.placement) ? d.placement : {};
  const constraints = strs(p.constraints);
  const prefs = Array.isArray(p.preferences)
    ? p.preferences.map((x) => ({ Spread: { SpreadDescriptor: str((x as YamlMap).spread) ?? '' } }))
    : [];
  const max = num(p.max_replicas_per_node) ?? 0;
  return {
    ...(constraints && constraints.length > 0 ? { Constraints: constraints } : {}),
    ...(prefs.length > 0 ? { Preferences: prefs } : {}),
    ...(max ? { MaxReplicas: max } : {}),
  };
}

function ports(list: YamlValue | undefined): DockerServiceSpec['EndpointSpec']['Ports'] {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const out = (list as unknown as PortConfig[]).map((p) => ({
    ...(p.protocol ? { Protocol: p.protocol } : {}),
    ...(p.target ? { TargetPort: Number(p.target) } : {}),
    ...(p.published ? { PublishedPort: Number(p.published) } : {}),
    ...(p.mode ? { PublishMode: p.mode } : {}),
  }));
  return out.sort((a, b) => (a.PublishedPort ?? 0) - (b.PublishedPort ?? 0));
}

function mount(v: VolumeConfig, volumes: YamlMap, ns: string): DockerMount {
  const m: DockerMount = {
    ...(v.type ? { Type: v.type } : {}),
    ...(v.source ? { Source: v.source } : {}),
    ...(v.target ? { Target: v.target } : {}),
    ...(v.read_only ? { ReadOnly: true } : {}),
    ...(v.consistency ? { Consistency: v.consistency } : {}),
  };
  switch (v.type) {
    case 'volume': {
      if (v.tmpfs) throw new ComposeError('tmpfs options are incompatible with type volume');
      if (v.bind) throw new ComposeError('bind options are incompatible with type volume');
      if (!v.source) return m;
      if (!(v.source in volumes)) throw new ComposeError(`undefined volume ${JSON.stringify(v.source)}`);
      const decl = isMap(volumes[v.source]) ? (volumes[v.source] as YamlMap) : {};
      m.Source = scope(ns, v.source);
      m.VolumeOptions = v.volume?.nocopy ? { NoCopy: true } : {};
      const name = externalName(v.source, decl);
      if (name) m.Source = name;
      if (isExternal(decl)) return m;
      m.VolumeOptions.Labels = withNamespace(ns, kvLabels(decl.labels));
      if (decl.driver || decl.driver_opts !== undefined)
        m.VolumeOptions.DriverConfig = {
          ...(decl.driver ? { Name: str(decl.driver) as string } : {}),
          ...(isMap(decl.driver_opts) ? { Options: stringMap(decl.driver_opts) } : {}),
        };
      return m;
    }
    case 'bind':
      if (!v.source) throw new ComposeError('invalid bind source, source cannot be empty');
      if (v.volume) throw new ComposeError('volume options are incompatible with type bind');
      if (v.tmpfs) throw new ComposeError('tmpfs options are incompatible with type bind');
      if (v.bind?.propagation) m.BindOptions = { Propagation: v.bind.propagation };
      return m;
    case 'tmpfs':
      if (v.source) throw new ComposeError('invalid tmpfs source, source must be empty');
      if (v.bind) throw new ComposeError('bind options are incompatible with type tmpfs');
      if (v.volume) throw new ComposeError('volume options are incompatible with type tmpfs');
      if (v.tmpfs) m.TmpfsOptions = v.tmpfs.size ? { SizeBytes: Number(v.tmpfs.size) } : {};
      return m;
    case 'npipe':
      return m;
    default:
      throw new ComposeError('volume type must be volume, bind, tmpfs, npipe, or cluster');
  }
}

function stringMap(v: YamlValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (isMap(v)) for (const [k, x] of Object.entries(v)) out[k] = x === null ? '' : scalarString(x);
  return out;
}

function kvLabels(v: YamlValue | undefined): Labels {
  const out: Labels = {};
  for (const [k, x] of Object.entries(kvMap(v))) out[k] = x ?? '';
  return out;
}

function isExternal(decl: YamlMap): boolean {
  return decl.external === true || isMap(decl.external);
}

/** The name an entry goes by: `name:` (or the deprecated `external.name`), the key when external, else none (scoped). */
function externalName(key: string, decl: YamlMap, warn?: (s: string) => void, kind = 'network'): string | undefined {
  if (isMap(decl.external) && decl.external.name) {
    warn?.(`${kind} ${key}: ${kind}.external.name is deprecated in favor of ${kind}.name`);
    return str(decl.external.name);
  }
  if (decl.name) return str(decl.name);
  return isExternal(decl) ? key : undefined;
}

function fileRefs(
  kind: 'secret' | 'config',
  svcName: string,
  list: YamlValue | undefined,
  decls: YamlMap,
  ns: string,
): { File: DockerSecretReference['File']; Name: string }[] | undefined {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const out = (list as unknown as FileRef[]).map((r) => {
    if (!(r.source in decls)) throw new ComposeError(`undefined ${kind} ${JSON.stringify(r.source)}`);
    const decl = isMap(decls[r.source]) ? (decls[r.source] as YamlMap) : {};
    return {
      File: {
        Name: r.target ? String(r.target) : r.source,
        UID: r.uid ? String(r.uid) : '0',
        GID: r.gid ? String(r.gid) : '0',
        Mode: r.mode === undefined || r.mode === null ? 0o444 : Number(r.mode),
      },
      Name: externalName(r.source, decl) ?? scope(ns, r.source),
    };
  });
  const seen = new Set<string>();
  for (const r of out) {
    if (seen.has(r.File.Name)) throw new ComposeError(`duplicate ${kind} target for ${r.Name} not allowed`);
    seen.add(r.File.Name);
  }
  void svcName;
  return out.sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
}

const USER_DEFINED_EXCLUDED = new Set(['default', 'bridge', 'host', 'none']);

function serviceNetworks(
  svcKey: string,
  svc: YamlMap,
  networks: YamlMap,
  ns: string,
): NonNullable<DockerServiceSpec['TaskTemplate']['Networks']> {
  const attach: YamlMap = isMap(svc.networks) && Object.keys(svc.networks).length > 0 ? svc.networks : { default: null };
  const out: NonNullable<DockerServiceSpec['TaskTemplate']['Networks']> = [];
  for (const [name, cfg] of Object.entries(attach)) {
    if (!(name in networks) && name !== 'default') throw new ComposeError(`service ${svcKey}: undefined network ${JSON.stringify(name)}`);
    const decl = isMap(networks[name]) ? (networks[name] as YamlMap) : {};
    const target = externalName(name, decl) ?? scope(ns, name);
    const aliases = isMap(cfg) ? (strs(cfg.aliases) ?? []) : [];
    const driverOpts = isMap(cfg) && isMap(cfg.driver_opts) ? stringMap(cfg.driver_opts) : undefined;
    if (!USER_DEFINED_EXCLUDED.has(target) && !target.startsWith('container:')) aliases.push(svcKey);
    out.push({ Target: target, ...(aliases.length > 0 ? { Aliases: aliases } : {}), ...(driverOpts ? { DriverOpts: driverOpts } : {}) });
  }
  return out.sort((a, b) => (a.Target < b.Target ? -1 : a.Target > b.Target ? 1 : 0));
}

function extraHosts(list: YamlValue | undefined): string[] | undefined {
  const l = strs(list);
  if (!l || l.length === 0) return undefined;
  return l.map((h) => {
    let i = h.indexOf('=');
    if (i < 0) i = h.indexOf(':');
    const host = i < 0 ? h : h.slice(0, i);
    let ip = i < 0 ? '' : h.slice(i + 1);
    if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    return `${ip} ${host}`;
  });
}

function convertService(key: string, svc: YamlMap, config: YamlMap, ns: string): DockerServiceSpec {
  const d = isMap(svc.deploy) ? svc.deploy : {};
  const networks = isMap(config.networks) ? config.networks : {};
  const volumes = isMap(config.volumes) ? config.volumes : {};
  const image = imageWithTag(key, str(svc.image));
  const env = isMap(svc.environment)
    ? Object.entries(svc.environment)
        .map(([k, v]) => (v === null ? k : `${k}=${scalarString(v)}`))
        .sort()
    : [];
  const [capAdd, capDrop] = effectiveCaps(strs(svc.cap_add), strs(svc.cap_drop));
  const ulimits = isMap(svc.ulimits)
    ? Object.keys(svc.ulimits)
        .sort()
        .map((name) => {
          const u = (svc.ulimits as YamlMap)[name] as YamlValue;
          return isMap(u) ? { Name: name, Hard: Number(u.hard), Soft: Number(u.soft) } : { Name: name, Hard: Number(u), Soft: Number(u) };
        })
    : [];
  const dns = strs(svc.dns) ?? [];
  const dnsSearch = strs(svc.dns_search) ?? [];
  const mounts = Array.isArray(svc.volumes) ? (svc.volumes as unknown as VolumeConfig[]).map((v) => mount(v, volumes, ns)) : [];
  const secrets = fileRefs('secret', key, svc.secrets, isMap(config.secrets) ? config.secrets : {}, ns);
  const configs = fileRefs('config', key, svc.configs, isMap(config.configs) ? config.configs : {}, ns);
  const credSpec = isMap(svc.credential_spec) ? svc.credential_spec : undefined;
  const stopGrace = durationOf(svc.stop_grace_period);
  const sysctls = isMap(svc.sysctls) ? stringMap(svc.sysctls) : undefined;
  const command = shellCommand(svc.entrypoint);
  const args = shellCommand(svc.command);
  const hosts = extraHosts(svc.extra_hosts);
  const hc = healthcheck(svc.healthcheck);
  const cs: DockerContainerSpec = {
    Image: image,
    Labels: withNamespace(ns, isMap(svc.labels) ? stringMap(svc.labels) : undefined),
    ...(command && command.length > 0 ? { Command: command } : {}),
    ...(args && args.length > 0 ? { Args: args } : {}),
    ...(svc.hostname ? { Hostname: str(svc.hostname) as string } : {}),
    ...(env.length > 0 ? { Env: env } : {}),
    ...(svc.working_dir ? { Dir: str(svc.working_dir) as string } : {}),
    ...(svc.user ? { User: str(svc.user) as string } : {}),
    Privileges: {
      CredentialSpec: credSpec
        ? {
            ...(credSpec.config ? { Config: str(credSpec.config) as string } : {}),
            ...(credSpec.file ? { File: str(credSpec.file) as string } : {}),
            ...(credSpec.registry ? { Registry: str(credSpec.registry) as string } : {}),
          }
        : null,
      SELinuxContext: null,
      NoNewPrivileges: false,
    },
    ...(typeof svc.init === 'boolean' ? { Init: svc.init } : {}),
    ...(svc.stop_signal ? { StopSignal: str(svc.stop_signal) as string } : {}),
    ...(svc.tty === true ? { TTY: true } : {}),
    ...(svc.stdin_open === true ? { OpenStdin: true } : {}),
    ...(svc.read_only === true ? { ReadOnly: true } : {}),
    ...(mounts.length > 0 ? { Mounts: mounts } : {}),
    ...(stopGrace !== undefined ? { StopGracePeriod: stopGrace } : {}),
    ...(hc ? { Healthcheck: hc } : {}),
    ...(hosts ? { Hosts: hosts } : {}),
    ...(dns.length > 0 || dnsSearch.length > 0
      ? { DNSConfig: { ...(dns.length > 0 ? { Nameservers: dns } : {}), ...(dnsSearch.length > 0 ? { Search: dnsSearch } : {}) } }
      : {}),
    ...(secrets ? { Secrets: secrets.map((s): DockerSecretReference => ({ File: s.File, SecretID: '', SecretName: s.Name })) } : {}),
    ...(configs ? { Configs: configs.map((s): DockerConfigReference => ({ File: s.File, ConfigID: '', ConfigName: s.Name })) } : {}),
    ...(svc.isolation ? { Isolation: str(svc.isolation) as string } : {}),
    ...(sysctls && Object.keys(sysctls).length > 0 ? { Sysctls: sysctls } : {}),
    ...(capAdd.length > 0 ? { CapabilityAdd: capAdd } : {}),
    ...(capDrop.length > 0 ? { CapabilityDrop: capDrop } : {}),
    ...(ulimits.length > 0 ? { Ulimits: ulimits } : {}),
  };
  const logging = isMap(svc.logging) ? svc.logging : undefined;
  const rp = restartPolicy(svc);
  const uc = updateConfig(d.update_config);
  const rc = updateConfig(d.rollback_config);
  const p = ports(svc.ports);
  const endpointMode = str(d.endpoint_mode);
  return {
    Name: scope(ns, key),
    Labels: { ...withNamespace(ns, isMap(d.labels) ? stringMap(d.labels) : undefined), [LABEL_IMAGE]: str(svc.image) as string },
    TaskTemplate: {
      ContainerSpec: cs,
      Resources: resources(d),
      ...(rp ? { RestartPolicy: rp } : {}),
      Placement: placement(d),
      Networks: serviceNetworks(key, svc, networks, ns),
      ...(logging
        ? {
            LogDriver: {
              ...(logging.driver ? { Name: str(logging.driver) as string } : {}),
              ...(isMap(logging.options) ? { Options: stringMap(logging.options) } : {}),
            },
          }
        : {}),
      ForceUpdate: 0,
    },
    Mode: mode(d),
    ...(uc ? { UpdateConfig: uc } : {}),
    ...(rc ? { RollbackConfig: rc } : {}),
    EndpointSpec: { ...(endpointMode ? { Mode: endpointMode.toLowerCase() } : {}), ...(p ? { Ports: p } : {}) },
  };
}

function fileObject(
  kind: 'secret' | 'config',
  key: string,
  decl: YamlMap,
  ns: string,
  options: Pick<LoadOptions, 'readFile' | 'workingDir'>,
): DockerSecretSpec {
  const spec: DockerSecretSpec = { Name: str(decl.name) ?? scope(ns, key), Labels: withNamespace(ns, kvLabels(decl.labels)) };
  if (kind === 'secret' && decl.driver) {
    spec.Driver = { Name: str(decl.driver) as string, ...(isMap(decl.driver_opts) ? { Options: stringMap(decl.driver_opts) } : {}) };
  } else {
    const file = str(decl.file);
    if (!file) throw new ComposeError(`${kind} ${key}: a ${kind} needs file, external or ${kind === 'secret' ? 'driver' : 'a file'}`);
    const data = options.readFile(absPath(options.workingDir, file), MAX_OBJECT_FILE_BYTES);
    spec.Data = Buffer.from(data).toString('base64');
  }
  if (decl.template_driver) spec.Templating = { Name: str(decl.template_driver) as string };
  return spec;
}

/** The warnings docker prints for ignored keys, one complete text each. */
export function ignoredKeyWarnings(services: YamlMap): string[] {
  const unsupported = new Set<string>();
  const deprecated = new Set<string>();
  for (const svc of Object.values(services)) {
    if (!isMap(svc)) continue;
    for (const k of Object.keys(svc)) {
      if (UNSUPPORTED_KEYS.includes(k)) unsupported.add(k);
      if (k in DEPRECATED_KEYS) deprecated.add(k);
    }
  }
  const out: string[] = [];
  if (unsupported.size > 0) out.push(`Ignoring unsupported options: ${[...unsupported].sort().join(', ')}\n\n`);
  if (deprecated.size > 0)
    out.push(
      `Ignoring deprecated options:\n\n${[...deprecated]
        .map((k) => `${k}: ${DEPRECATED_KEYS[k]}`)
        .sort()
        .join('\n\n')}\n\n`,
    );
  return out;
}

/** Converts a loaded config into the stack's Docker objects. */
export function convertStack(
  loaded: LoadedCompose,
  namespace: string,
  options: Pick<LoadOptions, 'readFile' | 'workingDir'>,
): ComposeStack {
  checkStackName(namespace);
  const config = loaded.config;
  const ns = namespace;
  const services = isMap(config.services) ? config.services : {};
  const warnings = [...ignoredKeyWarnings(services), ...loaded.warnings];
  for (const [key, svc] of Object.entries(services)) imageWithTag(key, str(isMap(svc) ? svc.image : undefined));
  // External volumes cannot carry a driver, driver_opts or labels.
  for (const [key, v] of Object.entries(isMap(config.volumes) ? config.volumes : {}))
    if (isMap(v) && isExternal(v))
      for (const k of ['driver', 'driver_opts', 'labels'])
        if (v[k] !== undefined) throw new ComposeError(`conflicting parameters "external" and "${k}" specified for volume "${key}"`);
  const specs = Object.keys(services)
    .sort()
    .map((key) => convertService(key, isMap(services[key]) ? (services[key] as YamlMap) : {}, config, ns));

  const declared = isMap(config.networks) ? config.networks : {};
  const used = new Set<string>();
  for (const svc of Object.values(services)) {
    const n = isMap(svc) && isMap(svc.networks) && Object.keys(svc.networks).length > 0 ? Object.keys(svc.networks) : ['default'];
    for (const x of n) used.add(x);
  }
  const networks: DockerNetworkCreate[] = [];
  const externalNetworks: string[] = [];
  for (const key of [...used].sort()) {
    const decl = isMap(declared[key]) ? (declared[key] as YamlMap) : {};
    const name = externalName(key, decl, (w) => warnings.push(w)) ?? scope(ns, key);
    if (isExternal(decl)) {
      externalNetworks.push(name);
      continue;
    }
    const ipam = isMap(decl.ipam) ? decl.ipam : {};
    const ipamConfig = Array.isArray(ipam.config)
      ? ipam.config.map((c) => (isMap(c) && c.subnet ? { Subnet: str(c.subnet) as string } : {}))
      : [];
    networks.push({
      Name: name,
      Driver: str(decl.driver) || 'overlay',
      Scope: '',
      IPAM:
        ipam.driver || ipamConfig.length > 0
          ? { Driver: str(ipam.driver) ?? '', Options: null, Config: ipamConfig.length > 0 ? ipamConfig : null }
          : null,
      Internal: decl.internal === true,
      Attachable: decl.attachable === true,
      Ingress: false,
      ConfigOnly: false,
      ConfigFrom: null,
      Options: isMap(decl.driver_opts) ? stringMap(decl.driver_opts) : null,
      Labels: withNamespace(ns, kvLabels(decl.labels)),
    });
  }

  const objects = (kind: 'secret' | 'config'): DockerSecretSpec[] => {
    const decls = config[`${kind}s`];
    if (!isMap(decls)) return [];
    return Object.keys(decls)
      .sort()
      .flatMap((key) => {
        const decl = isMap(decls[key]) ? (decls[key] as YamlMap) : {};
        if (isExternal(decl)) {
          if (isMap(decl.external) && decl.external.name)
            warnings.push(`${kind} ${key}: ${kind}.external.name is deprecated in favor of ${kind}.name`);
          return [];
        }
        return [fileObject(kind, key, decl, ns, options)];
      });
  };
  return { namespace, networks, externalNetworks, secrets: objects('secret'), configs: objects('config'), services: specs, warnings };
}
