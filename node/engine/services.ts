// `/services` and `/tasks`: list (dockerd's filters, `status=true`), inspect
// (`insertDefaults`), create, versioned update (and `rollback=previous`),
// remove, service logs as dockerd's multiplexed stream, and the tasks the
// docker CLI's progress display polls (`_up-to-date`). Docker's JSON is
// converted by spec/docker/service.ts and task.ts; the Control API does the
// rest, its validation messages rewritten to Docker's field names.
import { NotFoundError, TsswarmError, UsageError } from '../../lib/errors.js';
import type { ControlHandlers, LogChunk } from '../../proto/gen/control.js';
import type { LogDriver, Network, Service, Task } from '../../proto/gen/objects.js';
import { parseDockerFilters, serviceFilter, taskFilter } from '../../spec/docker/filters.js';
import { dockerMessage, serviceSpecFromDocker, serviceStatusOf, serviceToDocker } from '../../spec/docker/service.js';
import { taskServiceLabels, taskToDocker } from '../../spec/docker/task.js';
import { timeToDocker } from '../../spec/docker/values.js';
import { decodeRegistryAuth, EMPTY_REGISTRY_AUTH } from '../../spec/docker/distribution.js';
import { LogDriverError, parseLogTime } from '../../spec/log-driver.js';
import { DockerError } from './errors.js';
import { del, empty, type EngineReply, type EngineRequest, get, json, post, queryBool, queryVersion, type Route } from './route.js';
import { compareVersions } from './version.js';

/** id, exact name, then a unique id prefix, as dockerd resolves references; ambiguity and absence are errors. */
export function resolveRef<T>(items: readonly T[], ref: string, id: (x: T) => string, name: (x: T) => string, kind: string): T {
  const byId = items.find((x) => id(x) === ref);
  if (byId) return byId;
  const byName = items.filter((x) => name(x) === ref);
  if (byName.length === 1) return byName[0]!;
  if (byName.length > 1) throw new DockerError(400, `${kind} ${ref} is ambiguous (${byName.length} matches found)`);
  const byPrefix = items.filter((x) => id(x).startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1) throw new DockerError(400, `${kind} ${ref} is ambiguous (${byPrefix.length} matches found)`);
  throw new NotFoundError(`${kind} ${ref} not found`);
}

/** A Control API call whose validation errors name our fields: Docker's names instead (a 400 either way). */
async function inDockerWords<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof TsswarmError && (e.code === 'USAGE' || e.code === 'INVALID_ARGUMENT'))
      throw new DockerError(400, dockerMessage(e.message));
    throw e;
  }
}

/**
 * `X-Registry-Auth` (`--with-registry-auth`): base64url JSON of an AuthConfig,
 * kept as sent in the spec's pullOptions (as dockerd keeps it in Swarm's
 * PullOptions.RegistryAuth) for the agents that pull; never shown by inspect.
 * A header that carries no credentials (`{}`, which the docker CLI sends with
 * the flag and no login) is still an answer: it replaces what a service holds
 * with none, as dockerd does. No header is undefined (an update keeps the
 * service's own). A value that is not base64url JSON, or too long, is a 400.
 */
export function registryAuthOf(r: { headers: Record<string, string | string[] | undefined> }): string | undefined {
  const h = r.headers['x-registry-auth'];
  const raw = (Array.isArray(h) ? h[0] : h)?.trim();
  if (raw === undefined || raw === '') return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw new DockerError(400, 'X-Registry-Auth is not base64url-encoded JSON');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new DockerError(400, 'X-Registry-Auth is not base64url-encoded JSON of an AuthConfig');
  if (!/^[A-Za-z0-9_+/=-]+$/.test(raw)) throw new DockerError(400, 'X-Registry-Auth is not base64url-encoded JSON');
  try {
    if (!decodeRegistryAuth(raw)) return EMPTY_REGISTRY_AUTH;
  } catch (e) {
    throw new DockerError(400, (e as Error).message);
  }
  return raw;
}

const networkResolver =
  (networks: readonly Network[]) =>
  (ref: string): string =>
    resolveRef(
      networks,
      ref,
      (n) => n.meta.id,
      (n) => n.spec.name,
      'network',
    ).meta.id;

