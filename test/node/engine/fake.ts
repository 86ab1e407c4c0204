// A fake EngineBackend for the engine server's tests: a cluster of a few
// nodes held in memory, Control calls answered from it, every call recorded.
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { TsswarmError } from '../../../lib/errors.js';
import { ENGINE_ROUTES, type EngineBackend, type EngineServer, type Route, serveEngine } from '../../../node/engine/index.js';
import { SwarmEventLog } from '../../../node/engine/events.js';
import type { ControlHandlers, InfoResponse } from '../../../proto/gen/control.js';
import { Node, NodeAvailability, NodeRole, NodeState } from '../../../proto/gen/objects.js';

export function node(id: string, name: string, role: NodeRole, extra: Partial<Node> = {}): Node {
  return Node.create({
    meta: { id, version: 7, createdAt: Date.UTC(2026, 0, 2, 3, 4, 5), updatedAt: Date.UTC(2026, 0, 2, 3, 4, 6) },
    spec: { name, role, availability: NodeAvailability.ACTIVE, labels: {} },
    role,
    status: { state: NodeState.READY, message: '', addr: '10.0.0.1:4242' },
    description: {
      hostname: name,
      platform: { os: 'linux', architecture: 'x86_64' },
      resources: { nanoCpus: 2e9, memoryBytes: 1 << 30, pids: 0, generic: [] },
      engineVersion: '',
      engineLabels: {},
    },
    ...(role === NodeRole.MANAGER
      ? { managerStatus: { raftId: 'r1', addr: '10.0.0.1:4242', leader: true, reachability: 'reachable' } }
      : {}),
    ...extra,
  });
}

export interface Fake {
  backend: EngineBackend;
  calls: { method: string; req: unknown }[];
  info: InfoResponse;
  nodes: Node[];
  /** What GET /events streams: publish to it. */
  events: SwarmEventLog;
}

export function baseInfo(over: Partial<InfoResponse> = {}): InfoResponse {
  return {
    state: 'active',
    nodeId: 'n1aaaaaaaaaaaaaaaaaaaaaaa',
    nodeName: 'm1',
    role: 'manager',
    clusterId: 'c1',
    nodeAddr: '10.0.0.1:4242',
    isManager: true,
    managers: [{ nodeId: 'n1aaaaaaaaaaaaaaaaaaaaaaa', raftId: 'r1', addr: '10.0.0.1:4242', leader: true, reachable: true, voter: true }],
    leaderNodeId: 'n1aaaaaaaaaaaaaaaaaaaaaaa',
    leaderAddr: '10.0.0.1:4242',
    raftTerm: 2,
    raftCommit: 10,
    raftApplied: 10,
    raftState: 'leader',
    nodes: 2,
    error: '',
    version: '0.1.0',
    stale: false,
    certExpiryMs: 0,
    clusterSettings: {
      taskHistoryLimit: 5,
      dispatcherHeartbeatMs: 5000,
      certExpiryMs: 90 * 24 * 3_600_000,
      snapshotInterval: 10_000,
      autolock: false,
    },
    clusterVersion: 11,
    ...over,
  };
}

