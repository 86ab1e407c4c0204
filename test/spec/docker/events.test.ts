// The swarm events of GET /events (spec/docker/events.ts): what moby's
// daemon/events.go builds from a store change, dockerd's events filter, the
// `since`/`until` parameters as the docker CLI sends them, the replay of the
// ring, and the JSON line the docker CLI decodes.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../lib/errors.js';
import {
  Config,
  ConfigSpec,
  ContainerSpec,
  Network,
  NetworkSpec,
  Node,
  NodeAvailability,
  NodeRole,
  NodeState,
  Secret,
  SecretSpec,
  Service,
  ServiceSpec,
  Task,
  TaskSpec,
  UpdateState,
} from '../../../proto/gen/objects.js';
import {
  checkEventWindow,
  type DockerEvent,
  eventFilter,
  eventLine,
  parseEventTime,
  replayEvents,
  swarmEventOf,
} from '../../../spec/docker/events.js';
import { parseDockerFilters } from '../../../spec/docker/filters.js';

const CREATED = Date.UTC(2026, 11, 7, 10, 0, 0, 123);
const UPDATED = Date.UTC(2026, 11, 7, 10, 5, 0, 456);
const NOW = Date.UTC(2026, 11, 7, 11, 0, 0, 789);
const meta = { id: 'x1aaaaaaaaaaaaaaaaaaaaaaa', version: 9, createdAt: CREATED, updatedAt: UPDATED };

const node = (over: Partial<Node> = {}): Node =>
  Node.create({
    meta,
    spec: { name: '', role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE, labels: {} },
    role: NodeRole.WORKER,
    status: { state: NodeState.READY, message: '', addr: '10.0.0.2:4242' },
    description: { hostname: 'w1', engineVersion: '', engineLabels: {} },
    ...over,
  });

const service = (image: string, o: { replicas?: number; global?: boolean; update?: UpdateState } = {}): Service =>
  Service.create({
    meta,
    spec: ServiceSpec.create({
      name: 'web',
      task: TaskSpec.create({ container: ContainerSpec.create({ image }) }),
      ...(o.global ? { global: {} } : { replicated: { replicas: o.replicas ?? 1 } }),
    }),
    ...(o.update !== undefined ? { updateStatus: { state: o.update, startedAt: 0, completedAt: 0, message: '' } } : {}),
  });

function usage(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error('expected a UsageError');
}

const ev = (type: DockerEvent['Type'], action: DockerEvent['Action'], id: string, attrs: Record<string, string>, s = 100): DockerEvent => ({
  Type: type,
  Action: action,
  Actor: { ID: id, Attributes: attrs },
  scope: 'swarm',
  time: s,
  timeNano: BigInt(s) * 1_000_000_000n,
});

