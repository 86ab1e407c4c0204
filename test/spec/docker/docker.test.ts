// The pure conversions between Docker's Engine API JSON and ours: nodes,
// filters, the swarm Spec, init and join requests, /info and /version.
import { describe, expect, it } from 'vitest';
import { DEFAULT_POOL, DEFAULT_SUBNET_BITS } from '../../../manager/allocator/ipam.js';
import { VXLAN_PORT } from '../../../agent/overlay/names.js';
import { formatCidr } from '../../../lib/ipnet.js';
import { isEmpty, rfc3339, ZERO_TIME } from '../../../spec/docker/common.js';
import { filterNodes, nodeUpdateFromDocker, parseNodeFilters, toDockerNode } from '../../../spec/docker/node.js';
import {
  INIT_DEFAULTS,
  initFromDocker,
  joinFromDocker,
  settingsFromDockerSpec,
  SWARM_NETWORKING,
  toDockerSpec,
} from '../../../spec/docker/swarm.js';
import { goArch, swarmHeader } from '../../../spec/docker/system.js';
import { Node, NodeAvailability, NodeRole, NodeState } from '../../../proto/gen/objects.js';

const tls = { TrustRoot: 'PEM', CertIssuerSubject: 's', CertIssuerPublicKey: 'k' };

describe('common', () => {
  it('times are RFC 3339, a missing one Go zero time; emptiness as Docker sends it', () => {
    expect(rfc3339(Date.UTC(2026, 11, 7, 18, 0, 0, 5))).toBe('2026-12-07T18:00:00.005Z');
    expect(rfc3339(0)).toBe(ZERO_TIME);
    expect(isEmpty({ Raft: { ElectionTick: 0 }, Labels: null, X: [] })).toBe(true);
    expect(isEmpty({ a: { b: 1 } })).toBe(false);
  });
});

describe('node filters', () => {
  it('refuses unknown keys, roles and memberships as dockerd', () => {
    expect(() => parseNodeFilters('{"colour":{"red":true}}')).toThrow("invalid filter 'colour'");
    expect(() => parseNodeFilters('{"role":{"boss":true}}')).toThrow("Invalid role filter: 'boss'");
    expect(() => parseNodeFilters('{"membership":{"left":true}}')).toThrow("Invalid membership filter: 'left'");
  });

  it('node.label reads the spec labels (every value must match), label the engine labels (daemon --label)', () => {
    const n = Node.create({
      meta: { id: 'abc', version: 1, createdAt: 0, updatedAt: 0 },
      spec: { name: 'h1', role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE, labels: { zone: 'a', ssd: '' } },
      status: { state: NodeState.READY, message: '', addr: '' },
    });
    const pick = (f: string): number => filterNodes([n], parseNodeFilters(f)).length;
    expect(pick('{"node.label":{"zone=a":true,"ssd":true}}')).toBe(1);
    expect(pick('{"node.label":{"zone=b":true}}')).toBe(0);
    expect(pick('{"label":{"zone":true}}')).toBe(0);
    n.description = { hostname: 'h1', engineVersion: '', engineLabels: { disk: 'ssd' } } as Node['description'];
    expect(pick('{"label":{"disk=ssd":true}}')).toBe(1);
    expect(pick('{"label":{"disk=hdd":true}}')).toBe(0);
    const tls = { TrustRoot: '', CertIssuerSubject: '', CertIssuerPublicKey: '' };
    expect((toDockerNode(n, tls) as { Description: { Engine: object } }).Description.Engine).toEqual({
      EngineVersion: '',
      Labels: { disk: 'ssd' },
    });
    expect(pick('{"role":{"worker":true},"name":{"h":true},"id":{"ab":true}}')).toBe(1);
  });
});

describe('nodes', () => {
  const n = Node.create({
    meta: { id: 'abc', version: 3, createdAt: 1000, updatedAt: 2000 },
    spec: { name: 'h1', role: NodeRole.WORKER, availability: NodeAvailability.PAUSE, labels: { a: '1' } },
    role: NodeRole.WORKER,
    status: { state: NodeState.DOWN, message: 'heartbeat failure', addr: '10.0.0.3:4242' },
  });

  it('shows a node as Docker does: names in lower case, the status address without its port, no ManagerStatus on a worker', () => {
    const d = toDockerNode(n, tls);
    expect(d).toMatchObject({
      ID: 'abc',
      Version: { Index: 3 },
      Spec: { Name: 'h1', Labels: { a: '1' }, Role: 'worker', Availability: 'pause' },
      Status: { State: 'down', Message: 'heartbeat failure', Addr: '10.0.0.3' },
    });
    expect(d.ManagerStatus).toBeUndefined();
  });

  it('a NodeSpec becomes the labels to add and remove, with its role and availability', () => {
    expect(nodeUpdateFromDocker(n, { Labels: { b: '2' }, Role: 'worker', Availability: 'active' }, 3)).toEqual({
      ref: 'abc',
      version: 3,
      role: 'worker',
      availability: 'active',
      labelAdd: { b: '2' },
      labelRm: ['a'],
    });
    expect(() => nodeUpdateFromDocker(n, { Role: 'worker', Availability: 'gone' }, 3)).toThrow('invalid Availability: "gone"');
    expect(() => nodeUpdateFromDocker(n, { Role: 'worker', Availability: 'active', Labels: { a: 1 } }, 3)).toThrow(
      'Labels.a must be a string',
    );
    expect(() => nodeUpdateFromDocker(n, { Role: 'worker', Availability: 'active', Colour: 'red' }, 3)).toThrow(/Colour is not a field/);
  });
});

