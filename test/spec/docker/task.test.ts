// Tasks as the Engine API answers them (spec/docker/task.ts): Docker's state
// words for every state of ours, the spec always with its ContainerSpec, the
// service's labels, and what `service ps` and the progress display read.
import { describe, expect, it } from 'vitest';
import { PortProtocol, PublishMode, Service, Task, TaskSpec, TaskState } from '../../../proto/gen/objects.js';
import { dockerTaskName, taskServiceLabels, taskStateFromDocker, taskStateToDocker, taskToDocker } from '../../../spec/docker/task.js';

const DOCKER_WORDS = [
  'new',
  'allocated',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'ready',
  'starting',
  'running',
  'complete',
  'shutdown',
  'failed',
  'rejected',
  'remove',
  'orphaned',
];

const ourStates = Object.values(TaskState).filter((v): v is TaskState => typeof v === 'number');

function task(o: Partial<Task> = {}): Task {
  return Task.create({
    meta: { id: 'taskid', version: 9, createdAt: Date.UTC(2026, 11, 7, 18, 0, 0), updatedAt: Date.UTC(2026, 11, 7, 18, 0, 1, 250) },
    serviceId: 'svcid',
    serviceName: 'web',
    slot: 2,
    nodeId: 'nodeid',
    desiredState: TaskState.RUNNING,
    status: { state: TaskState.RUNNING, timestamp: Date.UTC(2026, 11, 7, 18, 0, 2), message: 'started' } as Task['status'],
    spec: TaskSpec.create({ container: { image: 'nginx:alpine' } as never }),
    ...o,
  });
}

describe('task states', () => {
  it('every state of ours is the Docker word of the same name, and reads back', () => {
    const seen = new Set<string>();
    for (const s of ourStates) {
      const w = taskStateToDocker(s);
      expect(w, TaskState[s]).toBe(TaskState[s]!.toLowerCase());
      expect(DOCKER_WORDS).toContain(w);
      expect(taskStateFromDocker(w)).toBe(s);
      expect(taskStateFromDocker(w.toUpperCase())).toBe(s);
      seen.add(w);
    }
    expect(seen.size).toBe(ourStates.length);
    // The one Docker state tsswarm never reaches: its tasks go from new to pending.
    expect(DOCKER_WORDS.filter((w) => !seen.has(w))).toEqual(['allocated']);
    expect(taskStateFromDocker('allocated')).toBeUndefined();
    expect(taskStateFromDocker('exploded')).toBeUndefined();
  });
});

describe('taskToDocker', () => {
  it('a running replicated task: what service ps and the progress display read', () => {
    const d = taskToDocker(task(), { serviceLabels: { 'com.docker.stack.namespace': 'demo' } });
    expect(d).toMatchObject({
      ID: 'taskid',
      Version: { Index: 9 },
      CreatedAt: '2026-12-07T18:00:00Z',
      UpdatedAt: '2026-12-07T18:00:01.25Z',
      Name: 'web.2.taskid',
      Labels: { 'com.docker.stack.namespace': 'demo' },
      ServiceID: 'svcid',
      Slot: 2,
      NodeID: 'nodeid',
      Status: { Timestamp: '2026-12-07T18:00:02Z', State: 'running', Message: 'started', PortStatus: {} },
      DesiredState: 'running',
    });
    expect(d.Spec.ContainerSpec.Image).toBe('nginx:alpine');
    expect(d.Status.Err).toBeUndefined();
    expect(d.Status.ContainerStatus).toBeUndefined();
    expect(d.NetworksAttachments).toBeUndefined();
  });

  it('a new global task: no slot, no node, ContainerSpec still there, Labels {} without service labels', () => {
    const d = taskToDocker(
      task({ slot: 0, nodeId: '', desiredState: TaskState.READY, status: { state: TaskState.NEW, timestamp: 0 } as Task['status'] }),
    );
    expect(d.Slot).toBeUndefined();
    expect(d.NodeID).toBeUndefined();
    expect(d.Labels).toEqual({});
    expect(d.Status.State).toBe('new');
    expect(d.Status.Timestamp).toBe('0001-01-01T00:00:00Z');
    expect(d.DesiredState).toBe('ready');
    expect(d.Spec.ContainerSpec).toBeDefined();
    expect(dockerTaskName(task({ slot: 0 }))).toBe('web.nodeid.taskid');
  });

  it('a failed task: error, container status, published host ports, network attachments', () => {
    const d = taskToDocker(
      task({
        status: {
          state: TaskState.FAILED,
          timestamp: 1000,
          message: 'started',
          err: 'task: non-zero exit (1)',
          exitCode: 1,
          containerId: 'cid',
          pid: 0,
          health: '',
          startedAt: 0,
          runningAt: 0,
          portStatus: [{ name: '', protocol: PortProtocol.UDP, targetPort: 53, publishedPort: 30053, publishMode: PublishMode.HOST }],
        },
        networks: [{ networkId: 'net1', addresses: ['10.0.1.5/24'], aliases: [] }],
      }),
      { network: (id) => ({ ID: id, Spec: { Name: 'back' } }) },
    );
    expect(d.Status).toEqual({
      Timestamp: '1970-01-01T00:00:01Z',
      State: 'failed',
      Message: 'started',
      Err: 'task: non-zero exit (1)',
      ContainerStatus: { ContainerID: 'cid', PID: 0, ExitCode: 1 },
      PortStatus: { Ports: [{ Protocol: 'udp', TargetPort: 53, PublishedPort: 30053, PublishMode: 'host' }] },
    });
    expect(d.NetworksAttachments).toEqual([{ Network: { ID: 'net1', Spec: { Name: 'back' } }, Addresses: ['10.0.1.5/24'] }]);
    expect(taskToDocker(task({ networks: [{ networkId: 'n2', addresses: [], aliases: [] }] })).NetworksAttachments).toEqual([
      { Network: { ID: 'n2' }, Addresses: [] },
    ]);
  });

  it('the labels are a copy: changing the answer does not change the service', () => {
    const labels = { a: '1' };
    const d = taskToDocker(task(), { serviceLabels: labels });
    d.Labels.a = '2';
    expect(labels.a).toBe('1');
  });
});

describe('taskServiceLabels', () => {
  const svc = Service.create({ meta: { id: 'svcid' } as never, spec: { name: 'web', labels: { tier: 'now' } } as never });

  it("the labels recorded on the task win over the service's current ones, and survive its removal", () => {
    const t = task({ serviceLabels: { 'com.docker.stack.namespace': 'demo' } });
    expect(taskServiceLabels(t, svc)).toEqual({ 'com.docker.stack.namespace': 'demo' });
    expect(taskServiceLabels(t, undefined)).toEqual({ 'com.docker.stack.namespace': 'demo' });
  });

  it("a task recorded without labels reads its service's current ones, or none once the service is gone", () => {
    expect(taskServiceLabels(task(), svc)).toEqual({ tier: 'now' });
    expect(taskServiceLabels(task(), undefined)).toEqual({});
  });

  it('the answer is a copy', () => {
    const t = task({ serviceLabels: { a: '1' } });
    taskServiceLabels(t, svc).a = '2';
    expect(t.serviceLabels.a).toBe('1');
  });
});