export function fakeBackend(info: InfoResponse = baseInfo()): Fake {
  const calls: Fake['calls'] = [];
  const events = new SwarmEventLog();
  const nodes = [node('n1aaaaaaaaaaaaaaaaaaaaaaa', 'm1', NodeRole.MANAGER), node('n2bbbbbbbbbbbbbbbbbbbbbbb', 'w1', NodeRole.WORKER)];
  const find = (ref: string): Node => {
    const n =
      nodes.find((x) => x.meta.id === ref) ?? nodes.find((x) => x.spec.name === ref) ?? nodes.filter((x) => x.meta.id.startsWith(ref))[0];
    if (!n) throw new TsswarmError('NOT_FOUND', `node ${ref} not found`);
    return n;
  };
  const rec = <T>(method: string, req: unknown, v: T): Promise<T> => {
    calls.push({ method, req });
    return Promise.resolve(v);
  };
  const control = {
    listNodes: (req: unknown) => rec('listNodes', req, { nodes, stale: false }),
    getNode: (req: { ref: string }) => rec('getNode', req, { node: find(req.ref), stale: false }),
    updateNode: (req: { ref: string; version: number }) => {
      calls.push({ method: 'updateNode', req });
      if (req.version !== find(req.ref).meta.version) return Promise.reject(new TsswarmError('CONFLICT', 'node changed since it was read'));
      return Promise.resolve({ node: find(req.ref) });
    },
    removeNode: (req: unknown) => rec('removeNode', req, {}),
    getJoinTokens: (req: unknown) => rec('getJoinTokens', req, { worker: 'SWMTKN-1-w', manager: 'SWMTKN-1-m', managerAddrs: [] }),
    rotateJoinToken: (req: unknown) => rec('rotateJoinToken', req, { worker: 'SWMTKN-1-w2', manager: 'SWMTKN-1-m', managerAddrs: [] }),
    updateCluster: (req: { settings: unknown }) => rec('updateCluster', req, { settings: req.settings, version: 12, unlockKey: '' }),
    getUnlockKey: (req: unknown) => rec('getUnlockKey', req, { unlockKey: 'SWMKEY-1-x' }),
    rotateUnlockKey: (req: unknown) => rec('rotateUnlockKey', req, { unlockKey: 'SWMKEY-1-y' }),
    info: (req: unknown) => rec('info', req, info),
  } as unknown as ControlHandlers;
  const backend: EngineBackend = {
    localInfo: () => info,
    info: async () => info,
    control: () => {
      if (!info.isManager) throw new TsswarmError('PERMISSION_DENIED', 'not a manager');
      return control;
    },
    init: (req) => rec('init', req, { nodeId: 'n9', clusterId: 'c9', workerToken: '', managerToken: '', addr: '', unlockKey: '' }),
    join: (req) => rec('join', req, { nodeId: 'n9', role: 'worker', clusterId: 'c9' }),
    leave: async (force) => {
      calls.push({ method: 'leave', req: force });
    },
    unlock: async (key) => {
      calls.push({ method: 'unlock', req: key });
      if (key !== 'SWMKEY-1-good') throw new TsswarmError('PERMISSION_DENIED', 'wrong key');
    },
    host: () => ({
      id: 'engine-id',
      name: 'm1',
      version: '0.1.0',
      ncpu: 2,
      memTotal: 1 << 30,
      architecture: 'x86_64',
      goArch: 'amd64',
      kernelVersion: '6.1.0',
      operatingSystem: 'Debian GNU/Linux 12 (bookworm)',
      runtimeVersion: 'node v20',
      rootDir: '/var/lib/tsswarm',
      images: 1,
    }),
    tlsInfo: () => ({ TrustRoot: 'PEM', CertIssuerSubject: 'c3ViamVjdA==', CertIssuerPublicKey: 'a2V5' }),
    clusterTimes: () => ({ createdAt: Date.UTC(2026, 0, 1), updatedAt: Date.UTC(2026, 0, 2) }),
    managerAddrs: () => ['10.0.0.1:4242'],
    swarmEvents: () => events,
    images: () => [],
    containers: async () => [],
    containerDetail: () => ({}),
    volumes: () => [],
    localNetworks: () => [],
    registryLogin: async (registry, auth) => {
      calls.push({ method: 'registryLogin', req: { registry, auth } });
      if (auth.password !== 'good')
        throw Object.assign(new TsswarmError('UNAUTHENTICATED', 'the credentials given were refused'), { status: 401 });
    },
    distribution: (ref, auth) =>
      rec('distribution', { ref, auth }, { Descriptor: { mediaType: 'm', digest: 'd', size: 1 }, Platforms: [] }),
  };
  return { backend, calls, info, nodes, events };
}

export interface Served {
  server: EngineServer;
  socket: string;
  counted: string[];
  close(): Promise<void>;
}

export async function serve(backend: EngineBackend, opts: { routes?: readonly Route[]; maxBodyBytes?: number } = {}): Promise<Served> {
  const dir = mkdtempSync(join(tmpdir(), 'tss-engine-'));
  const socket = join(dir, 'docker.sock');
  const counted: string[] = [];
  const server = await serveEngine({
    socketPath: socket,
    backend,
    routes: opts.routes ?? ENGINE_ROUTES,
    logger: pino({ level: 'silent' }),
    maxBodyBytes: opts.maxBodyBytes,
    count: (route, method, status) => counted.push(`${method} ${route} ${status}`),
  });
  return {
    server,
    socket,
    counted,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

/** One HTTP request on the unix socket. */
export function call(
  socket: string,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const h: Record<string, string | number> = { ...headers };
    if (body !== undefined) {
      h['Content-Type'] ??= 'application/json';
      h['Content-Length'] = Buffer.byteLength(body);
    }
    const req = request({ socketPath: socket, method, path, headers: h }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}
