// --with-registry-auth on the node: a task's credentials go with its pull only
// to the registry their serveraddress names, so a service moved to another
// registry (or a stale store) never hands that registry the old login.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Worker } from '../../../agent/worker/worker.js';
import type { AgentMessage } from '../../../proto/gen/control.js';
import { Task, TaskState, type TaskStatus } from '../../../proto/gen/objects.js';
import { until } from '../../lib/wait.js';
import { FakeRuntime } from './fake-runtime.js';

const log = pino({ level: 'silent' });
const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

let seq = 0;
function task(image: string, registryAuth: string): Task {
  return Task.create({
    meta: { id: `tsspa${++seq}`, version: 1, createdAt: 0, updatedAt: 0 },
    serviceId: 'svc1',
    serviceName: 'web',
    slot: seq,
    nodeId: 'tssnode1',
    desiredState: TaskState.RUNNING,
    status: { state: TaskState.ASSIGNED, timestamp: 0, message: '' } as TaskStatus,
    spec: { container: { image, command: ['sleep', '3600'], pullOptions: { registryAuth } } } as unknown as Task['spec'],
  });
}

const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.close();
});

async function pulledWith(image: string, registryAuth: string): Promise<unknown> {
  const rt = new FakeRuntime();
  const sent: AgentMessage[] = [];
  const w = new Worker({ runtime: rt.asRuntime(), nodeId: 'tssnode1', logger: log, send: (m) => (sent.push(m), true) });
  w.start();
  workers.push(w);
  w.assignments({ full: true, tasks: [task(image, registryAuth)], removedTaskIds: [] });
  await until('the pull', () => rt.pullAuths.length > 0 || undefined, { timeoutMs: 5_000, everyMs: 5 });
  return rt.pullAuths[0];
}

describe('registry credentials on the node', () => {
  it('are sent to the registry their serveraddress names, Docker Hub by any of its names', async () => {
    expect(await pulledWith('rega.test:5000/app:v1', enc({ username: 'u', password: 'p', serveraddress: 'rega.test:5000' }))).toMatchObject(
      {
        username: 'u',
        password: 'p',
      },
    );
    expect(
      await pulledWith('docker.io/library/busybox', enc({ username: 'h', password: 'p', serveraddress: 'https://index.docker.io/v1/' })),
    ).toMatchObject({ username: 'h' });
  });

  it('are not sent to another registry', async () => {
    expect(await pulledWith('other.test/x:1', enc({ username: 'u', password: 'p', serveraddress: 'rega.test:5000' }))).toBeUndefined();
    expect(await pulledWith('busybox', enc({ username: 'u', password: 'p', serveraddress: 'rega.test:5000' }))).toBeUndefined();
  });
});