describe('swarmEventOf: the event moby emits for a change of the swarm store', () => {
  it("a create is stamped with the object's CreatedAt, an update with its UpdatedAt, a remove with now", () => {
    const n = node({ spec: { name: 'w1', role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE, labels: {} } });
    expect(swarmEventOf({ table: 'nodes', kind: 'create', object: n }, NOW)).toEqual({
      Type: 'node',
      Action: 'create',
      Actor: { ID: meta.id, Attributes: { name: 'w1' } },
      scope: 'swarm',
      time: Math.floor(CREATED / 1000),
      timeNano: BigInt(CREATED) * 1_000_000n,
    });
    expect(swarmEventOf({ table: 'nodes', kind: 'update', object: n, old: n }, NOW)).toMatchObject({
      Action: 'update',
      timeNano: BigInt(UPDATED) * 1_000_000n,
    });
    expect(swarmEventOf({ table: 'nodes', kind: 'delete', object: n }, NOW)).toMatchObject({
      Action: 'remove',
      time: Math.floor(NOW / 1000),
      timeNano: BigInt(NOW) * 1_000_000n,
    });
  });

  it('networks, secrets and configs carry their name; tasks and the cluster are not events', () => {
    const net = Network.create({ meta, spec: NetworkSpec.create({ name: 'backend', driver: 'overlay' }) });
    const sec = Secret.create({ meta, spec: SecretSpec.create({ name: 'pw', data: new Uint8Array([1]) }) });
    const cfg = Config.create({ meta, spec: ConfigSpec.create({ name: 'site', data: new Uint8Array([1]) }) });
    expect(swarmEventOf({ table: 'networks', kind: 'update', object: net, old: net }, NOW)).toMatchObject({
      Type: 'network',
      Action: 'update',
      Actor: { ID: meta.id, Attributes: { name: 'backend' } },
      scope: 'swarm',
    });
    expect(swarmEventOf({ table: 'secrets', kind: 'create', object: sec }, NOW)?.Actor).toEqual({
      ID: meta.id,
      Attributes: { name: 'pw' },
    });
    expect(swarmEventOf({ table: 'configs', kind: 'delete', object: cfg }, NOW)).toMatchObject({ Type: 'config', Action: 'remove' });
    expect(swarmEventOf({ table: 'tasks', kind: 'create', object: Task.create({ meta }) }, NOW)).toBeUndefined();
    expect(swarmEventOf({ table: 'cluster', kind: 'update', object: {}, old: {} }, NOW)).toBeUndefined();
  });

  it("a node's name is its spec name, else its hostname; an update says which of availability, role and state changed", () => {
    const old = node();
    expect(swarmEventOf({ table: 'nodes', kind: 'update', object: old, old }, NOW)?.Actor.Attributes).toEqual({ name: 'w1' });
    const drained = node({
      spec: { name: '', role: NodeRole.MANAGER, availability: NodeAvailability.DRAIN, labels: {} },
      role: NodeRole.MANAGER,
      status: { state: NodeState.DOWN, message: 'heartbeat failure', addr: '' },
    });
    expect(swarmEventOf({ table: 'nodes', kind: 'update', object: drained, old }, NOW)?.Actor.Attributes).toEqual({
      name: 'w1',
      'availability.old': 'active',
      'availability.new': 'drain',
      'role.old': 'worker',
      'role.new': 'manager',
      'state.old': 'ready',
      'state.new': 'down',
    });
    // Leadership and reachability, within the manager role, as moby compares them.
    const m = (leader: boolean, reachability: string): Node =>
      node({ role: NodeRole.MANAGER, managerStatus: { raftId: 'r1', addr: '10.0.0.1:4242', leader, reachability } });
    expect(
      swarmEventOf({ table: 'nodes', kind: 'update', object: m(true, 'reachable'), old: m(false, '') }, NOW)?.Actor.Attributes,
    ).toEqual({
      name: 'w1',
      'leader.old': 'false',
      'leader.new': 'true',
      'reachability.old': 'unknown',
      'reachability.new': 'reachable',
    });
    // A create shows no changes, even with an old object at hand.
    expect(swarmEventOf({ table: 'nodes', kind: 'create', object: drained, old }, NOW)?.Actor.Attributes).toEqual({ name: 'w1' });
  });

  it("a service update says which of image, replicas and update state changed, in moby's attribute names", () => {
    const upd = (object: Service, old: Service) => swarmEventOf({ table: 'services', kind: 'update', object, old }, NOW)?.Actor.Attributes;
    expect(upd(service('busybox:1', { replicas: 2 }), service('busybox:1', { replicas: 2 }))).toEqual({ name: 'web' });
    expect(upd(service('busybox:2', { replicas: 3 }), service('busybox:1', { replicas: 2 }))).toEqual({
      name: 'web',
      'image.old': 'busybox:1',
      'image.new': 'busybox:2',
      'replicas.old': '2',
      'replicas.new': '3',
    });
    // The first update status: only the new state; a change: both; the same state: neither.
    expect(upd(service('b', { update: UpdateState.UPDATING }), service('b'))).toEqual({ name: 'web', 'updatestate.new': 'updating' });
    expect(upd(service('b', { update: UpdateState.ROLLBACK_COMPLETED }), service('b', { update: UpdateState.ROLLBACK_STARTED }))).toEqual({
      name: 'web',
      'updatestate.old': 'rollback_started',
      'updatestate.new': 'rollback_completed',
    });
    expect(upd(service('b', { update: UpdateState.COMPLETED }), service('b', { update: UpdateState.COMPLETED }))).toEqual({ name: 'web' });
    // A change of mode has no replica counts to compare.
    expect(upd(service('b', { global: true }), service('b', { replicas: 2 }))).toEqual({ name: 'web' });
  });
});