/** The swarm Network object a task's attachment embeds. */
function taskNetwork(n: Network | undefined, id: string): { ID: string; [k: string]: unknown } {
  if (!n) return { ID: id };
  return {
    ID: n.meta.id,
    Version: { Index: n.meta.version },
    CreatedAt: timeToDocker(n.meta.createdAt),
    UpdatedAt: timeToDocker(n.meta.updatedAt),
    Spec: { Name: n.spec.name, Labels: { ...n.spec.labels }, DriverConfiguration: { Name: n.spec.driver || 'overlay' }, Scope: 'swarm' },
  };
}

async function serviceSpecOf(r: EngineRequest, c: ControlHandlers) {
  const body = await r.json();
  const { networks } = await c.listNetworks({});
  const resolve = networkResolver(networks);
  try {
    return serviceSpecFromDocker(body, { resolveNetwork: resolve });
  } catch (e) {
    if (e instanceof UsageError) throw new DockerError(400, e.message);
    throw e;
  }
}

const tasksByService = (tasks: readonly Task[]): Map<string, Task[]> => {
  const m = new Map<string, Task[]>();
  for (const t of tasks) {
    const l = m.get(t.serviceId);
    if (l) l.push(t);
    else m.set(t.serviceId, [t]);
  }
  return m;
};

/** One frame of dockerd's multiplexed stream: stream (1 stdout, 2 stderr), three zero bytes, the length (u32 BE), the payload. */
export function muxFrame(stream: 1 | 2 | 3, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + payload.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, payload.length);
  out.set(payload, 8);
  return out;
}

/** `?tail=`: all (or absent) is 0 for our Control API; a whole number; anything else dockerd's 400. */
function queryTail(r: EngineRequest): number {
  const v = r.query.get('tail') ?? 'all';
  if (v === 'all' || v === '') return 0;
  if (!/^\d+$/.test(v)) throw new DockerError(400, `invalid value for tail: ${v}`);
  return Math.min(Number(v), 0xffff_ffff);
}

/**
 * A log chunk's lines as frames: details (`key=value,...`) and the time first, as dockerd writes them.
 * `raw` (a --tty service's logs): the lines alone, unframed, as dockerd sends a TTY's output (the docker CLI copies them as they come).
 */
export function logFrames(ch: LogChunk, serviceId: string, o: { details: boolean; timestamps: boolean; raw?: boolean }): Uint8Array[] {
  const text = new TextDecoder().decode(ch.data);
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const stream: 1 | 2 = ch.stream === 'stderr' ? 2 : 1;
  const stamp = o.timestamps ? `${new Date(Number(ch.time) || Date.now()).toISOString()} ` : '';
  const details = o.details
    ? `com.docker.swarm.node.id=${ch.nodeId},com.docker.swarm.service.id=${serviceId},com.docker.swarm.task.id=${ch.taskId} `
    : '';
  return lines.map((l) => {
    const payload = new TextEncoder().encode(`${stamp}${details}${l}\n`);
    return o.raw ? payload : muxFrame(stream, payload);
  });
}

/** `?since=`/`?until=` as dockerd takes them (Unix seconds with a fraction, as the docker CLI sends; RFC 3339 too), in Unix ms; 0 when absent. */
function queryTime(r: EngineRequest, key: 'since' | 'until'): number {
  const v = r.query.get(key) ?? '';
  if (v === '' || v === '0') return 0;
  try {
    return Math.max(1, parseLogTime(key, v, Date.now()));
  } catch (e) {
    if (e instanceof LogDriverError) throw new DockerError(400, `invalid value for ${key}: ${v}`);
    throw e;
  }
}

/**
 * dockerd's content type for logs: a --tty service's or task's are a raw stream (one terminal, no
 * stdout/stderr to tell apart); others multiplexed, so named from API 1.42 on.
 */
export function logContentType(apiVersion: string, tty: boolean): string {
  return !tty && compareVersions(apiVersion, '1.42') >= 0
    ? 'application/vnd.docker.multiplexed-stream'
    : 'application/vnd.docker.raw-stream';
}

/**
 * A service's or task's logs as dockerd streams them: multiplexed frames (the
 * lines alone for a --tty one), each line with its time and details first when
 * asked (the docker CLI asks for details and builds its `task@node |` prefix from them).
 */
