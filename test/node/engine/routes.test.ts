// The swarm, node, info and version routes on a fake backend: what each one
// asks of the Control API and the daemon, and the JSON it answers.
import { afterEach, describe, expect, it } from 'vitest';
import { baseInfo, call, fakeBackend, serve, type Served } from './fake.js';

let s: Served | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

const msg = (r: { json: unknown }): string => (r.json as { message: string }).message;

describe('/info and /version', () => {
  it('a manager shows the cluster, node and manager counts; a worker its managers; inactive and locked only the state', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const info = (await call(s.socket, 'GET', '/v1.41/info')).json as Record<string, unknown>;
    expect(info).toMatchObject({
      ID: 'engine-id',
      Name: 'm1',
      ServerVersion: '0.1.0',
      NCPU: 2,
      MemTotal: 1 << 30,
      OSType: 'linux',
      Architecture: 'x86_64',
    });
    const sw = info.Swarm as Record<string, unknown>;
    expect(sw).toMatchObject({
      NodeID: 'n1aaaaaaaaaaaaaaaaaaaaaaa',
      NodeAddr: '10.0.0.1',
      LocalNodeState: 'active',
      ControlAvailable: true,
      Error: '',
      Nodes: 2,
      Managers: 1,
    });
    expect(sw.RemoteManagers).toEqual([{ NodeID: 'n1aaaaaaaaaaaaaaaaaaaaaaa', Addr: '10.0.0.1:4242' }]);
    expect(sw.Cluster).toMatchObject({
      ID: 'c1',
      Version: { Index: 11 },
      CreatedAt: '2026-01-01T00:00:00Z',
      Spec: {
        Name: 'default',
        Orchestration: { TaskHistoryRetentionLimit: 5 },
        Dispatcher: { HeartbeatPeriod: 5e9 },
        EncryptionConfig: { AutoLockManagers: false },
      },
      DefaultAddrPool: ['10.0.0.0/8'],
      SubnetSize: 24,
      DataPathPort: 4789,
    });
    f.info.isManager = false;
    f.info.role = 'worker';
    const w = ((await call(s.socket, 'GET', '/info')).json as { Swarm: Record<string, unknown> }).Swarm;
    expect(w).toEqual({
      NodeID: 'n1aaaaaaaaaaaaaaaaaaaaaaa',
      NodeAddr: '10.0.0.1',
      LocalNodeState: 'active',
      ControlAvailable: false,
      Error: '',
      RemoteManagers: [{ NodeID: '', Addr: '10.0.0.1:4242' }],
    });
    f.info.state = 'inactive';
    f.info.nodeAddr = '';
    expect(((await call(s.socket, 'GET', '/info')).json as { Swarm: unknown }).Swarm).toEqual({
      NodeID: '',
      NodeAddr: '',
      LocalNodeState: 'inactive',
      ControlAvailable: false,
      Error: '',
      RemoteManagers: null,
    });
    f.info.state = 'locked';
    expect(((await call(s.socket, 'GET', '/info')).json as { Swarm: unknown }).Swarm).toEqual({
      NodeID: '',
      NodeAddr: '',
      LocalNodeState: 'locked',
      ControlAvailable: false,
      Error: 'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to unlock it.',
      RemoteManagers: null,
    });
  });

  it('/version names the engine component and the API range', async () => {
    s = await serve(fakeBackend().backend);
    const v = (await call(s.socket, 'GET', '/version')).json as Record<string, unknown>;
    expect(v).toMatchObject({
      Version: '0.1.0',
      ApiVersion: '1.41',
      MinAPIVersion: '1.24',
      Os: 'linux',
      Arch: 'amd64',
      KernelVersion: '6.1.0',
    });
    expect((v.Components as { Name: string }[])[0]!.Name).toBe('Engine');
  });
});

