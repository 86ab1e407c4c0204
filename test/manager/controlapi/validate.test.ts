// Service spec validation and defaults: each rule family refuses a bad field
// with a message naming the field and the fix; absent parts get Swarm's defaults.
import { describe, expect, it } from 'vitest';
import { DEFAULT_RESTART, DEFAULT_UPDATE, parseConstraint, parseSpreadPreference, validateServiceSpec } from '../../../manager/controlapi/index.js';
import { ContainerSpec, MountType, RestartCondition, ServiceSpec, TaskSpec, UpdateFailureAction, UpdateOrder } from '../../../proto/gen/objects.js';

function spec(over: Partial<ServiceSpec> = {}, container: Partial<ContainerSpec> = {}, task: Partial<TaskSpec> = {}): ServiceSpec {
  return ServiceSpec.create({ name: 'web', task: TaskSpec.create({ container: ContainerSpec.create({ image: 'busybox', ...container }), ...task }), ...over });
}

const fails = (s: ServiceSpec, ...parts: (string | RegExp)[]): void => {
  let msg = '';
  try {
    validateServiceSpec(s);
  } catch (e) {
    expect((e as { code?: string }).code).toBe('INVALID_ARGUMENT');
    msg = (e as Error).message;
  }
  expect(msg, 'the spec should have been refused').not.toBe('');
  for (const p of parts) expect(msg).toMatch(p);
};

