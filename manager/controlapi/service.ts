// The service and task verbs of the Control API: create, get, list, update
// (also scale and rollback), remove, list/get tasks. They only write services;
// the orchestrators make, replace and remove the tasks in reaction.
import { TsswarmError } from '../../lib/errors.js';
import { newId } from '../../lib/ids.js';
import type { Logger } from '../../lib/log.js';
import type {
  CreateServiceRequest,
  GetServiceRequest,
  GetTaskRequest,
  GetTaskResponse,
  ListServicesRequest,
  ListServicesResponse,
  ListTasksRequest,
  ListTasksResponse,
  RemoveServiceRequest,
  RemoveServiceResponse,
  ServiceResponse,
  ServiceSummary,
  UpdateServiceRequest,
} from '../../proto/gen/control.js';
import {
  ContainerSpec,
  Meta,
  Service,
  ServiceSpec,
  Task,
  TaskSpec,
  TaskState,
  type UpdateStatus,
  UpdateState,
} from '../../proto/gen/objects.js';
import type { MemoryStore, ReadTx } from '../store/index.js';
import { randomServiceName } from './names.js';
import { resolveServiceNetworking } from './network.js';
import { resolveServiceFileRefs } from './secret.js';
import { findNode, findService, findTask } from './refs.js';
import { plainSpec, validateServiceSpec } from '../../spec/validate.js';
import { keepsPullAuth } from '../../spec/docker/distribution.js';
import { sameTaskSpec } from '../../spec/task-spec.js';
import { isJob } from '../../spec/validate.js';
import { jobCounts } from '../../spec/jobs.js';

export interface ServiceApiOptions {
  store: MemoryStore;
  logger: Logger;
  /** A linearizable read (the manager's read barrier), `stale` when only local state could serve it; default: the local store's view. */
  read?: <R>(fn: (tx: ReadTx) => R) => Promise<{ value: R; stale: boolean }>;
  /** Clock for meta and update status times (tests inject one). */
  now?: () => number;
}

export { sameTaskSpec };

const isGlobal = (s: ServiceSpec | null | undefined): boolean => s?.global !== null && s?.global !== undefined;
const modeName = (s: ServiceSpec | null | undefined): string =>
  s?.replicatedJob ? 'replicated-job' : s?.globalJob ? 'global-job' : isGlobal(s) ? 'global' : 'replicated';
const wantsRunning = (t: Task): boolean => t.desiredState === TaskState.RUNNING || t.desiredState === TaskState.READY;

/** A job's next iteration: every change of its spec (`service update --force` included) runs it again. */
function nextIteration(cur: Service, spec: ServiceSpec, now: number): Service['jobStatus'] {
  if (!isJob(spec)) return null;
  return { jobIteration: (cur.jobStatus?.jobIteration ?? 0) + 1, lastExecution: now };
}

/** A task spec without its registry credentials (a copy; the stored one is left alone). */
function taskSpecWithoutAuth(t: TaskSpec): TaskSpec {
  if (!t?.container?.pullOptions) return t;
  return TaskSpec.create({ ...t, container: ContainerSpec.create({ ...t.container, pullOptions: null }) });
}

function specWithoutAuth<S extends ServiceSpec | null | undefined>(s: S): S {
  if (!s?.task?.container?.pullOptions) return s;
  return ServiceSpec.create({ ...s, task: taskSpecWithoutAuth(s.task) }) as S;
}

/**
 * A service as the Control API answers it: the registry credentials of
 * --with-registry-auth (ContainerSpec.pullOptions) are kept in the store and
 * reach the agents with their tasks, but no client reads them back, as
 * Docker's `service inspect` never shows PullOptions.
 */
export function serviceWithoutAuth(s: Service): Service {
  if (!s.spec?.task?.container?.pullOptions && !s.previousSpec?.task?.container?.pullOptions) return s;
  return Service.create({ ...s, spec: specWithoutAuth(s.spec), previousSpec: specWithoutAuth(s.previousSpec) });
}

/** A task as the Control API answers it: without its registry credentials. */
export function taskWithoutAuth(t: Task): Task {
  if (!t.spec?.container?.pullOptions) return t;
  return Task.create({ ...t, spec: taskSpecWithoutAuth(t.spec) });
}

/**
 * An update that sends no credentials keeps the ones the service has, as
 * dockerd does without X-Registry-Auth (registryAuthFrom=spec): clients read
 * specs without them, so a read-modify-write must not drop them. Unlike
 * dockerd, they are kept only while they are for the new image's registry
 * (keepsPullAuth): an update that moves the image to another registry drops
 * them rather than hand them to that registry. Explicit credentials, even
 * none (EMPTY_REGISTRY_AUTH: --with-registry-auth without a login), replace
 * them.
 */