describe('/nodes', () => {
  it('lists nodes in Docker shape and filters them as SwarmKit does', async () => {
    const f = fakeBackend();
    f.nodes[1]!.spec.labels = { zone: 'a' };
    s = await serve(f.backend);
    const all = (await call(s.socket, 'GET', '/v1.41/nodes')).json as Record<string, unknown>[];
    expect(all).toHaveLength(2);
    expect(all[0]).toMatchObject({
      ID: 'n1aaaaaaaaaaaaaaaaaaaaaaa',
      Version: { Index: 7 },
      CreatedAt: '2026-01-02T03:04:05Z',
      Spec: { Labels: {}, Role: 'manager', Availability: 'active' },
      Description: {
        Hostname: 'm1',
        Platform: { Architecture: 'x86_64', OS: 'linux' },
        Resources: { NanoCPUs: 2e9 },
        TLSInfo: { TrustRoot: 'PEM' },
      },
      Status: { State: 'ready', Addr: '10.0.0.1' },
      ManagerStatus: { Leader: true, Reachability: 'reachable', Addr: '10.0.0.1:4242' },
    });
    expect(all[1]!.ManagerStatus).toBeUndefined();
    // as dockerd: Spec.Name stays empty for a node named by its hostname (`docker node inspect --pretty` prints no Name line)
    expect(all[0]!.Spec).not.toHaveProperty('Name');
    const q = async (f: object): Promise<string[]> =>
      ((await call(s!.socket, 'GET', `/nodes?filters=${encodeURIComponent(JSON.stringify(f))}`)).json as { ID: string }[]).map((n) =>
        n.ID.slice(0, 2),
      );
    expect(await q({ role: { worker: true } })).toEqual(['n2']);
    expect(await q({ role: { manager: true, worker: true } })).toEqual(['n1', 'n2']);
    expect(await q({ name: { w: true } })).toEqual(['n2']);
    expect(await q({ id: { n1: true } })).toEqual(['n1']);
    expect(await q({ 'node.label': { 'zone=a': true } })).toEqual(['n2']);
    expect(await q({ 'node.label': { zone: true } })).toEqual(['n2']);
    expect(await q({ 'node.label': { 'zone=b': true } })).toEqual([]);
    expect(await q({ label: { zone: true } })).toEqual([]);
    expect(await q({ membership: { accepted: true } })).toEqual(['n1', 'n2']);
    expect(await q({ role: ['worker'] })).toEqual(['n2']);
    const bad = await call(s.socket, 'GET', `/nodes?filters=${encodeURIComponent('{"role":{"boss":true}}')}`);
    expect(bad.status).toBe(400);
    expect(msg(bad)).toBe("Invalid role filter: 'boss'");
  });

  it('inspects by reference; a missing one is 404', async () => {
    s = await serve(fakeBackend().backend);
    expect(((await call(s.socket, 'GET', '/nodes/w1')).json as { ID: string }).ID).toBe('n2bbbbbbbbbbbbbbbbbbbbbbb');
    const nf = await call(s.socket, 'GET', '/nodes/zz');
    expect(nf.status).toBe(404);
    expect(msg(nf)).toBe('node zz not found');
  });

  it('update takes the whole NodeSpec: labels added and removed, role and availability, against the version', async () => {
    const f = fakeBackend();
    f.nodes[1]!.spec.labels = { old: '1', keep: 'k' };
    s = await serve(f.backend);
    const r = await call(
      s.socket,
      'POST',
      '/v1.41/nodes/n2bbbbbbbbbbbbbbbbbbbbbbb/update?version=7',
      JSON.stringify({ Name: 'w1', Labels: { keep: 'k', a: 'b' }, Role: 'manager', Availability: 'drain' }),
    );
    expect(r.status).toBe(200);
    expect(r.text).toBe('');
    expect(f.calls.find((c) => c.method === 'updateNode')!.req).toEqual({
      ref: 'n2bbbbbbbbbbbbbbbbbbbbbbb',
      version: 7,
      availability: 'drain',
      role: 'manager',
      labelAdd: { a: 'b' },
      labelRm: ['old'],
    });
    const stale = await call(s.socket, 'POST', '/nodes/w1/update?version=3', JSON.stringify({ Role: 'worker', Availability: 'active' }));
    expect(stale.status).toBe(500);
    const noVersion = await call(s.socket, 'POST', '/nodes/w1/update', JSON.stringify({ Role: 'worker', Availability: 'active' }));
    expect(noVersion.status).toBe(400);
    expect(msg(noVersion)).toMatch(/^invalid node version ''/);
    const rename = await call(
      s.socket,
      'POST',
      '/nodes/w1/update?version=7',
      JSON.stringify({ Name: 'other', Role: 'worker', Availability: 'active' }),
    );
    expect(rename.status).toBe(400);
    expect(msg(rename)).toMatch(/^Name: renaming a node is not supported/);
    const role = await call(s.socket, 'POST', '/nodes/w1/update?version=7', JSON.stringify({ Role: 'boss', Availability: 'active' }));
    expect(msg(role)).toBe('invalid Role: "boss"');
  });

  it('remove passes force', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    expect((await call(s.socket, 'DELETE', '/nodes/w1?force=1')).status).toBe(200);
    expect((await call(s.socket, 'DELETE', '/v1.41/nodes/w1')).status).toBe(200);
    expect(f.calls.filter((c) => c.method === 'removeNode').map((c) => c.req)).toEqual([
      { ref: 'w1', force: true },
      { ref: 'w1', force: false },
    ]);
  });
});

