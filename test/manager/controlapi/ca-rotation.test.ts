// The manager's root CA rotation through the Control API of one real
// in-process manager: start, progress as nodes' certificates move to the new
// root, a second --rotate restarting it, the end (the new root alone, new
// join tokens that the old ones' CA pin cannot pass), and what sessions and
// GetRootCA hand out meanwhile. Renewals are written as issueCertificate
// writes them (the certificate's root digest on the node); the issuing path
// itself is tested in authz.test.ts and end to end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleDigest, type CAError, caDigest, checkCAPin, joinCertificates, roleForToken, splitCertificates } from '../../../ca/index.js';
import { CaApi } from '../../../manager/controlapi/ca.js';
import type { Manager } from '../../../manager/manager.js';
import { silentLogger } from '../../../lib/log.js';
import type { ControlHandlers } from '../../../proto/gen/control.js';
import { Meta, Node, NodeAvailability, NodeDescription, NodeRole, NodeSpec, NodeState } from '../../../proto/gen/objects.js';
import { VersionConflictError } from '../../../manager/store/index.js';
import { until } from '../../lib/wait.js';
import { type LoneManager, startLoneManager } from '../lone-manager.js';

let lone: LoneManager;
let m: Manager;
let api: ControlHandlers;

beforeAll(async () => {
  lone = await startLoneManager('tssm1', 'tssrotationcluster0000000');
  m = lone.manager;
  api = m.controlHandlers();
  await m.store.update((tx) => {
    for (const id of ['tssw1', 'tssw2'])
      tx.nodes.create(
        Node.create({
          meta: Meta.create({ id, createdAt: Date.now(), updatedAt: Date.now() }),
          spec: NodeSpec.create({ name: id, role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE }),
          role: NodeRole.WORKER,
          status: { state: NodeState.DOWN, addr: '127.0.0.1', message: '' },
          description: NodeDescription.create({ hostname: id }),
          certificate: { serial: '1', expiryMs: Date.now() + 3_600_000, role: NodeRole.WORKER, rootDigest: caDigest(lone.ca.certPem) },
        }),
      );
  });
}, 30_000);

afterAll(() => lone?.close());

/** What issueCertificate records when it hands `id` a certificate from the root `rootPem`. */
async function renewedFrom(id: string, rootPem: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const n = m.store.view((tx) => tx.nodes.get(id))!;
    try {
      await m.store.update((tx) =>
        tx.nodes.update(Node.create({ ...n, certificate: { ...n.certificate!, serial: `${attempt}f`, rootDigest: caDigest(rootPem) } })),
      );
      return;
    } catch (e) {
      if (!(e instanceof VersionConflictError) || attempt >= 5) throw e;
    }
  }
}

const ended = (): Promise<unknown> =>
  until('the rotation to end', () => !m.cluster()!.spec.rootRotation, { timeoutMs: 8_000, everyMs: 20 });

async function refusal(f: () => unknown): Promise<CAError> {
  try {
    await f();
  } catch (e) {
    return e as CAError;
  }
  throw new Error('expected a refusal');
}

