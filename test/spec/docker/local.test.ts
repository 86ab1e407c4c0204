// This node's containers and images as dockerd lists them: Swarm's names and
// labels on task containers, docker ps's state and status words, the filters
// dockerd applies (unknown keys refused), and image summaries.
import { describe, expect, it } from 'vitest';
import { parseDockerFilters } from '../../../spec/docker/filters.js';
import { type ContainerView, containerFilter, containerToDocker, imageFilter, imageToDocker } from '../../../spec/docker/local.js';

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
  const img = { references: ['tsswarm/busybox:latest'], id: 'sha256:abc', size: 1234, createdAt: 2_000_000 };
  it('are listed with their tags, id, size and creation time', () => {
    expect(imageToDocker(img)).toMatchObject({ Id: 'sha256:abc', RepoTags: ['tsswarm/busybox:latest'], Size: 1234, Created: 2000 });
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
