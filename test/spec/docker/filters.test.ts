// Docker's `filters` parameter (spec/docker/filters.ts): both JSON forms,
// moby's errors, hostile input, and the service and task filters the docker
// CLI sends (service ps, stack ps/services/rm, the progress display's
// `_up-to-date`) as predicates over our objects.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../lib/errors.js';
import { Service, ServiceSpec, Task, TaskSpec, TaskState } from '../../../proto/gen/objects.js';
import {
  MAX_FILTER_VALUES,
  MAX_FILTERS_CHARS,
  matchLabels,
  parseDockerFilters,
  serviceFilter,
  taskFilter,
} from '../../../spec/docker/filters.js';
import { isTaskUpToDate } from '../../../spec/task-spec.js';

function usage(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error('expected a UsageError');
}

const asObj = (f: ReturnType<typeof parseDockerFilters>) => Object.fromEntries([...f].map(([k, v]) => [k, [...v].sort()]));

describe('parseDockerFilters', () => {
  it('the map form the CLI sends, the legacy list form, and nothing', () => {
    expect(asObj(parseDockerFilters('{"label":{"com.docker.stack.namespace=demo":true},"name":{"a":true,"b":true}}'))).toEqual({
      label: ['com.docker.stack.namespace=demo'],
      name: ['a', 'b'],
    });
    expect(asObj(parseDockerFilters('{"name":["web","db"]}'))).toEqual({ name: ['db', 'web'] });
    expect(parseDockerFilters('').size).toBe(0);
    expect(parseDockerFilters(undefined).size).toBe(0);
    expect(parseDockerFilters('{}').size).toBe(0);
  });

  it("anything else is moby's `invalid filter`", () => {
    for (const raw of [
      'x',
      '[]',
      '"name"',
      'null',
      '5',
      '{"name":"web"}',
      '{"name":5}',
      '{"name":null}',
      '{"name":{"x":"yes"}}',
      '{"name":[1]}',
      '{"a":{"b":{"c":true}}}',
      '{"a":[["b"]]}',
    ])
      expect(usage(() => parseDockerFilters(raw)).message, raw).toBe('invalid filter');
  });

  it('hostile input: a 10 MB parameter is refused before it is parsed, deep nesting and many values are refused', () => {
    const huge = `{"name":{"${'a'.repeat(10 * 1024 * 1024)}":true}}`;
    expect(usage(() => parseDockerFilters(huge)).message).toBe(
      `invalid filter: the filters parameter is ${huge.length} characters long, at most ${MAX_FILTERS_CHARS} are read`,
    );
    const deep = `${'{"a":'.repeat(10_000)}true${'}'.repeat(10_000)}`;
    expect(deep.length).toBeLessThanOrEqual(MAX_FILTERS_CHARS);
    expect(usage(() => parseDockerFilters(deep)).message).toBe('invalid filter');
    const arrays = `${'['.repeat(MAX_FILTERS_CHARS / 2)}${']'.repeat(MAX_FILTERS_CHARS / 2)}`;
    expect(usage(() => parseDockerFilters(arrays)).message).toBe('invalid filter');
    const many = JSON.stringify({ name: Object.fromEntries(Array.from({ length: MAX_FILTER_VALUES + 1 }, (_v, i) => [`n${i}`, true])) });
    expect(usage(() => parseDockerFilters(many)).message).toMatch(/more than 1000 filter values/);
    expect(() => parseDockerFilters(JSON.stringify({ name: Array.from({ length: MAX_FILTER_VALUES }, (_v, i) => `n${i}`) }))).not.toThrow();
    expect(usage(() => parseDockerFilters('{"__proto__":{"x":true},"name":{"a":1}}')).message).toBe('invalid filter');
  });
});