async function logsResponse(
  r: EngineRequest,
  ref: string,
  serviceId: string,
  driver: LogDriver | null | undefined,
  tty: boolean,
): Promise<EngineReply> {
  const stdout = queryBool(r.query, 'stdout');
  const stderr = queryBool(r.query, 'stderr');
  if (!stdout && !stderr) throw new DockerError(400, 'Bad parameters: you must choose at least one stream');
  const details = queryBool(r.query, 'details');
  const timestamps = queryBool(r.query, 'timestamps');
  const tail = queryTail(r);
  const follow = queryBool(r.query, 'follow');
  const sinceMs = queryTime(r, 'since');
  const untilMs = queryTime(r, 'until');
  const c = r.backend.control();
  // Before the stream starts, so it is the reply's status, as dockerd's.
  if (driver?.name === 'none') throw new DockerError(501, 'configured logging driver does not support reading');
  return {
    status: 200,
    headers: { 'Content-Type': logContentType(r.apiVersion, tty) },
    stream: async (write, signal) => {
      await c.serviceLogs(
        { ref, follow, tail, timestamps: false, sinceMs, untilMs },
        (ch: LogChunk) => {
          if (ch.stream === 'stderr' ? !stderr : !stdout) return;
          for (const f of logFrames(ch, ch.serviceId || serviceId, { details, timestamps, raw: tty })) write(f);
        },
        signal,
      );
    },
  };
}

/**
 * The tasks a `service` or `node` filter can keep, read through the Control
 * API's filters (the store's service and node indexes) rather than the whole
 * table: `docker service ps` and the CLI's progress display poll this. The
 * same resolvers as the filter itself; a filter none of whose values resolves
 * keeps nothing. The caller still applies the whole filter to what this returns.
 */
async function tasksFiltered(
  c: ReturnType<EngineRequest['backend']['control']>,
  f: ReturnType<typeof parseDockerFilters>,
  resolveService: (ref: string) => string,
  resolveNode: (ref: string) => string,
): Promise<Task[]> {
  const ids = (key: string, resolve: (ref: string) => string): string[] | null =>
    f.has(key) && (f.get(key)?.size ?? 0) > 0 ? [...new Set([...f.get(key)!].map(resolve).filter(Boolean))] : null;
  return tasksOf(c, ids('service', resolveService), ids('node', resolveNode));
}

/**
 * Tasks of these services on these nodes (null: any), through ListTasks'
 * filters; an empty list of either matches nothing. Callers filter the
 * answer again, so a service or node removed since it was resolved (the call
 * refuses it) falls back to the whole listing.
 */
async function tasksOf(
  c: ReturnType<EngineRequest['backend']['control']>,
  services: string[] | null,
  nodes: string[] | null,
): Promise<Task[]> {
  if (services?.length === 0 || nodes?.length === 0) return [];
  try {
    return (await c.listTasks({ services: services ?? [], nodes: nodes ?? [], desiredRunning: false })).tasks;
  } catch (e) {
    if (!(e instanceof TsswarmError && e.code === 'NOT_FOUND')) throw e;
    return (await c.listTasks({ services: [], nodes: [], desiredRunning: false })).tasks;
  }
}

