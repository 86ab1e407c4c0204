// When two task specs ask for the same tasks: the rolling updater replaces a
// task whose spec differs from its service's, and the Engine API's
// `_up-to-date` task filter (the docker CLI's progress display) asks the same
// question. One definition, pure, so the two cannot disagree.
import { type Service, type Task, TaskSpec } from '../proto/gen/objects.js';

/** JSON with sorted keys: two specs are the same when their canonical forms are. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v instanceof Uint8Array ? [...v] : v) ?? 'null';
}

/** Whether two task specs ask for the same tasks (a change means a rolling update). */
export function sameTaskSpec(a: TaskSpec | null | undefined, b: TaskSpec | null | undefined): boolean {
  const norm = (t: TaskSpec | null | undefined): unknown => (t ? TaskSpec.toObject(t) : null);
  return canonical(norm(a)) === canonical(norm(b));
}

/**
 * A task runs its service's current spec (SwarmKit's `!IsTaskDirty`): it was
 * made from this very version of the service, or its spec equals the
 * service's task spec. The rolling updater (manager/orchestrator/update.ts)
 * replaces exactly the tasks for which this is false.
 */
export function isTaskUpToDate(service: Service, task: Task): boolean {
  return task.serviceVersion === service.meta.version || sameTaskSpec(task.spec, service.spec.task);
}
