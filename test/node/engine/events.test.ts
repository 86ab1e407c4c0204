// GET /events on a fake backend (node/engine/events.ts): the stream's
// headers before any event, filters, the replay for since/until, a stream
// that ends by itself at `until`, dockerd's 400s, a worker's empty stream, a
// client that stops reading cut off, and the feed from a real store
// (localStore) that survives a snapshot install by ending open streams.
import { type IncomingMessage, request } from 'node:http';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { eventsRoute, followStore, SwarmEventLog } from '../../../node/engine/events.js';
import { localStore } from '../../../manager/store/index.js';
import { ContainerSpec, Meta, Node, NodeAvailability, NodeRole, Service, ServiceSpec, TaskSpec } from '../../../proto/gen/objects.js';
import type { DockerEvent } from '../../../spec/docker/events.js';
import { until } from '../../lib/wait.js';
import { call, fakeBackend, serve, type Served } from './fake.js';

let s: Served | undefined;
const open: Array<{ close(): void }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) o.close();
  await s?.close();
  s = undefined;
});

const SEC = 1_000_000_000n;
const nowSec = (): number => Math.floor(Date.now() / 1000);

function event(type: DockerEvent['Type'], action: DockerEvent['Action'], id: string, name: string, atSec = nowSec()): DockerEvent {
  return {
    Type: type,
    Action: action,
    Actor: { ID: id, Attributes: { name } },
    scope: 'swarm',
    time: atSec,
    timeNano: BigInt(atSec) * SEC,
  };
}

interface Stream {
  res: IncomingMessage;
  lines: () => Array<Record<string, unknown>>;
  /** Resolves 'end' when the server ended the stream cleanly, 'cut' when the connection was cut. */
  done: Promise<'end' | 'cut'>;
  close(): void;
}

/** Opens GET `path` and resolves once the headers are in, collecting the body's JSON lines. */
function stream(socket: string, path: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method: 'GET', path }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      const done = new Promise<'end' | 'cut'>((r) => {
        res.on('end', () => r('end'));
        res.on('aborted', () => r('cut'));
        res.on('error', () => r('cut'));
      });
      const handle: Stream = {
        res,
        lines: () =>
          text
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>),
        done,
        close: () => req.destroy(),
      };
      open.push(handle);
      resolve(handle);
    });
    req.on('error', reject);
    req.end();
  });
}

const q = (o: Record<string, string | object>): string =>
  `?${new URLSearchParams(Object.entries(o).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])).toString()}`;

