// This node's containers and images as dockerd lists them (`docker ps`,
// `docker image ls`, Portainer's snapshot): the task containers the runtime
// holds, named and labelled as Swarm names and labels task containers, and
// the node's image store. Pure.
import { UsageError } from '../../lib/errors.js';
import type { ImageSummary } from '../../proto/gen/control.js';
import { anyOf, anyPrefix, checkFilterKeys, type DockerFilters, filterValues, matchLabels } from './filters.js';
import { humanDuration } from '../cluster.js';

/** What the runtime reports of one container (agent/runtime's ContainerState, without importing it). */
export interface ContainerView {
  id: string;
  status: 'created' | 'running' | 'stopped' | 'unknown';
  pid: number;
  exitCode?: number;
  startedAt?: number;
  finishedAt?: number;
  labels: Readonly<Record<string, string>>;
  image: string;
}

const STATE: Record<ContainerView['status'], string> = { created: 'created', running: 'running', stopped: 'exited', unknown: 'dead' };

/** Swarm's labels on a task container, from ours (agent/worker/task.ts), besides ours. */
function swarmLabels(l: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = { ...l };
  if (l['tsswarm.task.id']) out['com.docker.swarm.task.id'] = l['tsswarm.task.id'];
  if (l['tsswarm.service.id']) out['com.docker.swarm.service.id'] = l['tsswarm.service.id'];
  if (l['tsswarm.service.name']) out['com.docker.swarm.service.name'] = l['tsswarm.service.name'];
  if (l['tsswarm.node.id']) out['com.docker.swarm.node.id'] = l['tsswarm.node.id'];
  if (l['tsswarm.task.id'] && l['tsswarm.service.name'])
    out['com.docker.swarm.task.name'] =
      `${l['tsswarm.service.name']}.${l['tsswarm.task.slot'] && l['tsswarm.task.slot'] !== '0' ? l['tsswarm.task.slot'] : (l['tsswarm.node.id'] ?? '')}.${l['tsswarm.task.id']}`;
  return out;
}

/** `docker ps`'s STATUS words: Up 5 minutes, Exited (0) 2 seconds ago, Created. */
function statusWords(c: ContainerView, now: number): string {
  if (c.status === 'running') return `Up ${humanDuration(Math.max(0, now - (c.startedAt ?? now)))}`;
  if (c.status === 'stopped') return `Exited (${c.exitCode ?? 0}) ${humanDuration(Math.max(0, now - (c.finishedAt ?? now)))} ago`;
  return c.status === 'created' ? 'Created' : 'Dead';
}

/** A container as GET /containers/json lists it (Go's types.Container). */
export function containerToDocker(c: ContainerView, now = Date.now()): Record<string, unknown> {
  const labels = swarmLabels(c.labels);
  const name = labels['com.docker.swarm.task.name'] ?? c.id;
  return {
    Id: c.id,
    Names: [`/${name}`],
    Image: c.image,
    ImageID: '',
    Command: '',
    Created: Math.floor((c.startedAt ?? 0) / 1000),
    Ports: [],
    Labels: labels,
    State: STATE[c.status],
    Status: statusWords(c, now),
    HostConfig: { NetworkMode: 'default' },
    NetworkSettings: { Networks: {} },
    Mounts: [],
  };
}

export const CONTAINER_FILTER_KEYS = ['id', 'name', 'label', 'status'] as const;
const STATUS_WORDS = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead'];

/** GET /containers/json filters dockerd's way for the keys tsswarm has: id and name (prefix), label, status; others refused. */
export function containerFilter(f: DockerFilters): (c: ContainerView) => boolean {
  checkFilterKeys(f, CONTAINER_FILTER_KEYS);
  const v = (k: string): string[] => filterValues(f, k);
  for (const s of v('status')) if (!STATUS_WORDS.includes(s)) throw new UsageError(`Invalid filter 'status=${s}'`, { field: 'filters' });
  return (c) => {
    const labels = swarmLabels(c.labels);
    const name = labels['com.docker.swarm.task.name'] ?? c.id;
    return (
      anyPrefix(c.id, v('id')) &&
      (v('name').length === 0 || v('name').some((n) => name.includes(n.replace(/^\//, '')))) &&
      matchLabels(labels, v('label')) &&
      anyOf(STATE[c.status], v('status'))
    );
  };
}

/** An image as GET /images/json lists it (Go's image.Summary). */
export function imageToDocker(i: ImageSummary): Record<string, unknown> {
  return {
    Id: i.id,
    ParentId: '',
    RepoTags: [...i.references],
    RepoDigests: [],
    Created: Math.floor(Number(i.createdAt) / 1000),
    Size: Number(i.size),
    SharedSize: -1,
    Labels: {},
    Containers: -1,
  };
}

export const IMAGE_FILTER_KEYS = ['reference', 'dangling'] as const;

/** GET /images/json filters: `reference` (a name, or name:tag, matched against the references), `dangling` (untagged). */
export function imageFilter(f: DockerFilters): (i: ImageSummary) => boolean {
  checkFilterKeys(f, IMAGE_FILTER_KEYS);
  const refs = filterValues(f, 'reference');
  const dangling = filterValues(f, 'dangling').map((d) => {
    if (!['true', '1', 'false', '0'].includes(d)) throw new UsageError(`Invalid filter 'dangling=${d}'`, { field: 'filters' });
    return d === 'true' || d === '1';
  });
  const matches = (ref: string, want: string): boolean =>
    ref === want || ref.split(':')[0] === want || ref.replace(/^docker\.io\/(library\/)?/, '') === want;
  return (i) =>
    (refs.length === 0 || i.references.some((r) => refs.some((w) => matches(r, w)))) &&
    (dangling.length === 0 || dangling.includes(i.references.length === 0));
}
