// A task's container config gets its templates expanded for the task and this
// node (hostname, env, mount source), and a hostname or volume name that
// expands to something unsafe or invalid rejects the task with the reason.
import { describe, expect, it } from 'vitest';
import { ociConfig } from '../../../agent/runtime/spec.js';
import { containerConfig, taskHostname } from '../../../agent/worker/task.js';
import { ContainerSpec, Meta, Mount, MountType, Task, TaskSpec } from '../../../proto/gen/objects.js';

const node = { hostname: 'worker-7', os: 'linux', architecture: 'x86_64' };
const task = (c: Partial<ContainerSpec>, slot = 2, serviceName = 'web'): Task =>
  Task.create({
    meta: Meta.create({ id: 'k6s0zwl9ivuzqqqqqqqqqqqqq' }),
    serviceId: 'svc9zwl9ivuzqqqqqqqqqqqqq',
    serviceName,
    slot,
    nodeId: 'nodezwl9ivuzqqqqqqqqqqqqq',
    spec: TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox', ...c }) }),
  });

describe("templates in a task's container config", () => {
  it('gives the container the hostname its template expands to for this task and node', () => {
    const cfg = containerConfig(
      task({ hostname: '{{.Service.Name}}-{{.Task.Slot}}.{{.Node.Hostname}}' }),
      'nodezwl9ivuzqqqqqqqqqqqqq',
      node,
    );
    expect(cfg.hostname).toBe('web-2.worker-7');
  });

  it('names the task as Docker does: service.slot.id, or service.node.id for a global task', () => {
    const t = task({
      env: [
        'NAME={{.Task.Name}}',
        'ID={{.Task.ID}}',
        'SVC={{.Service.ID}}',
        'N={{.Node.ID}}',
        'P={{.Node.Platform.OS}}/{{.Node.Platform.Architecture}}',
      ],
    });
    expect(containerConfig(t, 'nodezwl9ivuzqqqqqqqqqqqqq', node).env).toEqual([
      'NAME=web.2.k6s0zwl9ivuzqqqqqqqqqqqqq',
      'ID=k6s0zwl9ivuzqqqqqqqqqqqqq',
      'SVC=svc9zwl9ivuzqqqqqqqqqqqqq',
      'N=nodezwl9ivuzqqqqqqqqqqqqq',
      'P=linux/x86_64',
    ]);
    const g = task({ env: ['NAME={{.Task.Name}}'] }, 0);
    expect(containerConfig(g, 'nodezwl9ivuzqqqqqqqqqqqqq', node).env).toEqual([
      'NAME=web.nodezwl9ivuzqqqqqqqqqqqqq.k6s0zwl9ivuzqqqqqqqqqqqqq',
    ]);
  });

  it("expands a volume mount's source per task", () => {
    const t = task({ mounts: [Mount.create({ type: MountType.VOLUME, source: 'data-{{.Task.Slot}}', target: '/data' })] });
    expect(containerConfig(t, 'n', node).mounts?.[0]?.source).toBe('data-2');
  });

  it("keeps a plain hostname, and defaults to the task id's first 12 characters", () => {
    expect(containerConfig(task({ hostname: 'fixed' }), 'n', node).hostname).toBe('fixed');
    expect(containerConfig(task({}), 'n', node).hostname).toBe('k6s0zwl9ivuz');
  });

  it('refuses an expansion that is not a hostname, saying what it expanded to', () => {
    expect(() => taskHostname(task({ hostname: '{{.Node.Hostname}}' }), 'n', { ...node, hostname: 'bad_host' })).toThrow(
      /--hostname "\{\{\.Node\.Hostname\}\}" expands to "bad_host" on this node, which is not a valid hostname/,
    );
    // 63-character service name + slot + 25-character id: over the kernel's 64.
    const long = task({ hostname: '{{.Task.Name}}' }, 1, 'a'.repeat(63));
    expect(() => taskHostname(long, 'n', node)).toThrow(/64 in all/);
  });

  it('refuses a volume source that expands to a path on this node (a node hostname with "/" or ".."), naming the template and what it became', () => {
    const vol = (source: string): Task => task({ mounts: [Mount.create({ type: MountType.VOLUME, source, target: '/data' })] });
    for (const hostname of ['../../../../tmp/tss-x', 'a/b', '..']) {
      expect(() => containerConfig(vol('{{.Node.Hostname}}'), 'n', { ...node, hostname }), hostname).toThrow(
        `--mount source= (mounts[0]) "{{.Node.Hostname}}" expands to ${JSON.stringify(hostname)} on this node, which is not a volume name: use letters`,
      );
    }
    expect(() => containerConfig(vol('data-{{.Node.Hostname}}'), 'n', { ...node, hostname: 'x/../../y' })).toThrow(
      /expands to "data-x\/\.\.\/\.\.\/y" on this node, which is not a volume name/,
    );
    // A plain source is checked too (the agent does not rely on the manager alone), and an anonymous volume passes.
    expect(() => containerConfig(vol('a/b'), 'n', node)).toThrow(/"a\/b" is not a volume name/);
    expect(containerConfig(vol(''), 'n', node).mounts?.[0]?.source).toBe('');
  });

  it('the OCI spec never joins anything but a volume name to the volumes directory', () => {
    const img = { id: 'sha256:x', references: [], layers: [], entrypoint: [], cmd: ['sh'], env: [], workdir: '', user: '' };
    const spec = (source: string): unknown =>
      ociConfig(
        { id: 'tss-s', image: 'x', mounts: [{ type: 'volume', source, target: '/data' }] },
        img,
        { rootfs: '/r', hostname: 'h', etcFiles: {}, volumesDir: '/v' },
        null,
      );
    for (const source of ['../etc', 'a/b', '', '.', '..']) expect(() => spec(source), source).toThrow(/is not a volume name/);
    expect(JSON.stringify(spec('data-1'))).toContain('"source":"/v/data-1"');
  });
});

describe("a task's container options reach its container config", () => {
  it('--container-label values are on the container beside our own labels, which they cannot replace', () => {
    const cfg = containerConfig(task({ labels: { team: 'a', 'tsswarm.task.id': 'forged' } }), 'nodezwl9ivuzqqqqqqqqqqqqq', node);
    expect(cfg.labels).toMatchObject({ team: 'a', 'tsswarm.task.id': 'k6s0zwl9ivuzqqqqqqqqqqqqq', 'tsswarm.service.name': 'web' });
  });

  it('--init, --read-only and --stop-signal are passed on; off when the spec turns them off', () => {
    const on = containerConfig(task({ init: true, readOnly: true, stopSignal: 'SIGQUIT' }), 'n', node);
    expect(on).toMatchObject({ init: true, readOnly: true, stopSignal: 'SIGQUIT' });
    const off = containerConfig(task({ init: false, readOnly: false }), 'n', node);
    expect(off.init).toBeFalsy();
    expect(off.readOnly).toBeFalsy();
    expect(off.stopSignal).toBeUndefined();
  });
});