describe('GET /events', () => {
  it('sends its headers at once, then each event the filters keep as one JSON line, until the client leaves', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const st = await stream(s.socket, `/v1.41/events${q({ filters: { type: { service: true } } })}`);
    // The headers arrived before any event: the client knows it is subscribed.
    expect(st.res.statusCode).toBe(200);
    expect(st.res.headers['content-type']).toBe('application/json');
    expect(st.res.headers['api-version']).toBe('1.41');
    expect(f.events.subscribers).toBe(1);
    f.events.publish(event('node', 'update', 'n1', 'm1'));
    f.events.publish(event('service', 'create', 's1', 'web'));
    f.events.publish(event('service', 'remove', 's1', 'web'));
    await until('two service events', async () => st.lines().length === 2);
    expect(st.lines()).toEqual([
      expect.objectContaining({ Type: 'service', Action: 'create', Actor: { ID: 's1', Attributes: { name: 'web' } }, scope: 'swarm' }),
      expect.objectContaining({ Type: 'service', Action: 'remove' }),
    ]);
    st.close();
    await until('the subscription closed with the connection', async () => f.events.subscribers === 0);
  });

  it('replays the ring for since/until; an until in the past ends the stream after the replay', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const t = nowSec() - 100;
    f.events.publish(event('service', 'create', 's0', 'old', t - 50));
    f.events.publish(event('service', 'create', 's1', 'web', t));
    f.events.publish(event('node', 'update', 'n1', 'w1', t + 10));
    f.events.publish(event('service', 'update', 's1', 'web', t + 20));
    f.events.publish(event('service', 'remove', 's1', 'web', t + 30));
    const st = await stream(s.socket, `/events${q({ since: String(t), until: `${t + 20}.5`, filters: { type: { service: true } } })}`);
    expect(await st.done).toBe('end');
    expect(st.lines().map((l) => `${(l.Actor as { ID: string }).ID} ${l.Action}`)).toEqual(['s1 create', 's1 update']);
    expect(f.events.subscribers).toBe(0);
    // No since nor until: nothing replayed.
    const live = await stream(s.socket, '/events');
    f.events.publish(event('secret', 'create', 'x1', 'pw'));
    await until('the live event', async () => live.lines().length === 1);
    expect(live.lines()[0]).toMatchObject({ Type: 'secret', Actor: { ID: 'x1' } });
  });

  it('an until in the future: the replay, live events, then the stream ends by itself', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    f.events.publish(event('config', 'create', 'c1', 'site'));
    const untilSec = (Date.now() + 400) / 1000;
    const st = await stream(s.socket, `/events${q({ since: String(nowSec() - 5), until: untilSec.toFixed(3) })}`);
    f.events.publish(event('config', 'remove', 'c1', 'site'));
    expect(await st.done).toBe('end');
    expect(st.lines().map((l) => l.Action)).toEqual(['create', 'remove']);
    expect(f.events.subscribers).toBe(0);
  });

  it("answers dockerd's 400s: a bad since or until, a window that ends before it begins, an unknown filter key", async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const bad = await call(s.socket, 'GET', '/v1.41/events?since=10m');
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toBe('application/json');
    expect((bad.json as { message: string }).message).toMatch(/^invalid value for 'since': invalid timestamp "10m"/);
    const window = await call(s.socket, 'GET', '/v1.41/events?since=20&until=10');
    expect(window.status).toBe(400);
    expect((window.json as { message: string }).message).toBe('`since` time (20) cannot be after `until` time (10)');
    const key = await call(s.socket, 'GET', `/v1.41/events${q({ filters: { typ: { service: true } } })}`);
    expect(key.status).toBe(400);
    expect((key.json as { message: string }).message).toBe("invalid filter 'typ'");
    expect(f.events.subscribers).toBe(0);
  });

  it('a worker (and a node outside a swarm) streams without a 503: it has no swarm events', async () => {
    const f = fakeBackend();
    f.info.isManager = false;
    f.info.role = 'worker';
    s = await serve(f.backend);
    const st = await stream(s.socket, `/events${q({ since: String(nowSec() - 5), until: String(nowSec() - 1) })}`);
    expect(st.res.statusCode).toBe(200);
    expect(await st.done).toBe('end');
    expect(st.lines()).toEqual([]);
    f.info.state = 'inactive';
    expect((await call(s.socket, 'GET', '/events?until=1')).status).toBe(200);
  });

  it('a client that stops reading is cut off once it is too far behind, and its subscription released', async () => {
    const f = fakeBackend();
    s = await serve(f.backend, { routes: [eventsRoute({ maxBehindBytes: 64 * 1024 })] });
    const st = await stream(s.socket, '/events');
    st.res.pause();
    const big = 'x'.repeat(4096);
    // Enough to fill the kernel's socket buffers, the socket's own buffer and the 64 KiB allowed beyond it.
    for (let i = 0; i < 2000 && f.events.subscribers > 0; i++) f.events.publish(event('service', 'update', `s${i}`, big));
    expect(f.events.subscribers).toBe(0);
    st.res.resume();
    expect(await st.done).toBe('cut');
    await until('the request counted as failed', async () => s!.counted.includes('GET /events 500'));
  });

  it('a stream the source ends (the store was replaced) ends cleanly', async () => {
    const f = fakeBackend();
    s = await serve(f.backend);
    const st = await stream(s.socket, '/events');
    f.events.publish(event('network', 'create', 'w1', 'backend'));
    await until('the event', async () => st.lines().length === 1);
    f.events.endAll();
    expect(await st.done).toBe('end');
  });
});