describe('labels', () => {
  it('KEY is present, KEY=VALUE is equal, KEY= is any value; all must match', () => {
    const l = { 'com.docker.stack.namespace': 'demo', tier: 'back', empty: '' };
    expect(matchLabels(l, ['com.docker.stack.namespace'])).toBe(true);
    expect(matchLabels(l, ['com.docker.stack.namespace=demo'])).toBe(true);
    expect(matchLabels(l, ['com.docker.stack.namespace=other'])).toBe(false);
    expect(matchLabels(l, ['tier=', 'empty'])).toBe(true);
    expect(matchLabels(l, ['tier=back', 'missing'])).toBe(false);
    expect(matchLabels(l, ['toString'])).toBe(false);
    expect(matchLabels({ a: 'x=y' }, ['a=x=y'])).toBe(true);
    expect(matchLabels(l, [])).toBe(true);
  });
});

const svc = (id: string, name: string, labels: Record<string, string>, global = false, version = 10): Service =>
  Service.create({
    meta: { id, version, createdAt: 0, updatedAt: 0 },
    spec: ServiceSpec.create({
      name,
      labels,
      task: TaskSpec.create({ container: { image: `${name}:1` } as never }),
      ...(global ? { global: {} } : { replicated: { replicas: 1 } }),
    }),
  });

describe('serviceFilter', () => {
  const all = [
    svc('abc111', 'web', { 'com.docker.stack.namespace': 'demo' }),
    svc('abd222', 'webapp', { 'com.docker.stack.namespace': 'other' }),
    svc('xyz333', 'db', {}, true),
  ];
  const names = (raw: string) => all.filter(serviceFilter(parseDockerFilters(raw))).map((s) => s.spec.name);

  it('id and name by prefix, label, mode, runtime; keys combine with and, values of a key with or', () => {
    expect(names('{"id":{"ab":true}}')).toEqual(['web', 'webapp']);
    expect(names('{"id":{"abc111":true,"xyz":true}}')).toEqual(['web', 'db']);
    expect(names('{"name":{"web":true}}')).toEqual(['web', 'webapp']);
    expect(names('{"name":{"WEB":true}}')).toEqual([]);
    expect(names('{"label":{"com.docker.stack.namespace=demo":true}}')).toEqual(['web']);
    expect(names('{"label":{"com.docker.stack.namespace":true}}')).toEqual(['web', 'webapp']);
    expect(names('{"mode":{"global":true}}')).toEqual(['db']);
    expect(names('{"mode":{"replicated":true}}')).toEqual(['web', 'webapp']);
    expect(names('{"mode":{"replicated-job":true,"global-job":true}}')).toEqual([]);
    expect(names('{"runtime":{"container":true}}')).toEqual(['web', 'webapp', 'db']);
    expect(names('{"runtime":{"plugin":true}}')).toEqual([]);
    expect(names('{"name":{"web":true},"label":{"com.docker.stack.namespace=other":true}}')).toEqual(['webapp']);
    expect(names('')).toEqual(['web', 'webapp', 'db']);
  });

  it("an unknown key is moby's invalid filter 'x'", () => {
    expect(usage(() => serviceFilter(parseDockerFilters('{"node":{"x":true}}'))).message).toBe("invalid filter 'node'");
  });
});