function keepPullAuth(spec: ServiceSpec, cur: ServiceSpec): void {
  const held = cur.task?.container?.pullOptions?.registryAuth;
  if (!held || spec.task?.container?.pullOptions?.registryAuth) return;
  if (keepsPullAuth(held, cur.task?.container?.image ?? '', spec.task?.container?.image ?? ''))
    spec.task.container.pullOptions = { registryAuth: held };
}

export class ServiceApi {
  private readonly store: MemoryStore;
  private readonly log: Logger;
  private readonly read: <R>(fn: (tx: ReadTx) => R) => Promise<{ value: R; stale: boolean }>;
  private readonly now: () => number;

  constructor(o: ServiceApiOptions) {
    this.store = o.store;
    // A child logger, not componentLogger: this module is also loaded by the CLI, which need not load pino.
    this.log = o.logger.child({ component: 'controlapi' });
    this.read = o.read ?? (async (fn) => ({ value: o.store.view(fn), stale: false }));
    this.now = o.now ?? Date.now;
  }

  async createService(req: CreateServiceRequest): Promise<ServiceResponse> {
    if (!req.spec) throw new TsswarmError('INVALID_ARGUMENT', 'spec is required: send the service spec');
    const raw = plainSpec(req.spec);
    if (!raw.name) raw.name = this.freeName();
    const { spec, warnings } = validateServiceSpec(raw);
    warnings.push(...this.store.view((tx) => [...resolveServiceNetworking(tx, spec, ''), ...resolveServiceFileRefs(tx, spec)]));
    const now = this.now();
    const id = newId();
    const service = Service.create({
      meta: Meta.create({ id, createdAt: now, updatedAt: now }),
      spec,
      previousSpec: null,
      updateStatus: null,
      endpoint: null,
      jobStatus: isJob(spec) ? { jobIteration: 1, lastExecution: now } : null,
    });
    await this.store.update((tx) => tx.services.create(service));
    this.log.info({ service: id, name: spec.name }, 'service created');
    return { service: serviceWithoutAuth(this.store.view((tx) => tx.services.get(id))!), warnings, stale: false };
  }

  async getService(req: GetServiceRequest): Promise<ServiceResponse> {
    const r = await this.read((tx) => findService(tx, req.ref));
    return { service: serviceWithoutAuth(r.value), warnings: [], stale: r.stale };
  }

  async listServices(_req: ListServicesRequest = {}): Promise<ListServicesResponse> {
    const { value: services, stale } = await this.read((tx) =>
      tx.services.list().map((s): ServiceSummary => {
        // Counted by the store's per-service indexes, not over the tasks: this
        // runs for every service on each `service ls` and Engine API listing.
        const id = s.meta.id;
        const running = tx.tasks.countBy('running', id);
        if (isJob(s.spec)) {
          const j = jobCounts(s, tx.tasks.by('service', id));
          return { service: serviceWithoutAuth(s), running, desired: j.desired, completed: j.completed };
        }
        const desired = isGlobal(s.spec) ? tx.tasks.countBy('desiredRunning', id) : (s.spec?.replicated?.replicas ?? 0);
        return { service: serviceWithoutAuth(s), running, desired, completed: 0 };
      }),
    );
    return { services: services.sort((a, b) => (a.service.spec?.name ?? '').localeCompare(b.service.spec?.name ?? '')), stale };
  }