describe('swarm spec', () => {
  const current = {
    taskHistoryLimit: 5,
    dispatcherHeartbeatMs: 5000,
    certExpiryMs: 7_776_000_000,
    snapshotInterval: 10_000,
    autolock: false,
  };

  it('the spec GET /swarm shows, sent back, changes nothing', () => {
    expect(settingsFromDockerSpec(current, toDockerSpec(current), '').set).toEqual([]);
    expect(settingsFromDockerSpec(current, {}, '').set).toEqual([]);
  });

  it('maps each setting tsswarm has, durations in nanoseconds', () => {
    const c = settingsFromDockerSpec(
      current,
      {
        Orchestration: { TaskHistoryRetentionLimit: -3 },
        Raft: { SnapshotInterval: 500 },
        Dispatcher: { HeartbeatPeriod: 2_500_000_000 },
        CAConfig: { NodeCertExpiry: 7_200_000_000_000 },
        EncryptionConfig: { AutoLockManagers: true },
      },
      '',
    );
    expect(c.set).toEqual(['task-history-limit', 'snapshot-interval', 'dispatcher-heartbeat', 'cert-expiry', 'autolock']);
    expect(c.settings).toEqual({
      taskHistoryLimit: -1,
      dispatcherHeartbeatMs: 2500,
      certExpiryMs: 7_200_000,
      snapshotInterval: 500,
      autolock: true,
    });
  });

  it('refuses out-of-range values naming the Docker field', () => {
    expect(() => settingsFromDockerSpec(current, { CAConfig: { NodeCertExpiry: 60e9 } }, '')).toThrow(
      /^CAConfig\.NodeCertExpiry must be a duration of at least 1h/,
    );
    expect(() => settingsFromDockerSpec(current, { Orchestration: { TaskHistoryRetentionLimit: 'x' } }, '')).toThrow(
      /^Orchestration\.TaskHistoryRetentionLimit must be a whole number/,
    );
    expect(() => settingsFromDockerSpec(current, { Raft: { KeepOldSnapshots: 2 } }, 'Spec')).toThrow(
      /^Spec\.Raft\.KeepOldSnapshots is not supported/,
    );
  });

  it('init: the CLI default request is a plain init; settings init does not take come after', () => {
    const i = initFromDocker({
      AdvertiseAddr: '10.0.0.1',
      Spec: { Orchestration: { TaskHistoryRetentionLimit: 2 }, CAConfig: { NodeCertExpiry: 7_200_000_000_000 } },
    });
    expect(i).toMatchObject({ advertiseAddr: '10.0.0.1', autolock: false, certExpiryMs: 7_200_000, availability: '' });
    expect(i.after.set).toEqual(['task-history-limit']);
    expect(initFromDocker({ Spec: { EncryptionConfig: { AutoLockManagers: true } } }).autolock).toBe(true);
    expect(initFromDocker({}).after.settings).toEqual(INIT_DEFAULTS);
  });

  it('join needs a token and a manager address, and refuses a data path address', () => {
    expect(joinFromDocker({ RemoteAddrs: ['a:1', 'b:2'], JoinToken: 'T' })).toMatchObject({ remoteAddrs: ['a:1', 'b:2'], token: 'T' });
    expect(() => joinFromDocker({ RemoteAddrs: [], JoinToken: 'T' })).toThrow(/^RemoteAddrs/);
    expect(() => joinFromDocker({ RemoteAddrs: ['a:1'] })).toThrow('JoinToken is required');
    expect(() => joinFromDocker({ RemoteAddrs: ['a:1'], JoinToken: 'T', DataPathAddr: 'eth1' })).toThrow(/^DataPathAddr is not supported/);
  });

  it('the networking GET /swarm shows is what the allocator and the overlay use', () => {
    expect(SWARM_NETWORKING).toEqual({
      DefaultAddrPool: [formatCidr(DEFAULT_POOL)],
      SubnetSize: DEFAULT_SUBNET_BITS,
      DataPathPort: VXLAN_PORT,
    });
  });
});

describe('system', () => {
  it('the Swarm ping header and GOARCH names', () => {
    expect(swarmHeader({ state: 'active', role: 'manager' })).toBe('active/manager');
    expect(swarmHeader({ state: 'active', role: 'worker' })).toBe('active/worker');
    expect(swarmHeader({ state: 'pending', role: '' })).toBe('pending');
    expect(swarmHeader({ state: 'weird', role: '' })).toBe('inactive');
    expect(goArch('x86_64')).toBe('amd64');
    expect(goArch('aarch64')).toBe('arm64');
  });
});
