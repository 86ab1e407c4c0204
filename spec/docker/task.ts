// tsswarm's Task as Docker's Engine API answers GET /tasks and /tasks/{id}:
// state names in lower case, times in RFC 3339, the spec always with its
// ContainerSpec (the docker CLI dereferences it), and the service's labels as
// the task was made with them, which the `label` filter reads (`docker stack
// ps` finds a stack's tasks by label, also once their service is gone). Pure.
import type { Service, Task } from '../../proto/gen/objects.js';
import { TaskState } from '../../proto/gen/objects.js';
import { portToDocker, taskSpecToDocker } from './service.js';
import type { DockerLabels, DockerTask, DockerTaskNetwork, DockerTaskState } from './types.js';
import { timeToDocker } from './values.js';

const TASK_STATES: Record<TaskState, DockerTaskState> = {
  [TaskState.NEW]: 'new',
  [TaskState.PENDING]: 'pending',
  [TaskState.ASSIGNED]: 'assigned',
  [TaskState.ACCEPTED]: 'accepted',
  [TaskState.PREPARING]: 'preparing',
  [TaskState.READY]: 'ready',
  [TaskState.STARTING]: 'starting',
  [TaskState.RUNNING]: 'running',
  [TaskState.COMPLETE]: 'complete',
  [TaskState.SHUTDOWN]: 'shutdown',
  [TaskState.FAILED]: 'failed',
  [TaskState.REJECTED]: 'rejected',
  [TaskState.ORPHANED]: 'orphaned',
  [TaskState.REMOVE]: 'remove',
};

/** Our task state as Docker's word. tsswarm has no `allocated` state: its tasks go from new to pending. */
export function taskStateToDocker(s: TaskState): DockerTaskState {
  return TASK_STATES[s] ?? 'new';
}

const BY_NAME = new Map<string, TaskState>(Object.entries(TASK_STATES).map(([k, v]) => [v, Number(k) as TaskState]));

/** Docker's state word as ours; `allocated` (which tsswarm never reaches) and unknown words are undefined. */
export function taskStateFromDocker(word: string): TaskState | undefined {
  return BY_NAME.get(word.toLowerCase());
}

/** The name SwarmKit gives a task (`web.1.<id>`, or `web.<node id>.<id>` for a global service). */
export function dockerTaskName(t: Task): string {
  return `${t.serviceName}.${t.slot ? String(t.slot) : t.nodeId}.${t.meta.id}`;
}

/**
 * The service labels a task carries, as SwarmKit copies the service's
 * annotations onto each task it makes: those recorded when it was made; for a
 * task recorded with none (made before tsswarm kept them, or of a service
 * without labels), the labels of its service now, if it still exists.
 */
export function taskServiceLabels(t: Task, service: Service | undefined): DockerLabels {
  const own = t.serviceLabels ?? {};
  return { ...(Object.keys(own).length ? own : (service?.spec.labels ?? {})) };
}

export interface TaskToDockerOptions {
  /** The labels of the task's service (taskServiceLabels); default {}. */
  serviceLabels?: DockerLabels;
  /** The swarm Network object an attachment embeds (the /networks routes build it); default {ID}. */
  network?: (id: string) => DockerTaskNetwork;
}

export function taskToDocker(t: Task, o: TaskToDockerOptions = {}): DockerTask {
  const st = t.status;
  const out: DockerTask = {
    ID: t.meta.id,
    Version: { Index: t.meta.version },
    CreatedAt: timeToDocker(t.meta.createdAt),
    UpdatedAt: timeToDocker(t.meta.updatedAt),
    Name: dockerTaskName(t),
    Labels: { ...(o.serviceLabels ?? {}) },
    Spec: taskSpecToDocker(t.spec),
    ServiceID: t.serviceId,
    Status: {
      Timestamp: timeToDocker(st.timestamp),
      State: taskStateToDocker(st.state),
      PortStatus: {},
    },
    // A job's task is meant to finish: Swarm's desired state for it is complete.
    DesiredState: taskStateToDocker(t.jobIteration > 0 && t.desiredState === TaskState.RUNNING ? TaskState.COMPLETE : t.desiredState),
  };
  if (t.jobIteration > 0) out.JobIteration = { Index: t.jobIteration };
  if (t.slot) out.Slot = t.slot;
  if (t.nodeId) out.NodeID = t.nodeId;
  if (st.message) out.Status.Message = st.message;
  if (st.err) out.Status.Err = st.err;
  if (st.containerId) out.Status.ContainerStatus = { ContainerID: st.containerId, PID: st.pid ?? 0, ExitCode: st.exitCode ?? 0 };
  if (st.portStatus?.length) out.Status.PortStatus.Ports = st.portStatus.map(portToDocker);
  if (t.networks?.length)
    out.NetworksAttachments = t.networks.map((n) => ({
      Network: o.network ? o.network(n.networkId) : { ID: n.networkId },
      Addresses: [...n.addresses],
    }));
  return out;
}