describe('/swarm', () => {
  it('inspect shows the cluster and its join tokens from the leader, and a root rotation under way', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const sw = (await call(s.socket, 'GET', '/swarm')).json as Record<string, unknown>;
    expect(sw).toMatchObject({
      ID: 'c1',
      Version: { Index: 11 },
      JoinTokens: { Worker: 'SWMTKN-1-w', Manager: 'SWMTKN-1-m' },
      RootRotationInProgress: false,
    });
    f.info.caRotation = {
      rootCaCertPem: 'PEM',
      rotationInProgress: true,
      newRootCaCertPem: 'NEW',
      nodesDone: 1,
      nodesTotal: 2,
      pendingNodes: ['w1'],
      startedAtMs: 1,
      stale: false,
    };
    expect(((await call(s.socket, 'GET', '/swarm')).json as { RootRotationInProgress: boolean }).RootRotationInProgress).toBe(true);
    expect((sw.Spec as { Raft: unknown }).Raft).toEqual({
      SnapshotInterval: 10000,
      KeepOldSnapshots: 0,
      LogEntriesForSlowFollowers: 0,
      HeartbeatTick: 1,
      ElectionTick: 10,
    });
  });

  it('update: the spec read back unchanged with a token rotation only rotates; a change maps to our settings', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const spec = ((await call(s.socket, 'GET', '/swarm')).json as { Spec: Record<string, unknown> }).Spec;
    const r = await call(
      s.socket,
      'POST',
      '/swarm/update?rotateManagerToken=false&rotateManagerUnlockKey=false&rotateWorkerToken=true&version=11',
      JSON.stringify(spec),
    );
    expect(r.status).toBe(200);
    expect(f.calls.filter((c) => c.method === 'rotateJoinToken').map((c) => c.req)).toEqual([{ role: 'worker' }]);
    expect(f.calls.some((c) => c.method === 'updateCluster')).toBe(false);
    const changed = { ...spec, Orchestration: { TaskHistoryRetentionLimit: 3 }, Dispatcher: { HeartbeatPeriod: 2e9 } };
    expect((await call(s.socket, 'POST', '/swarm/update?version=11', JSON.stringify(changed))).status).toBe(200);
    const u = f.calls.find((c) => c.method === 'updateCluster')!.req as {
      version: number;
      set: string[];
      settings: { taskHistoryLimit: number; dispatcherHeartbeatMs: number };
    };
    expect(u.version).toBe(11);
    expect(u.set).toEqual(['task-history-limit', 'dispatcher-heartbeat']);
    expect(u.settings.taskHistoryLimit).toBe(3);
    expect(u.settings.dispatcherHeartbeatMs).toBe(2000);
  });

  it('update refuses a stale version, a bad flag, and fields tsswarm cannot honour, naming them', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const stale = await call(s.socket, 'POST', '/swarm/update?version=3', '{}');
    expect(stale.status).toBe(500);
    expect(msg(stale)).toMatch(/^update out of sequence/);
    const flag = await call(s.socket, 'POST', '/swarm/update?version=11&rotateWorkerToken=maybe', '{}');
    expect(flag.status).toBe(400);
    expect(msg(flag)).toBe('invalid value for rotateWorkerToken: maybe');
    for (const [body, field] of [
      [{ Labels: { a: 'b' } }, 'Labels'],
      [{ Raft: { ElectionTick: 20 } }, 'Raft.ElectionTick'],
      [{ CAConfig: { ExternalCAs: [{ Protocol: 'cfssl', URL: 'https://ca' }] } }, 'CAConfig.ExternalCAs'],
      [{ CAConfig: { SigningCACert: 'PEM' } }, 'CAConfig.SigningCACert'],
      [{ TaskDefaults: { LogDriver: { Name: 'syslog' } } }, 'TaskDefaults'],
      [{ Name: 'other' }, 'Name'],
      [{ Dispatcher: { HeartbeatPeriod: 1000 } }, 'Dispatcher.HeartbeatPeriod'],
    ] as const) {
      const r = await call(s.socket, 'POST', '/swarm/update?version=11', JSON.stringify(body));
      expect(r.status, field).toBe(400);
      expect(msg(r).startsWith(field), `${field}: ${msg(r)}`).toBe(true);
    }
    expect(f.calls.some((c) => c.method === 'updateCluster' || c.method === 'rotateJoinToken')).toBe(false);
  });

  it('init answers the node id as a JSON string and honours AutoLockManagers; unsupported fields are 400', async () => {
    const f = fakeBackend(baseInfo({ state: 'inactive', isManager: false, role: '' }));
    s = await serve(f.backend);
    const cliBody = {
      ListenAddr: '0.0.0.0:2377',
      AdvertiseAddr: '10.0.0.1',
      DataPathAddr: '',
      DataPathPort: 0,
      ForceNewCluster: false,
      Spec: {
        Labels: null,
        Orchestration: {},
        Raft: { ElectionTick: 0, HeartbeatTick: 0 },
        Dispatcher: {},
        CAConfig: {},
        TaskDefaults: {},
        EncryptionConfig: { AutoLockManagers: false },
      },
      AutoLockManagers: true,
      Availability: '',
      DefaultAddrPool: null,
      SubnetSize: 0,
    };
    const r = await call(s.socket, 'POST', '/v1.41/swarm/init', JSON.stringify(cliBody));
    expect(r.status).toBe(200);
    expect(r.text).toBe('"n9"\n');
    expect(f.calls.find((c) => c.method === 'init')!.req).toMatchObject({
      advertiseAddr: '10.0.0.1',
      autolock: true,
      forceNewCluster: false,
      certExpiryMs: 0,
    });
    for (const [over, field] of [
      [{ DefaultAddrPool: ['192.168.0.0/16'] }, 'DefaultAddrPool'],
      [{ SubnetSize: 26 }, 'SubnetSize'],
      [{ DataPathPort: 7777 }, 'DataPathPort'],
      [{ DataPathAddr: '10.1.1.1' }, 'DataPathAddr'],
    ] as const) {
      const bad = await call(s.socket, 'POST', '/swarm/init', JSON.stringify({ ...cliBody, ...over }));
      expect(bad.status, field).toBe(400);
      expect(msg(bad).startsWith(field)).toBe(true);
    }
    // What Docker's defaults already are is no change.
    expect((await call(s.socket, 'POST', '/swarm/init', JSON.stringify({ ...cliBody, DataPathPort: 4789, SubnetSize: 24 }))).status).toBe(
      200,
    );
  });

  it('init and join on a node already in a swarm are dockerd 503', async () => {
    s = await serve(fakeBackend().backend);
    const r = await call(s.socket, 'POST', '/swarm/join', JSON.stringify({ RemoteAddrs: ['10.0.0.1:4242'], JoinToken: 'SWMTKN-1-x' }));
    expect(r.status).toBe(503);
    expect(msg(r)).toMatch(/^This node is already part of a swarm/);
  });

  it('join takes the first manager that answers; leave passes force', async () => {
    const f = fakeBackend(baseInfo({ state: 'inactive', isManager: false, role: '' }));
    s = await serve(f.backend);
    const r = await call(
      s.socket,
      'POST',
      '/swarm/join',
      JSON.stringify({
        ListenAddr: '0.0.0.0:2377',
        AdvertiseAddr: '',
        DataPathAddr: '',
        RemoteAddrs: ['10.0.0.1:4242'],
        JoinToken: 'SWMTKN-1-x',
        Availability: '',
      }),
    );
    expect(r.status).toBe(200);
    expect(f.calls.find((c) => c.method === 'join')!.req).toMatchObject({ token: 'SWMTKN-1-x', remoteAddr: '10.0.0.1:4242' });
    const notIn = await call(s.socket, 'POST', '/swarm/leave');
    expect(notIn.status).toBe(503);
    expect(msg(notIn)).toBe('This node is not part of a swarm');
    f.info.state = 'active';
    expect((await call(s.socket, 'POST', '/swarm/leave?force=1')).status).toBe(200);
    expect(f.calls.find((c) => c.method === 'leave')!.req).toBe(true);
  });

  it('unlock key: empty without autolock, the key with it; unlock: 409 when not locked, 401 on a wrong key', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    expect((await call(s.socket, 'GET', '/swarm/unlockkey')).json).toEqual({ UnlockKey: '' });
    f.info.clusterSettings!.autolock = true;
    expect((await call(s.socket, 'GET', '/swarm/unlockkey')).json).toEqual({ UnlockKey: 'SWMKEY-1-x' });
    const notLocked = await call(s.socket, 'POST', '/swarm/unlock', JSON.stringify({ UnlockKey: 'SWMKEY-1-good' }));
    expect(notLocked.status).toBe(409);
    expect(msg(notLocked)).toBe('swarm is not locked');
    f.info.state = 'locked';
    const wrong = await call(s.socket, 'POST', '/swarm/unlock', JSON.stringify({ UnlockKey: 'SWMKEY-1-bad' }));
    expect(wrong.status).toBe(401);
    expect(msg(wrong)).toBe('swarm could not be unlocked: invalid key provided');
    expect((await call(s.socket, 'POST', '/swarm/unlock', JSON.stringify({ UnlockKey: 'SWMKEY-1-good' }))).status).toBe(200);
  });
});