describe('root CA rotation', () => {
  it('runs from start to end, restarts on a second --rotate, and ends with new join tokens', async () => {
    const oldRoot = lone.ca.certPem;
    const before = await api.getRootCAStatus({});
    expect(before).toMatchObject({ rootCaCertPem: oldRoot, rotationInProgress: false, newRootCaCertPem: '' });
    const tokens0 = m.clusterApi.joinTokens();
    expect(m.caDigests()).toEqual({ trustDigest: bundleDigest(oldRoot), signingRootDigest: caDigest(oldRoot) });

    // Start: both roots trusted, the new one signs; nothing has moved yet.
    const s1 = await api.rotateRootCA({});
    expect(s1).toMatchObject({ rootCaCertPem: oldRoot, rotationInProgress: true, nodesDone: 0, nodesTotal: 3 });
    expect(s1.pendingNodes.sort()).toEqual(['tssm1', 'tssw1', 'tssw2']);
    const r1 = s1.newRootCaCertPem;
    expect(splitCertificates(m.rootCA(true))).toEqual(splitCertificates(joinCertificates(oldRoot, r1)));
    expect(m.rootCA(false)).toBe(oldRoot);
    expect(m.caDigests()).toEqual({ trustDigest: bundleDigest(joinCertificates(oldRoot, r1)), signingRootDigest: caDigest(r1) });
    expect(m.clusterApi.info({}).caRotation).toMatchObject({ rotationInProgress: true, nodesDone: 0, nodesTotal: 3 });
    // The tokens do not change before the end: a node may still join with them meanwhile.
    expect(m.clusterApi.joinTokens()).toMatchObject({ worker: tokens0.worker, manager: tokens0.manager });

    await renewedFrom('tssm1', r1);
    expect(await api.getRootCAStatus({})).toMatchObject({ nodesDone: 1, nodesTotal: 3 });

    // A second --rotate: a fresh root, cross-signed by the old root; nodes on the first must move again, and stay trusted meanwhile.
    const s2 = await api.rotateRootCA({});
    const r2 = s2.newRootCaCertPem;
    expect(r2).not.toBe(r1);
    expect(s2).toMatchObject({ rootCaCertPem: oldRoot, rotationInProgress: true, nodesDone: 0, nodesTotal: 3 });
    expect(splitCertificates(m.rootCA(true))).toEqual(splitCertificates(joinCertificates(oldRoot, r1, r2)));
    expect(m.caDigests()!.signingRootDigest).toBe(caDigest(r2));

    // Progress: two of three; the check does not end it.
    await renewedFrom('tssm1', r2);
    await renewedFrom('tssw1', r2);
    await m.caApi.reconcile();
    expect(await api.getRootCAStatus({})).toMatchObject({ rotationInProgress: true, nodesDone: 2, nodesTotal: 3, pendingNodes: ['tssw2'] });

    // The last node: the leader ends it.
    await renewedFrom('tssw2', r2);
    await m.caApi.reconcile();
    // The manager's own periodic check may be the one that ends it: wait for whichever does.
    await ended();
    const done = await api.getRootCAStatus({});
    expect(done).toMatchObject({ rootCaCertPem: r2, rotationInProgress: false, newRootCaCertPem: '', nodesDone: 3, nodesTotal: 3 });
    expect(m.cluster()!.spec.rootRotation).toBeFalsy();
    expect(m.cluster()!.spec.rootCaKeyPem).not.toBe(lone.ca.keyPem);
    expect(m.rootCA(true)).toBe(joinCertificates(r2));
    expect(m.caDigests()).toEqual({ trustDigest: bundleDigest(r2), signingRootDigest: caDigest(r2) });
    expect(m.clusterApi.info({}).caRotation).toBeNull();

    // New tokens pin the new root; an old one fails a joining node's CA check, and the managers' token check.
    const tokens1 = m.clusterApi.joinTokens();
    expect(tokens1.worker).not.toBe(tokens0.worker);
    expect(tokens1.manager).not.toBe(tokens0.manager);
    expect(checkCAPin(tokens1.worker, m.rootCA(false)).caDigest).toBe(caDigest(r2));
    expect((await refusal(() => checkCAPin(tokens0.worker, m.rootCA(false)))).reason).toBe('CA_MISMATCH');
    expect((await refusal(() => checkCAPin(tokens0.manager, m.rootCA(false)))).reason).toBe('CA_MISMATCH');
    expect((await refusal(() => roleForToken(tokens0.worker, m.cluster()!.spec))).reason).toBe('INVALID_TOKEN');
    expect(roleForToken(tokens1.worker, m.cluster()!.spec)).toBe('worker');
  });

  it('a rotation with a node that never renews stays in progress; removing the node lets it end', async () => {
    const s = await api.rotateRootCA({});
    for (const id of ['tssm1', 'tssw1']) await renewedFrom(id, s.newRootCaCertPem);
    await m.caApi.reconcile();
    expect(await api.getRootCAStatus({})).toMatchObject({ rotationInProgress: true, pendingNodes: ['tssw2'] });
    await m.nodes.removeNode('tssw2', true);
    await m.caApi.reconcile();
    await ended();
    expect(await api.getRootCAStatus({})).toMatchObject({ rotationInProgress: false, rootCaCertPem: s.newRootCaCertPem, nodesTotal: 2 });
  });

  it("a node the store records on the new root, whose session still presents the old root's certificate (a lost answer), holds the rotation", async () => {
    const sessions = new Map<string, string>();
    const ca = new CaApi(
      {
        store: m.store,
        consensus: m.consensus,
        dispatcher: m.dispatcher,
        log: silentLogger(),
        raftId: '',
        requireLeader: () => m.requireLeader(),
        readView: (fn) => m.readView(fn),
        cluster: () => m.cluster(),
        managerAddrs: () => m.managerAddrs(),
      },
      () => sessions,
    );
    const oldRoot = m.cluster()!.spec.rootCaCertPem;
    // tssw3 never renews while the cases below are looked at: the manager's own periodic check cannot end the rotation meanwhile.
    await m.store.update((tx) =>
      tx.nodes.create(
        Node.create({
          meta: Meta.create({ id: 'tssw3', createdAt: Date.now(), updatedAt: Date.now() }),
          spec: NodeSpec.create({ name: 'tssw3', role: NodeRole.WORKER, availability: NodeAvailability.ACTIVE }),
          role: NodeRole.WORKER,
          status: { state: NodeState.DOWN, addr: '127.0.0.1', message: '' },
          certificate: { serial: '3', expiryMs: Date.now() + 3_600_000, role: NodeRole.WORKER, rootDigest: caDigest(oldRoot) },
        }),
      ),
    );
    const s = await ca.rotate();
    sessions.set('tssw1', caDigest(oldRoot));
    for (const id of ['tssm1', 'tssw1']) await renewedFrom(id, s.newRootCaCertPem);
    expect(ca.status()).toMatchObject({ rotationInProgress: true, pendingNodes: ['tssw1', 'tssw3'] });
    expect(m.caApi.status()).toMatchObject({ rotationInProgress: true, pendingNodes: ['tssw3'] });
    // It renews again and reconnects with the new certificate; tssw3 is removed: the rotation ends.
    sessions.set('tssw1', caDigest(s.newRootCaCertPem));
    expect(ca.status()).toMatchObject({ rotationInProgress: true, pendingNodes: ['tssw3'] });
    await m.nodes.removeNode('tssw3', true);
    await ca.reconcile();
    expect(ca.status()).toMatchObject({ rotationInProgress: false, rootCaCertPem: s.newRootCaCertPem });
  });
});
