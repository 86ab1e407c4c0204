// Small object builders for the store tests, and a leader/follower pair that
// records the log so a second store can apply the same entries.
import { MemoryStore } from '../../../manager/store/index.js';
import {
  ContainerSpec,
  Meta,
  Network,
  NetworkSpec,
  Node,
  NodeRole,
  NodeSpec,
  Secret,
  SecretSpec,
  Service,
  ServiceSpec,
  Task,
  TaskSpec,
  TaskState,
} from '../../../proto/gen/objects.js';

export const node = (id: string, name: string): Node =>
  Node.create({ meta: Meta.create({ id }), spec: NodeSpec.create({ name, role: NodeRole.WORKER }) });

export const service = (id: string, name: string, replicas = 1): Service =>
  Service.create({
    meta: Meta.create({ id }),
    spec: ServiceSpec.create({
      name,
      replicated: { replicas },
      task: TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox', command: ['sleep', '1d'] }) }),
    }),
  });

export const task = (id: string, serviceId: string, nodeId: string, slot: number, desiredState = TaskState.RUNNING): Task =>
  Task.create({ meta: Meta.create({ id }), serviceId, nodeId, slot, desiredState });

export const network = (id: string, name: string): Network =>
  Network.create({ meta: Meta.create({ id }), spec: NetworkSpec.create({ name, driver: 'overlay', subnet: '10.0.9.0/24' }) });

export const secret = (id: string, name: string, data: number[]): Secret =>
  Secret.create({ meta: Meta.create({ id }), spec: SecretSpec.create({ name, data: new Uint8Array(data) }) });

/** A store whose proposer appends to a shared log and applies at once, as a Raft leader would. */
export function recordingStore(): { store: MemoryStore; log: Uint8Array[] } {
  const log: Uint8Array[] = [];
  const store: MemoryStore = new MemoryStore({
    propose: async (d) => {
      log.push(d);
      store.apply(d, log.length);
      return log.length;
    },
  });
  return { store, log };
}

/** A store that cannot propose: a follower fed by apply(). */
export function follower(): MemoryStore {
  return new MemoryStore({ propose: () => Promise.reject(new Error('not the leader')) });
}

export const ids = (objs: Array<{ meta?: { id: string } | null }>): string[] => objs.map((o) => o.meta!.id).sort();
