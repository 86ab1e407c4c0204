// `/swarm`: inspect, init, join, leave, update (settings, token and unlock key
// rotation), the unlock key and unlock, as dockerd serves them, on the
// daemon's own verbs and its Control handlers.
import { TsswarmError, UsageError } from '../../lib/errors.js';
import { initFromDocker, joinFromDocker, settingsFromDockerSpec, toDockerSwarm } from '../../spec/docker/swarm.js';
import { DockerError, NO_SWARM, SWARM_EXISTS, swarmLocked } from './errors.js';
import { empty, type EngineRequest, get, json, post, queryBool, queryStrictBool, queryVersion, type Route } from './route.js';
import { clusterFacts } from './system.js';

function notInactive(r: EngineRequest): void {
  const s = r.backend.localInfo().state;
  if (s === 'locked') throw swarmLocked();
  if (s !== 'inactive') throw new DockerError(503, SWARM_EXISTS);
}

export const swarmRoutes: Route[] = [
  get('/swarm', 'manager', async (r) => {
    const c = r.backend.control();
    const [info, tokens] = await Promise.all([c.info({}), c.getJoinTokens({})]);
    return json(toDockerSwarm(clusterFacts(r.backend, info), tokens));
  }),

  post('/swarm/init', 'any', async (r) => {
    const b = r.backend;
    const req = initFromDocker(await r.json());
    if (!req.forceNewCluster) notInactive(r);
    const res = await b.init({
      advertiseAddr: req.advertiseAddr,
      listenAddr: req.listenAddr,
      forceNewCluster: req.forceNewCluster,
      certExpiryMs: req.certExpiryMs,
      autolock: req.autolock,
    });
    // What init itself does not take: applied at once, as the cluster's first updates.
    if (req.after.set.length) await b.control().updateCluster({ version: 0, settings: req.after.settings, set: req.after.set });
    if (req.availability && req.availability !== 'active')
      await b.control().updateNode({ ref: res.nodeId, version: 0, availability: req.availability, role: '', labelAdd: {}, labelRm: [] });
    return json(res.nodeId);
  }),

  post('/swarm/join', 'any', async (r) => {
    const req = joinFromDocker(await r.json());
    if (req.availability && req.availability !== 'active')
      throw new UsageError(
        `Availability: joining as ${req.availability} is not supported; join, then run \`docker node update --availability ${req.availability}\` on a manager`,
        { field: 'Availability' },
      );
    notInactive(r);
    let last: unknown;
    for (const remote of req.remoteAddrs) {
      try {
        await r.backend.join({ token: req.token, remoteAddr: remote, advertiseAddr: req.advertiseAddr, listenAddr: req.listenAddr });
        return empty();
      } catch (e) {
        // Another manager may answer where this one did not; any other refusal is final.
        if (!(e instanceof TsswarmError && (e.code === 'UNAVAILABLE' || e.code === 'DEADLINE_EXCEEDED'))) throw e;
        last = e;
      }
    }
    throw last;
  }),

  post('/swarm/leave', 'any', async (r) => {
    if (r.backend.localInfo().state === 'inactive') throw new DockerError(503, NO_SWARM);
    await r.backend.leave(queryBool(r.query, 'force'));
    return empty();
  }),

  post('/swarm/update', 'manager', async (r) => {
    const version = queryVersion(r, 'swarm');
    const rotateWorker = queryStrictBool(r, 'rotateWorkerToken');
    const rotateManager = queryStrictBool(r, 'rotateManagerToken');
    const rotateUnlock = queryStrictBool(r, 'rotateManagerUnlockKey');
    const body = await r.json();
    const c = r.backend.control();
    const info = await c.info({});
    const current = info.clusterSettings!;
    const change = settingsFromDockerSpec(current, body, '');
    if (version !== Number(info.clusterVersion))
      throw new TsswarmError(
        'CONFLICT',
        `update out of sequence: the swarm changed since it was read (version ${version}, now ${info.clusterVersion}); read it again and retry`,
      );
    let autolock = current.autolock;
    if (change.set.length) autolock = (await c.updateCluster({ version, settings: change.settings, set: change.set })).settings!.autolock;
    if (rotateWorker) await c.rotateJoinToken({ role: 'worker' });
    if (rotateManager) await c.rotateJoinToken({ role: 'manager' });
    // Without autolock there is no key to rotate (SwarmKit makes none either).
    if (rotateUnlock && autolock) await c.rotateUnlockKey({});
    return empty();
  }),

  get('/swarm/unlockkey', 'manager', async (r) => {
    const c = r.backend.control();
    const info = await c.info({});
    // dockerd answers an empty key when autolock is off; the docker CLI says so.
    if (!info.clusterSettings?.autolock) return json({ UnlockKey: '' });
    return json({ UnlockKey: (await c.getUnlockKey({})).unlockKey });
  }),

  post('/swarm/unlock', 'any', async (r) => {
    const body = await r.json();
    const key =
      typeof body === 'object' && body !== null && typeof (body as { UnlockKey?: unknown }).UnlockKey === 'string'
        ? (body as { UnlockKey: string }).UnlockKey
        : undefined;
    if (key === undefined) throw new UsageError('UnlockKey is required: {"UnlockKey": "SWMKEY-1-..."}', { field: 'UnlockKey' });
    const state = r.backend.localInfo().state;
    if (state === 'inactive') throw new DockerError(503, NO_SWARM);
    if (state !== 'locked') throw new DockerError(409, 'swarm is not locked');
    try {
      await r.backend.unlock(key);
    } catch (e) {
      if (e instanceof TsswarmError && e.code === 'PERMISSION_DENIED')
        throw new DockerError(401, 'swarm could not be unlocked: invalid key provided');
      throw e;
    }
    return empty();
  }),
];
