// This node's containers and images as dockerd lists them: Swarm's names and
// labels on task containers, docker ps's state and status words, the filters
// dockerd applies (unknown keys refused), and image summaries.
import { describe, expect, it } from 'vitest';
import { parseDockerFilters } from '../../../spec/docker/filters.js';
import { MountType, type Task } from '../../../proto/gen/objects.js';
import {
  type ContainerView,
  containerFilter,
  containerInspectToDocker,
  containerToDocker,
  findContainer,
  imageFilter,
  imageToDocker,
  volumesToDocker,
} from '../../../spec/docker/local.js';

const task = (over: Partial<ContainerView> = {}): ContainerView => ({
  id: 'c1abc',
  status: 'running',
  pid: 42,
  startedAt: 1_000_000,
  labels: {
    'tsswarm.task.id': 't1',
    'tsswarm.service.id': 's1',
    'tsswarm.service.name': 'web',
    'tsswarm.task.slot': '2',
    'tsswarm.node.id': 'n1',
  },
  image: 'tsswarm/busybox:latest',
  ...over,
});

describe('containers', () => {
  it('are named and labelled as Swarm task containers, with docker ps state words', () => {
    const c = containerToDocker(task(), 1_000_000 + 5 * 60_000);
    expect(c).toMatchObject({
      Id: 'c1abc',
      Names: ['/web.2.t1'],
      Image: 'tsswarm/busybox:latest',
      State: 'running',
      Status: 'Up 5 minutes',
      Created: 1000,
      Labels: {
        'com.docker.swarm.task.id': 't1',
        'com.docker.swarm.service.name': 'web',
        'com.docker.swarm.node.id': 'n1',
        'tsswarm.task.id': 't1',
      },
    });
    expect(containerToDocker(task({ status: 'stopped', exitCode: 137, finishedAt: 1_002_000 }), 1_004_000)).toMatchObject({
      State: 'exited',
      Status: 'Exited (137) 2 seconds ago',
    });
    // A global task (slot 0) is named by its node, as Swarm names it.
    expect(containerToDocker(task({ labels: { ...task().labels, 'tsswarm.task.slot': '0' } })).Names).toEqual(['/web.n1.t1']);
  });

  it('filters by id, name, label and status; other keys and unknown states are refused', () => {
    const keep = (q: object) => containerFilter(parseDockerFilters(JSON.stringify(q)))(task());
    expect(keep({ name: { 'web.2': true } })).toBe(true);
    expect(keep({ label: { 'com.docker.swarm.service.name=web': true } })).toBe(true);
    expect(keep({ label: { 'com.docker.swarm.service.name=api': true } })).toBe(false);
    expect(keep({ status: { exited: true } })).toBe(false);
    expect(keep({ id: { c1: true } })).toBe(true);
    expect(() => keep({ ancestor: { busybox: true } })).toThrow("invalid filter 'ancestor'");
    expect(() => keep({ status: { sleeping: true } })).toThrow("Invalid filter 'status=sleeping'");
  });
});

describe('images', () => {
  const img = {
    references: ['tsswarm/busybox:latest'],
    id: 'sha256:abc',
    size: 1234,
    createdAt: 2_000_000,
    repoDigests: ['tsswarm/busybox@sha256:' + 'e'.repeat(64)],
  };
  it('are listed with their tags, id, size and creation time', () => {
    expect(imageToDocker(img)).toMatchObject({
      Id: 'sha256:abc',
      RepoTags: ['tsswarm/busybox:latest'],
      Size: 1234,
      Created: 2000,
      RepoDigests: img.repoDigests,
    });
  });
  it('filter by reference (name or name:tag) and dangling', () => {
    const keep = (q: object) => imageFilter(parseDockerFilters(JSON.stringify(q)))(img);
    expect(keep({ reference: { 'tsswarm/busybox': true } })).toBe(true);
    expect(keep({ reference: { 'tsswarm/busybox:latest': true } })).toBe(true);
    expect(keep({ reference: { nginx: true } })).toBe(false);
    expect(keep({ dangling: { true: true } })).toBe(false);
    expect(() => keep({ before: { x: true } })).toThrow("invalid filter 'before'");
  });
});