export const serviceRoutes: Route[] = [
  get('/services', 'manager', async (r) => {
    const c = r.backend.control();
    const keep = serviceFilter(parseDockerFilters(r.query.get('filters')));
    const { services } = await c.listServices({});
    const chosen = services.map((s) => s.service).filter(keep);
    // ServiceStatus from API 1.41 on, when asked, counted over each service's tasks as SwarmKit counts them.
    const status = queryBool(r.query, 'status') && compareVersions(r.apiVersion, '1.41') >= 0;
    // Only the chosen services' tasks, from the service index, when a filter left out some.
    const byService = status
      ? tasksByService(await tasksOf(c, chosen.length === services.length ? null : chosen.map((s) => s.meta.id), null))
      : undefined;
    return json(
      chosen.map((s) =>
        serviceToDocker(s, {
          insertDefaults: queryBool(r.query, 'insertDefaults'),
          status: byService ? serviceStatusOf(s, byService.get(s.meta.id) ?? []) : undefined,
        }),
      ),
    );
  }),

  get('/services/{id}', 'manager', async (r) => {
    const { service } = await r.backend.control().getService({ ref: r.params.id! });
    return json(serviceToDocker(service, { insertDefaults: queryBool(r.query, 'insertDefaults') }));
  }),

  post('/services/create', 'manager', async (r) => {
    const auth = registryAuthOf(r);
    const c = r.backend.control();
    const spec = await serviceSpecOf(r, c);
    if (auth) spec.task.container.pullOptions = { registryAuth: auth };
    const { service, warnings } = await inDockerWords(() => c.createService({ spec }));
    return json(warnings.length ? { ID: service.meta.id, Warnings: warnings } : { ID: service.meta.id }, 201);
  }),

  post('/services/{id}/update', 'manager', async (r) => {
    const auth = registryAuthOf(r);
    const version = queryVersion(r, 'service');
    const rollback = r.query.get('rollback') ?? '';
    if (rollback !== '' && rollback !== 'previous') throw new DockerError(400, `invalid value for rollback: ${rollback} (only "previous")`);
    const from = r.query.get('registryAuthFrom') ?? '';
    if (from !== '' && from !== 'spec' && from !== 'previous-spec')
      throw new DockerError(400, `invalid value for registryAuthFrom: ${from} (spec or previous-spec)`);
    const c = r.backend.control();
    // A rollback's body is the current spec, which the swap ignores (as moby).
    const spec = rollback ? undefined : await serviceSpecOf(r, c);
    // Without the header the Control API keeps the service's own (dockerd's registryAuthFrom=spec) while
    // they are for the image's registry; with it (even `{}`) they are replaced.
    if (spec && auth) spec.task.container.pullOptions = { registryAuth: auth };
    const { warnings } = await inDockerWords(() =>
      c.updateService({ ref: r.params.id!, version, spec, rollback: rollback === 'previous' }),
    );
    return json({ Warnings: warnings.length ? warnings : null });
  }),

  del('/services/{id}', 'manager', async (r) => {
    await r.backend.control().removeService({ ref: r.params.id! });
    return empty();
  }),

  get('/services/{id}/logs', 'manager', async (r) => {
    const { service } = await r.backend.control().getService({ ref: r.params.id! });
    return logsResponse(r, service.meta.id, service.meta.id, service.spec.task?.logDriver, !!service.spec.task?.container?.tty);
  }),

  get('/tasks/{id}/logs', 'manager', async (r) => {
    const { task } = await r.backend.control().getTask({ ref: r.params.id! });
    return logsResponse(r, task.meta.id, task.serviceId, task.spec?.logDriver, !!task.spec?.container?.tty);
  }),

  get('/tasks', 'manager', async (r) => {
    const c = r.backend.control();
    const f = parseDockerFilters(r.query.get('filters'));
    const [{ services }, { networks }, nodes] = await Promise.all([
      c.listServices({}),
      c.listNetworks({}),
      f.has('node') ? c.listNodes({}).then((x) => x.nodes) : undefined,
    ]);
    const svcs: Service[] = services.map((s) => s.service);
    const byId = new Map(svcs.map((s) => [s.meta.id, s]));
    const nets = new Map(networks.map((n) => [n.meta.id, n]));
    const orNone = (g: () => string): string => {
      try {
        return g();
      } catch (e) {
        if (e instanceof NotFoundError) return '';
        throw e;
      }
    };
    const resolveService = (ref: string): string =>
      orNone(
        () =>
          resolveRef(
            svcs,
            ref,
            (s) => s.meta.id,
            (s) => s.spec.name,
            'service',
          ).meta.id,
      );
    const resolveNode = (ref: string): string =>
      orNone(
        () =>
          resolveRef(
            nodes ?? [],
            ref,
            (n) => n.meta.id,
            (n) => n.spec.name || n.description?.hostname || '',
            'node',
          ).meta.id,
      );
    const keep = taskFilter(f, {
      serviceOf: (t) => byId.get(t.serviceId),
      labelsOf: (t) => taskServiceLabels(t, byId.get(t.serviceId)),
      resolveService,
      resolveNode,
    });
    const tasks = await tasksFiltered(c, f, resolveService, resolveNode);
    return json(
      tasks.filter(keep).map((t) =>
        taskToDocker(t, {
          serviceLabels: taskServiceLabels(t, byId.get(t.serviceId)),
          network: (id) => taskNetwork(nets.get(id), id),
        }),
      ),
    );
  }),

  get('/tasks/{id}', 'manager', async (r) => {
    const c = r.backend.control();
    const { task } = await c.getTask({ ref: r.params.id! });
    const [svc, { networks }] = await Promise.all([
      c.getService({ ref: task.serviceId }).then(
        (x) => x.service,
        () => undefined,
      ),
      c.listNetworks({}),
    ]);
    const nets = new Map(networks.map((n) => [n.meta.id, n]));
    return json(taskToDocker(task, { serviceLabels: taskServiceLabels(task, svc), network: (id) => taskNetwork(nets.get(id), id) }));
  }),
];