describe('validateServiceSpec', () => {
  it('fills Swarm defaults for absent restart, update, rollback, stop grace and mode', () => {
    const { spec: s, warnings } = validateServiceSpec(spec());
    expect(warnings).toEqual([]);
    expect(s.replicated).toEqual({ replicas: 1 });
    expect(s.global ?? null).toBeNull();
    expect(s.task!.restart).toEqual({ condition: RestartCondition.ANY, delayMs: 5000, maxAttempts: 0, windowMs: 0 });
    expect(s.update).toEqual({ parallelism: 1, delayMs: 0, failureAction: UpdateFailureAction.PAUSE, monitorMs: 5000, maxFailureRatio: 0, order: UpdateOrder.STOP_FIRST });
    expect(s.rollback).toEqual(DEFAULT_UPDATE);
    expect(s.task!.container!.stopGracePeriodMs).toBe(10_000);
  });

  it('keeps given sub-messages as they are, zeros included, and does not touch its input', () => {
    const input = spec({ replicated: { replicas: 0 }, update: { ...DEFAULT_UPDATE, parallelism: 0, monitorMs: 0 } }, { stopGracePeriodMs: 3000 }, { restart: { ...DEFAULT_RESTART, delayMs: 0, condition: RestartCondition.NONE } });
    const copy = JSON.stringify(input);
    const { spec: s } = validateServiceSpec(input);
    expect(s.replicated).toEqual({ replicas: 0 });
    expect(s.update!.parallelism).toBe(0);
    expect(s.update!.monitorMs).toBe(0);
    expect(s.task!.restart!.delayMs).toBe(0);
    expect(s.task!.container!.stopGracePeriodMs).toBe(3000);
    expect(JSON.stringify(input)).toBe(copy);
  });

  it('keeps global mode and works on a decoded message', () => {
    const { spec: s } = validateServiceSpec(ServiceSpec.decode(ServiceSpec.encode(spec({ global: {} }))));
    expect(s.global).toEqual({});
    expect(s.replicated ?? null).toBeNull();
    expect(s.name).toBe('web');
  });

  it('names: required, DNS-label-like, at most 63 characters', () => {
    fails(spec({ name: '' }), 'spec.name', /--name/);
    fails(spec({ name: '-web' }), 'spec.name', /letter or digit/);
    fails(spec({ name: 'we b' }), 'spec.name');
    fails(spec({ name: 'a'.repeat(64) }), 'spec.name', /63/);
    expect(validateServiceSpec(spec({ name: 'My_app.v2-x' })).spec.name).toBe('My_app.v2-x');
  });

  it('image is required', () => {
    fails(spec({}, { image: '' }), 'spec.task.container.image', /IMAGE/);
    fails(ServiceSpec.create({ name: 'x' }), 'spec.task.container.image');
  });

  it('mode: replicas are for replicated services only', () => {
    fails(spec({ global: {}, replicated: { replicas: 3 } }), 'spec.mode', /replicas/);
    fails(spec({ replicated: { replicas: -1 } }), 'spec.mode.replicated.replicas', /≥ 0/);
  });

  it('env entries are KEY=VALUE; a repeated key is a warning', () => {
    fails(spec({}, { env: ['A=1', 'NOEQUALS'] }), 'spec.task.container.env[1]', /KEY=VALUE/);
    fails(spec({}, { env: ['=x'] }), 'spec.task.container.env[0]');
    expect(validateServiceSpec(spec({}, { env: ['A=1', 'A=2', 'B='] })).warnings).toEqual([expect.stringMatching(/A is set more than once/)]);
  });

  it('mounts: type, absolute target, absolute bind source, volume name, tmpfs without source', () => {
    const m = (o: object) => spec({}, { mounts: [{ type: MountType.VOLUME, source: '', target: '/data', readOnly: false, ...o }] });
    fails(m({ target: 'data' }), 'mounts[0].target', /absolute/);
    fails(m({ target: '' }), 'mounts[0].target', /required/);
    fails(m({ type: MountType.BIND, source: 'rel/path' }), 'mounts[0].source', /absolute/);
    fails(m({ type: MountType.BIND, source: '' }), 'mounts[0].source', /bind/);
    fails(m({ type: MountType.VOLUME, source: '/host/path' }), 'mounts[0].source', /type=bind/);
    fails(m({ type: MountType.TMPFS, source: 'x' }), 'mounts[0].source', /tmpfs/);
    fails(m({ type: 7 }), 'mounts[0].type', /bind, volume or tmpfs/);
    fails(spec({}, { mounts: [{ type: MountType.TMPFS, source: '', target: '/t', readOnly: false }, { type: MountType.TMPFS, source: '', target: '/t', readOnly: false }] }), 'mounts[1].target', /mounts\[0\]/);
    expect(() => validateServiceSpec(m({ source: 'pgdata' }))).not.toThrow();
    expect(() => validateServiceSpec(m({ type: MountType.BIND, source: '/srv', readOnly: true }))).not.toThrow();
  });

  it('constraints: known keys, == or !=, named in the error', () => {
    const c = (...constraints: string[]) => spec({}, {}, { placement: { constraints, preferences: [], maxReplicas: 0, platforms: [] } });
    fails(c('node.role==worker', 'node.colour==red'), 'node.colour==red', /unknown key/);
    fails(c('node.role=worker'), 'node.role=worker', /no operator/);
    fails(c('node.role==boss'), /manager or worker/);
    fails(c('node.labels.==x'), /names no label/);
    expect(() => validateServiceSpec(c('node.role==worker', 'node.hostname!=n1', 'node.labels.zone==east', 'node.id==abc', 'node.platform.os==linux', 'node.platform.arch!=arm64'))).not.toThrow();
  });

  it('parseConstraint returns key, operator and value', () => {
    expect(parseConstraint('node.labels.Zone == east')).toEqual({ key: 'node.labels.Zone', op: '==', value: 'east' });
    expect(parseConstraint('Node.Role!=manager')).toEqual({ key: 'node.role', op: '!=', value: 'manager' });
    expect(parseSpreadPreference('spread=node.labels.zone')).toBe('zone');
  });

  it('placement preferences: spread over a node label only', () => {
    const p = (spread: string) => spec({}, {}, { placement: { constraints: [], preferences: [{ spread }], maxReplicas: 0, platforms: [] } });
    fails(p('node.hostname'), 'preferences[0].spread', /spread=node.labels.KEY/);
    expect(() => validateServiceSpec(p('node.labels.zone'))).not.toThrow();
  });

  it('resources: non-negative, reservations within limits, no pids reservation', () => {
    const r = (limits: object | null, reservations: object | null) => spec({}, {}, { resources: { limits: limits && { nanoCpus: 0, memoryBytes: 0, pids: 0, ...limits }, reservations: reservations && { nanoCpus: 0, memoryBytes: 0, pids: 0, ...reservations } } });
    fails(r({ nanoCpus: 5e8 }, { nanoCpus: 1e9 }), 'reservations.nanoCpus', /more than the limit/);
    fails(r({ memoryBytes: 64 << 20 }, { memoryBytes: 128 << 20 }), 'reservations.memoryBytes', /lower the reservation/);
    fails(r({ memoryBytes: 1024 }, null), 'limits.memoryBytes', /6M/);
    fails(r(null, { nanoCpus: -1 }), 'reservations.nanoCpus', /≥ 0/);
    fails(r(null, { pids: 5 }), 'reservations.pids', /--limit-pids/);
    expect(() => validateServiceSpec(r({ nanoCpus: 1e9, memoryBytes: 128 << 20, pids: 100 }, { nanoCpus: 5e8, memoryBytes: 64 << 20 }))).not.toThrow();
  });

  it('restart policy: condition and durations', () => {
    const rp = (o: object) => spec({}, {}, { restart: { ...DEFAULT_RESTART, ...o } });
    fails(rp({ condition: 9 }), 'spec.task.restart.condition', /on-failure/);
    fails(rp({ delayMs: -5 }), 'spec.task.restart.delayMs', /≥ 0/);
    fails(rp({ windowMs: -1 }), 'spec.task.restart.windowMs');
  });

  it('update and rollback configs: ratio 0..1, parallelism and durations ≥ 0', () => {
    fails(spec({ update: { ...DEFAULT_UPDATE, maxFailureRatio: 1.5 } }), 'spec.update.maxFailureRatio', /from 0 to 1/);
    fails(spec({ rollback: { ...DEFAULT_UPDATE, parallelism: -1 } }), 'spec.rollback.parallelism');
    fails(spec({ update: { ...DEFAULT_UPDATE, delayMs: -1 } }), 'spec.update.delayMs');
    fails(spec({ rollback: { ...DEFAULT_UPDATE, monitorMs: -1 } }), 'spec.rollback.monitorMs');
    fails(spec({ update: { ...DEFAULT_UPDATE, failureAction: 5 as UpdateFailureAction } }), 'spec.update.failureAction', /rollback/);
  });

  it('health checks: CMD, CMD-SHELL or NONE, and durations', () => {
    const h = (test: string[], o: object = {}) => spec({}, { healthcheck: { test, intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, ...o } });
    fails(h(['curl', 'x']), 'healthcheck.test', /CMD, CMD-SHELL or NONE/);
    fails(h(['CMD']), 'healthcheck.test', /needs a command/);
    fails(h(['CMD-SHELL', 'a', 'b']), 'healthcheck.test', /one shell command/);
    fails(h(['NONE', 'x']), 'healthcheck.test');
    fails(h(['CMD', 'true'], { intervalMs: -1 }), 'healthcheck.intervalMs');
    for (const ok of [['CMD', 'true'], ['CMD-SHELL', 'curl -f localhost'], ['NONE'], []]) expect(() => validateServiceSpec(h(ok))).not.toThrow();
  });

  it('container fields: stop grace, hostname, user, absolute workdir, stop signal', () => {
    fails(spec({}, { stopGracePeriodMs: -1 }), 'stopGracePeriodMs');
    fails(spec({}, { hostname: 'bad_host!' }), 'spec.task.container.hostname');
    fails(spec({}, { user: 'a b' }), 'spec.task.container.user', /UID:GID/);
    fails(spec({}, { dir: 'app' }), 'spec.task.container.dir', /absolute/);
    fails(spec({}, { stopSignal: 'sig term' }), 'spec.task.container.stopSignal', /SIGTERM/);
    expect(() => validateServiceSpec(spec({}, { hostname: 'web-1.example', user: '1000:1000', dir: '/app', stopSignal: 'SIGQUIT' }))).not.toThrow();
    expect(() => validateServiceSpec(spec({}, { hostname: '{{.Node.Hostname}}-web' }))).not.toThrow();
  });
});