describe('container inspect', () => {
  const spec = {
    image: 'reg:5000/app:v1@sha256:' + 'd'.repeat(64),
    command: [],
    args: ['sleep', '1d'],
    env: ['A=2', 'B=3'],
    dir: '',
    user: '',
    hostname: 'h',
    labels: {},
    mounts: [
      { type: MountType.VOLUME, source: 'data', target: '/data', readOnly: false, volumeLabels: {} },
      { type: MountType.BIND, source: '/etc/app', target: '/conf', readOnly: true, volumeLabels: {} },
    ],
    secrets: [],
    configs: [],
    readOnly: true,
    init: false,
    tty: false,
  };
  const t = {
    meta: { id: 't1' },
    networks: [{ networkId: 'net1', addresses: ['10.0.1.5/24'], aliases: ['web'] }],
    spec: { container: spec },
  } as unknown as Task;
  const image = {
    id: 'sha256:' + 'e'.repeat(64),
    env: ['PATH=/bin', 'A=1'],
    entrypoint: ['/init'],
    cmd: ['serve'],
    workdir: '/w',
    user: '',
  };

  it("shows dockerd's ContainerJSON: state, the task's config over the image's, mounts, networks by name", () => {
    const c = containerInspectToDocker(task(), { task: t, image, networkName: (id) => (id === 'net1' ? 'backend' : undefined) });
    expect(c).toMatchObject({
      Id: 'c1abc',
      Name: '/web.2.t1',
      Path: '/init',
      Args: ['sleep', '1d'],
      Image: image.id,
      State: { Status: 'running', Running: true, Pid: 42, ExitCode: 0, FinishedAt: '0001-01-01T00:00:00Z' },
      Config: {
        Image: spec.image,
        Env: ['PATH=/bin', 'A=2', 'B=3'],
        Cmd: ['sleep', '1d'],
        Entrypoint: ['/init'],
        WorkingDir: '/w',
        Hostname: 'h',
        Labels: { 'com.docker.swarm.task.name': 'web.2.t1' },
      },
      HostConfig: { ReadonlyRootfs: true, NetworkMode: 'backend' },
      Mounts: [
        { Type: 'volume', Name: 'data', Driver: 'local', Destination: '/data', RW: true },
        { Type: 'bind', Source: '/etc/app', Destination: '/conf', RW: false },
      ],
      NetworkSettings: {
        Networks: { backend: { NetworkID: 'net1', IPAddress: '10.0.1.5', IPPrefixLen: 24, Aliases: ['web'] } },
      },
    });
    expect(c.State).toMatchObject({ StartedAt: expect.stringMatching(/^1970-01-01T00:16:40/) });
  });

  it("a task with no network shows Docker's bridge network with its default-bridge address; one on none shows none", () => {
    const plain = { ...t, networks: [] } as unknown as Task;
    const bridge = { ip: '172.30.0.7', prefixLen: 16, gateway: '172.30.0.1', mac: '02:42:ac:1e:00:07' };
    const c = containerInspectToDocker(task(), { task: plain, image, bridge });
    expect(c).toMatchObject({
      HostConfig: { NetworkMode: 'bridge' },
      NetworkSettings: {
        Networks: { bridge: { IPAddress: '172.30.0.7', IPPrefixLen: 16, Gateway: '172.30.0.1', MacAddress: '02:42:ac:1e:00:07' } },
      },
    });
    const quiet = { ...plain, spec: { ...plain.spec, networks: [{ target: 'none', aliases: [] }] } } as unknown as Task;
    const n = containerInspectToDocker(task(), { task: quiet, image });
    expect(n).toMatchObject({
      HostConfig: { NetworkMode: 'none' },
      NetworkSettings: { Networks: { none: { IPAddress: '', Gateway: '' } } },
    });
  });

  it('a stopped container without its task still inspects, from the runtime alone', () => {
    const c = containerInspectToDocker(task({ status: 'stopped', exitCode: 3, finishedAt: 2_000_000 }));
    expect(c).toMatchObject({
      State: { Status: 'exited', Running: false, Pid: 0, ExitCode: 3 },
      Config: { Image: 'tsswarm/busybox:latest', Env: [], Cmd: null },
      Mounts: [],
      NetworkSettings: { Networks: {} },
    });
    expect((c.State as { FinishedAt: string }).FinishedAt).not.toBe('0001-01-01T00:00:00Z');
  });

  it('resolves as dockerd: full id, name with or without /, unique id prefix; else its errors', () => {
    const cs = [
      task(),
      task({ id: 'c1abd', labels: { 'tsswarm.task.id': 't2', 'tsswarm.service.name': 'api', 'tsswarm.task.slot': '1' } }),
    ];
    expect(findContainer(cs, 'c1abc').id).toBe('c1abc');
    expect(findContainer(cs, '/web.2.t1').id).toBe('c1abc');
    expect(findContainer(cs, 'api.1.t2').id).toBe('c1abd');
    expect(findContainer(cs, 'c1abd').id).toBe('c1abd');
    expect(() => findContainer(cs, 'c1ab')).toThrow('multiple IDs found with provided prefix: c1ab');
    expect(() => findContainer(cs, 'nope')).toThrow(expect.objectContaining({ code: 'NOT_FOUND', message: 'No such container: nope' }));
  });
});

describe('volumes', () => {
  it("are listed as dockerd's local volumes", () => {
    expect(volumesToDocker([{ name: 'data', mountpoint: '/var/lib/tsswarm/runtime/volumes/data', createdAt: 0 }])).toEqual({
      Volumes: [
        {
          CreatedAt: '0001-01-01T00:00:00Z',
          Driver: 'local',
          Labels: {},
          Mountpoint: '/var/lib/tsswarm/runtime/volumes/data',
          Name: 'data',
          Options: {},
          Scope: 'local',
        },
      ],
      Warnings: [],
    });
    expect(volumesToDocker([])).toEqual({ Volumes: [], Warnings: [] });
  });

  it("an anonymous volume shows its task's labels under Swarm's names too", () => {
    const labels = { 'com.docker.volume.anonymous': '', 'tsswarm.task.id': 't1', 'tsswarm.service.name': 'web', 'tsswarm.task.slot': '2' };
    const [v] = volumesToDocker([{ name: 'a'.repeat(64), mountpoint: '/v', createdAt: 0, labels }]).Volumes as { Labels: object }[];
    expect(v!.Labels).toMatchObject({
      'com.docker.volume.anonymous': '',
      'com.docker.swarm.task.id': 't1',
      'com.docker.swarm.service.name': 'web',
      'com.docker.swarm.task.name': 'web.2.t1',
    });
  });
});