describe('SwarmEventLog', () => {
  it('keeps the last `capacity` events for replay', () => {
    const log = new SwarmEventLog(3);
    for (let i = 1; i <= 5; i++) log.publish(event('service', 'update', `s${i}`, 'web', 100 + i));
    expect(log.size).toBe(3);
    const sub = log.subscribe({ since: 0n }, () => true, { push: () => undefined, end: () => undefined });
    expect(sub.buffered.map((e) => e.Actor.ID)).toEqual(['s3', 's4', 's5']);
    sub.close();
    for (let i = 6; i <= 20; i++) log.publish(event('service', 'update', `s${i}`, 'web', 100 + i));
    expect(log.size).toBe(3);
    const later = log.subscribe({ until: 1000n * 1_000_000_000n }, () => true, { push: () => undefined, end: () => undefined });
    expect(later.buffered.map((e) => e.Actor.ID)).toEqual(['s18', 's19', 's20']);
    later.close();
    expect(log.subscribers).toBe(0);
  });
});

describe('followStore: the events of a real store', () => {
  const svc = (replicas: number, image = 'busybox:1'): Service =>
    Service.create({
      meta: Meta.create({ id: 'svc1aaaaaaaaaaaaaaaaaaaaa' }),
      spec: ServiceSpec.create({
        name: 'web',
        replicated: { replicas },
        task: TaskSpec.create({ container: ContainerSpec.create({ image }) }),
      }),
    });

  it('turns creates, updates and removes into events; a snapshot install ends open streams and the feed goes on', async () => {
    const store = localStore();
    const log = new SwarmEventLog();
    const feed = followStore(store, log, pino({ level: 'silent' }));
    const seen: DockerEvent[] = [];
    let ended = 0;
    const subscribe = () => log.subscribe({}, () => true, { push: (e) => seen.push(e), end: () => ended++ });
    subscribe();

    await store.update((tx) => tx.services.create(svc(1)));
    const created = store.view((tx) => tx.services.get('svc1aaaaaaaaaaaaaaaaaaaaa'))!;
    await store.update((tx) => tx.services.update(Service.create({ ...created, spec: svc(3, 'busybox:2').spec })));
    await store.update((tx) =>
      tx.nodes.create(
        Node.create({
          meta: Meta.create({ id: 'nod1aaaaaaaaaaaaaaaaaaaaa' }),
          spec: { name: 'w1', role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE, labels: {} },
        }),
      ),
    );
    const n = store.view((tx) => tx.nodes.get('nod1aaaaaaaaaaaaaaaaaaaaa'))!;
    await store.update((tx) => tx.nodes.update(Node.create({ ...n, spec: { ...n.spec, availability: NodeAvailability.DRAIN } })));
    await store.update((tx) => tx.services.delete(store.view((t) => t.services.get('svc1aaaaaaaaaaaaaaaaaaaaa'))!));
    await until('five events', async () => seen.length === 5);
    expect(seen.map((e) => `${e.Type} ${e.Action}`)).toEqual([
      'service create',
      'service update',
      'node create',
      'node update',
      'service remove',
    ]);
    expect(seen[1]!.Actor.Attributes).toEqual({
      name: 'web',
      'image.old': 'busybox:1',
      'image.new': 'busybox:2',
      'replicas.old': '1',
      'replicas.new': '3',
    });
    expect(seen[3]!.Actor.Attributes).toMatchObject({ name: 'w1', 'availability.old': 'active', 'availability.new': 'drain' });
    expect(seen[0]!.timeNano).toBe(BigInt(created.meta.createdAt) * 1_000_000n);

    // A snapshot replaces the state (a follower far behind): the open stream ends, nothing is thrown.
    store.restore(store.snapshot(), store.appliedIndex);
    await until('the open stream ended', async () => ended === 1);
    expect(log.subscribers).toBe(0);
    // The feed watches again: a new stream sees the next change.
    subscribe();
    await until('the feed watching again', async () => {
      await store.update((tx) => tx.services.create(svc(1)));
      const ok = seen.length > 5;
      await store.update((tx) => tx.services.delete(store.view((t) => t.services.get('svc1aaaaaaaaaaaaaaaaaaaaa'))!));
      return ok;
    });
    expect(seen[5]).toMatchObject({ Type: 'service', Action: 'create' });

    // Closed (no longer a manager): open streams end, and changes are no longer events.
    feed.close();
    expect(ended).toBe(2);
    const before = log.size;
    await store.update((tx) => tx.services.create(svc(1)));
    await new Promise((r) => setImmediate(r));
    expect(log.size).toBe(before);
  });
});