  /** Update, scale (a spec with other replicas) and rollback (`rollback`). */
  async updateService(req: UpdateServiceRequest): Promise<ServiceResponse> {
    const cur = this.store.view((tx) => findService(tx, req.ref));
    const name = cur.spec.name;
    const version = cur.meta.version;
    if (req.version && req.version !== version) {
      throw new TsswarmError(
        'CONFLICT',
        `update out of sequence: service ${name} changed since it was read (version ${req.version}, now ${version}): read it again and retry`,
      );
    }
    const now = this.now();
    let next: Service;
    let warnings: string[] = [];
    if (req.rollback) {
      if (!cur.previousSpec)
        throw new TsswarmError('FAILED_PRECONDITION', `service ${name} has no previous spec to roll back to: it was never updated`);
      // Removing a secret or config checks current specs only (as Swarm), so the previous one may name a removed one.
      const previous = plainSpec(cur.previousSpec);
      try {
        this.store.view((tx) => resolveServiceFileRefs(tx, previous));
      } catch (e) {
        throw new TsswarmError(
          'FAILED_PRECONDITION',
          `service ${name} cannot roll back: its previous spec uses a secret or config that no longer exists (${(e as Error).message}): create it again, or update the service instead`,
        );
      }
      const changed = !sameTaskSpec(cur.previousSpec.task, cur.spec.task);
      // With the same tasks there is nothing for the updater to do: the rollback is complete at once.
      const updateStatus: UpdateStatus = changed
        ? { state: UpdateState.ROLLBACK_STARTED, startedAt: now, completedAt: 0, message: 'manually requested rollback' }
        : { state: UpdateState.ROLLBACK_COMPLETED, startedAt: now, completedAt: now, message: 'manually requested rollback' };
      next = Service.create({
        ...cur,
        spec: cur.previousSpec,
        previousSpec: cur.spec,
        updateStatus: isJob(cur.spec) ? null : updateStatus,
        jobStatus: nextIteration(cur, cur.previousSpec, now),
      });
    } else {
      if (!req.spec) throw new TsswarmError('INVALID_ARGUMENT', 'spec is required: send the new service spec (or set rollback)');
      const raw = plainSpec(req.spec);
      if (!raw.name) raw.name = name;
      keepPullAuth(raw, cur.spec);
      const v = validateServiceSpec(raw);
      const spec = v.spec;
      warnings = [
        ...v.warnings,
        ...this.store.view((tx) => [...resolveServiceNetworking(tx, spec, cur.meta.id), ...resolveServiceFileRefs(tx, spec)]),
      ];
      if (spec.name !== name)
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `spec.name: renaming a service is not supported (${name} → ${spec.name}): create a new service instead`,
        );
      if (modeName(spec) !== modeName(cur.spec)) {
        throw new TsswarmError(
          'INVALID_ARGUMENT',
          `spec.mode: service ${name} is ${modeName(cur.spec)} and cannot become ${modeName(spec)}: remove it and create it again`,
        );
      }
      // As SwarmKit, an update that keeps the task spec (a scale) clears the status: the docker
      // CLI's progress display stops at once on a `completed` left from an earlier update, and
      // the updater starts an update again if tasks of an older spec remain (a paused one).
      // A job has no rolling update: every update starts its next iteration (as SwarmKit), whose tasks replace the last one's.
      const updateStatus =
        isJob(spec) || sameTaskSpec(spec.task, cur.spec.task)
          ? null
          : { state: UpdateState.UPDATING, startedAt: now, completedAt: 0, message: 'update in progress' };
      next = Service.create({ ...cur, spec, previousSpec: cur.spec, updateStatus, jobStatus: nextIteration(cur, spec, now) });
    }
    next.meta = Meta.create({ ...cur.meta, updatedAt: now });
    await this.store.update((tx) => tx.services.update(next));
    this.log.info(
      { service: cur.meta.id, name, rollback: req.rollback, updateState: next.updateStatus?.state },
      req.rollback ? 'service rollback requested' : 'service updated',
    );
    return { service: serviceWithoutAuth(this.store.view((tx) => tx.services.get(cur.meta.id))!), warnings, stale: false };
  }

  async removeService(req: RemoveServiceRequest): Promise<RemoveServiceResponse> {
    const s = this.store.view((tx) => findService(tx, req.ref));
    await this.store.update((tx) => tx.services.delete(s));
    this.log.info({ service: s.meta.id, name: s.spec?.name }, 'service removed');
    return {};
  }

  async listTasks(req: ListTasksRequest): Promise<ListTasksResponse> {
    const { value: tasks, stale } = await this.read((tx) => {
      const sids = [...new Set(req.services.map((r) => findService(tx, r).meta.id))];
      const nids = new Set(req.nodes.map((r) => findNode(tx, r).meta.id));
      // From the smaller of the two indexes, never a scan of the whole table
      // when a filter names services or nodes (`docker service ps` polls this).
      const count = (index: 'service' | 'node', ids: Iterable<string>): number =>
        [...ids].reduce((n, id) => n + tx.tasks.countBy(index, id), 0);
      const useNodes = nids.size > 0 && (sids.length === 0 || count('node', nids) < count('service', sids));
      let ts = useNodes
        ? [...nids].flatMap((id) => tx.tasks.by('node', id))
        : sids.length
          ? sids.flatMap((id) => tx.tasks.by('service', id))
          : tx.tasks.list();
      if (useNodes && sids.length) {
        const keep = new Set(sids);
        ts = ts.filter((t) => keep.has(t.serviceId));
      } else if (nids.size && !useNodes) ts = ts.filter((t) => nids.has(t.nodeId));
      if (req.desiredRunning) ts = ts.filter(wantsRunning);
      return ts.map(taskWithoutAuth);
    });
    return { tasks, stale };
  }

  async getTask(req: GetTaskRequest): Promise<GetTaskResponse> {
    const r = await this.read((tx) => findTask(tx, req.ref));
    return { task: taskWithoutAuth(r.value), stale: r.stale };
  }

  /** A random name no service has (names compare without case). */
  private freeName(): string {
    for (let i = 0; ; i++) {
      const n = randomServiceName() + (i > 10 ? `_${i}` : '');
      if (!this.store.view((tx) => tx.services.byName(n))) return n;
    }
  }
}