describe('eventLine: the JSON line dockerd writes', () => {
  it("has moby's field order, sorted attributes, and an exact timeNano past 2^53", () => {
    const e: DockerEvent = {
      Type: 'service',
      Action: 'update',
      Actor: { ID: 's1', Attributes: { 'replicas.old': '1', name: 'web', 'replicas.new': '2' } },
      scope: 'swarm',
      time: 1765101600,
      timeNano: 1765101600123456789n,
    };
    const line = eventLine(e);
    expect(line).toBe(
      '{"Type":"service","Action":"update","Actor":{"ID":"s1","Attributes":{"name":"web","replicas.new":"2","replicas.old":"1"}},"scope":"swarm","time":1765101600,"timeNano":1765101600123456789}\n',
    );
    expect(line.split('\n')).toHaveLength(2);
    expect(JSON.parse(line)).toMatchObject({ Type: 'service', Actor: { Attributes: { name: 'web' } }, time: 1765101600 });
  });
});

describe('eventFilter: dockerd events filter', () => {
  const svc = ev('service', 'create', 'svc1aaaaaaaaaaaaaaaaaaaaa', { name: 'web' });
  const nod = ev('node', 'update', 'nod1aaaaaaaaaaaaaaaaaaaaa', { name: 'w1', 'availability.old': 'active', 'availability.new': 'drain' });
  const net = ev('network', 'remove', 'net1aaaaaaaaaaaaaaaaaaaaa', { name: 'backend' });
  const all = [svc, nod, net];
  const keep = (filters: object): string[] => all.filter(eventFilter(parseDockerFilters(JSON.stringify(filters)))).map((e) => e.Type);

  it('no filter (or a key with no values) keeps everything', () => {
    expect(all.filter(eventFilter(parseDockerFilters(null)))).toHaveLength(3);
    expect(keep({ type: {} })).toEqual(['service', 'node', 'network']);
  });

  it('type, event and scope match exactly, several values of a key being alternatives', () => {
    expect(keep({ type: { service: true } })).toEqual(['service']);
    expect(keep({ type: { service: true, node: true } })).toEqual(['service', 'node']);
    expect(keep({ type: ['serv'] })).toEqual([]);
    expect(keep({ event: { update: true, remove: true } })).toEqual(['node', 'network']);
    expect(keep({ type: { service: true }, event: { remove: true } })).toEqual([]);
    expect(keep({ scope: { swarm: true } })).toEqual(['service', 'node', 'network']);
    expect(keep({ scope: { local: true } })).toEqual([]);
  });

  it('object keys match the id or name by prefix, and apply to events of every type (as moby)', () => {
    expect(keep({ service: { web: true } })).toEqual(['service']);
    expect(keep({ service: { svc1: true } })).toEqual(['service']);
    expect(keep({ service: { we: true } })).toEqual(['service']);
    expect(keep({ service: { api: true } })).toEqual([]);
    expect(keep({ node: { w1: true } })).toEqual(['node']);
    expect(keep({ network: { backend: true } })).toEqual(['network']);
    // dockerd matches `container` (and the others) against every event's id and name, whatever its type.
    expect(keep({ container: { nginx: true } })).toEqual([]);
    expect(keep({ container: { web: true } })).toEqual(['service']);
    expect(keep({ image: { busybox: true } })).toEqual([]);
    expect(keep({ image: { svc1aaaaaaaaaaaaaaaaaaaaa: true } })).toEqual(['service']);
  });

  it('label matches the attributes: a key present, or key=value', () => {
    expect(keep({ label: { 'availability.new=drain': true } })).toEqual(['node']);
    expect(keep({ label: { 'availability.new': true } })).toEqual(['node']);
    expect(keep({ label: { 'availability.new=active': true } })).toEqual([]);
    expect(keep({ label: { 'name=web': true } })).toEqual(['service']);
  });

  it('an action with a suffix in dockerd (exec_start: …) named bare matches by prefix', () => {
    const exec = { ...svc, Action: 'exec_start: sh' } as unknown as DockerEvent;
    expect([exec].filter(eventFilter(parseDockerFilters('{"event":{"exec_start":true}}')))).toHaveLength(1);
    expect([exec].filter(eventFilter(parseDockerFilters('{"event":{"exec":true}}')))).toHaveLength(0);
  });

  it('a key dockerd does not know is refused, not ignored', () => {
    expect(usage(() => eventFilter(parseDockerFilters('{"typ":{"service":true}}'))).message).toBe("invalid filter 'typ'");
    expect(usage(() => eventFilter(parseDockerFilters('{"type":"service"}'))).message).toBe('invalid filter');
  });
});