describe('taskFilter', () => {
  const web = svc('svcweb', 'web', { 'com.docker.stack.namespace': 'demo' });
  const db = svc('svcdb', 'db', {});
  const services = new Map([web, db].map((s) => [s.meta.id, s]));
  const mk = (id: string, s: Service, slot: number, node: string, desired: TaskState, o: Partial<Task> = {}): Task =>
    Task.create({
      meta: { id, version: 1, createdAt: 0, updatedAt: 0 },
      serviceId: s.meta.id,
      serviceName: s.spec.name,
      slot,
      nodeId: node,
      desiredState: desired,
      spec: s.spec.task,
      serviceVersion: s.meta.version,
      ...o,
    });
  const stale = TaskSpec.create({ container: { image: 'web:0' } as never });
  const tasks = [
    mk('t1', web, 1, 'n1', TaskState.RUNNING),
    mk('t2', web, 1, 'n1', TaskState.SHUTDOWN, { spec: stale, serviceVersion: 3 }),
    // an older version of the service, same spec: up to date
    mk('t3', web, 2, 'n2', TaskState.RUNNING, { serviceVersion: 4 }),
    mk('t4', db, 1, 'n2', TaskState.READY),
    mk('t5', { ...web, meta: { ...web.meta, id: 'gone' } } as Service, 1, 'n1', TaskState.SHUTDOWN),
  ];
  const ctx = {
    serviceOf: (t: Task) => services.get(t.serviceId),
    resolveService: (r: string) => [...services.values()].find((s) => s.meta.id === r || s.spec.name === r)?.meta.id,
    resolveNode: (r: string) => (r === 'worker1' ? 'n1' : r),
  };
  const ids = (raw: string, c: Parameters<typeof taskFilter>[1] = ctx) =>
    tasks.filter(taskFilter(parseDockerFilters(raw), c)).map((t) => t.meta.id);

  it('the progress display: _up-to-date and service by id', () => {
    expect(ids('{"_up-to-date":{"true":true},"service":{"svcweb":true}}')).toEqual(['t1', 't3']);
    expect(ids('{"service":{"web":true}}')).toEqual(['t1', 't2', 't3']);
    expect(ids('{"service":{"nope":true}}')).toEqual([]);
  });

  it("_up-to-date is the updater's own test, and a task of a removed service is never up to date", () => {
    for (const t of tasks) {
      const s = services.get(t.serviceId);
      expect(ids(`{"_up-to-date":{"1":true},"id":{"${t.meta.id}":true}}`).length, t.meta.id).toBe(s && isTaskUpToDate(s, t) ? 1 : 0);
    }
    expect(isTaskUpToDate(web, tasks[1]!)).toBe(false);
    expect(ids('{"_up-to-date":{"true":true}}', { ...ctx, upToDate: () => false })).toEqual([]);
  });

  it('stack ps and stack rm: the service label, also for desired state; node by name; id and name prefixes', () => {
    expect(ids('{"label":{"com.docker.stack.namespace=demo":true}}')).toEqual(['t1', 't2', 't3']);
    // with the labels SwarmKit copies onto tasks, a removed service's tasks are still found
    expect(
      ids('{"label":{"com.docker.stack.namespace=demo":true}}', {
        ...ctx,
        labelsOf: (t) => (t.serviceName === 'web' ? web.spec.labels : {}),
      }),
    ).toEqual(['t1', 't2', 't3', 't5']);
    expect(ids('{"label":{"com.docker.stack.namespace=demo":true},"desired-state":{"running":true}}')).toEqual(['t1', 't3']);
    expect(ids('{"desired-state":{"shutdown":true,"ready":true}}')).toEqual(['t2', 't4', 't5']);
    expect(ids('{"desired-state":{"accepted":true}}')).toEqual([]);
    expect(ids('{"desired-state":{"allocated":true}}')).toEqual([]);
    expect(ids('{"node":{"worker1":true}}')).toEqual(['t1', 't2', 't5']);
    expect(ids('{"id":{"t":true},"name":{"web.1.":true}}')).toEqual(['t1', 't2', 't5']);
    expect(ids('{"id":{"t3":true,"t4":true},"name":{"web.":true}}')).toEqual(['t3']);
    expect(ids('{"name":{"db.1.t4":true}}')).toEqual(['t4']);
    expect(ids('{"runtime":{"container":true}}')).toHaveLength(5);
  });

  it("unknown keys and desired states are refused with moby's messages", () => {
    expect(usage(() => taskFilter(parseDockerFilters('{"mode":{"global":true}}'), ctx)).message).toBe("invalid filter 'mode'");
    expect(usage(() => taskFilter(parseDockerFilters('{"desired-state":{"sleeping":true}}'), ctx)).message).toBe(
      "Invalid desired-state filter: 'sleeping'",
    );
  });
});