describe('since and until', () => {
  it('reads unix seconds with an optional fraction of up to 20 digits, cut to nanoseconds', () => {
    expect(parseEventTime('since', null)).toBeUndefined();
    expect(parseEventTime('since', '')).toBeUndefined();
    expect(parseEventTime('since', '1765100000')).toBe(1765100000_000000000n);
    expect(parseEventTime('since', '1765100000.5')).toBe(1765100000_500000000n);
    expect(parseEventTime('until', '1765100000.000000001')).toBe(1765100000_000000001n);
    expect(parseEventTime('until', '1765100000.12345678912345678912')).toBe(1765100000_123456789n);
    expect(parseEventTime('until', '1765100000.')).toBe(1765100000_000000000n);
    expect(parseEventTime('since', '0')).toBe(0n);
    expect(parseEventTime('since', '-10')).toBe(-10_000000000n);
  });

  it('refuses anything else, naming the parameter and the form to give', () => {
    const e = usage(() => parseEventTime('since', '2026-12-07T10:00:00Z'));
    expect(e.message).toMatch(
      /^invalid value for 'since': invalid timestamp "2026-12-07T10:00:00Z": invalid seconds "2026-12-07T10:00:00Z"; give unix seconds/,
    );
    expect(e.message).toMatch(/the docker CLI converts durations \(10m\) and RFC 3339 times/);
    expect(usage(() => parseEventTime('until', '10m')).message).toMatch(/^invalid value for 'until'/);
    expect(usage(() => parseEventTime('until', '1.123456789012345678901')).message).toMatch(/21 digits, at most 20/);
    expect(usage(() => parseEventTime('until', '1.-5')).message).toMatch(/digits only/);
    expect(usage(() => parseEventTime('until', '99999999999999999999')).message).toMatch(/invalid seconds/);
    expect(usage(() => parseEventTime('until', '9999999999999999999')).message).toMatch(/out of range/);
    expect(usage(() => parseEventTime('since', 'x'.repeat(100))).message.length).toBeLessThan(400);
  });

  it('a window that ends before it begins is refused as dockerd does', () => {
    expect(usage(() => checkEventWindow(20n, 10n, { since: '20', until: '10' })).message).toBe(
      '`since` time (20) cannot be after `until` time (10)',
    );
    expect(() => checkEventWindow(10n, 10n, { since: '10', until: '10' })).not.toThrow();
    expect(() => checkEventWindow(undefined, -5n, { since: '', until: '-5' })).not.toThrow();
    expect(() => checkEventWindow(20n, undefined, { since: '20', until: '' })).not.toThrow();
  });
});

describe('replayEvents: the ring replayed for since/until', () => {
  const ring = [10, 20, 30, 25, 40, 50].map((s, i) => ev(i % 2 ? 'node' : 'service', 'update', `e${s}`, { name: `n${s}` }, s));
  const sec = (s: number): bigint => BigInt(s) * 1_000_000_000n;
  const ids = (es: DockerEvent[]): string[] => es.map((e) => e.Actor.ID);
  const any = (): boolean => true;

  it('replays nothing without since or until (a live stream only)', () => {
    expect(replayEvents(ring, undefined, undefined, any)).toEqual([]);
  });

  it('walks back from the newest and stops at the first event older than since, as moby', () => {
    expect(ids(replayEvents(ring, sec(25), undefined, any))).toEqual(['e30', 'e25', 'e40', 'e50']);
    expect(ids(replayEvents(ring, sec(26), undefined, any))).toEqual(['e40', 'e50']);
    expect(ids(replayEvents(ring, sec(60), undefined, any))).toEqual([]);
  });

  it('skips events after until and those the filter drops; until alone replays from the oldest', () => {
    expect(ids(replayEvents(ring, sec(20), sec(30), any))).toEqual(['e20', 'e30', 'e25']);
    expect(ids(replayEvents(ring, undefined, sec(25), any))).toEqual(['e10', 'e20', 'e25']);
    expect(ids(replayEvents(ring, sec(0), undefined, (e) => e.Type === 'node'))).toEqual(['e20', 'e25', 'e50']);
  });
});
