// The Control API's InspectDataplane, the leader's side of `network inspect
// --dataplane` (the agent's is agent/dataplane-report.ts): asks the agents of
// the nodes that hold a network (or one named node) for their data-plane
// report over their sessions (the dispatcher's relay, as logs and exec go), in
// parallel, each with a deadline, and hands the reports back as they came.
import { TsswarmError } from '../../lib/errors.js';
import type { InspectDataplaneRequest, InspectDataplaneResponse, NodeDataplane, RelayData } from '../../proto/gen/control.js';
import type { Node } from '../../proto/gen/objects.js';
import type { Dispatcher } from '../dispatcher/dispatcher.js';
import type { MemoryStore } from '../store/index.js';
import { networkUsers } from './network.js';
import { findNetwork, findNode } from './refs.js';

/** How long one agent has to answer (the forwarding from a follower allows 5 s in all). */
export const DATAPLANE_TIMEOUT_MS = 4000;

const hostnameOf = (n: Node): string => n.description?.hostname || n.spec?.name || n.meta.id.slice(0, 12);

/** One agent's answer: its report JSON, or the error it gave, or why none came. */
export function askNode(
  dispatcher: Pick<Dispatcher, 'relay'>,
  nodeId: string,
  networkId: string,
  timeoutMs = DATAPLANE_TIMEOUT_MS,
): Promise<{ json: string; error: string; connected: boolean }> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (r: { json: string; error: string; connected: boolean }): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      resolve(r);
    };
    const cancel = dispatcher.relay(nodeId, { taskId: '', logs: undefined, exec: undefined, dataplane: { networkId } }, (d: RelayData) => {
      if (d.dataplaneJson) finish({ json: d.dataplaneJson, error: '', connected: true });
      else if (d.end)
        finish({ json: '', error: d.error || 'the agent ended without a report (an agent older than this manager?)', connected: true });
    });
    if (!cancel)
      return finish({ json: '', error: 'the node is not connected to the managers: its data plane cannot be read now', connected: false });
    timer = setTimeout(() => {
      cancel();
      finish({ json: '', error: `the node's agent did not answer within ${timeoutMs / 1000} s`, connected: true });
    }, timeoutMs);
  });
}

/**
 * The reports of a network's nodes. Without `node`: every node the managers
 * placed a live task of the network on, and any other connected node whose
 * agent says it holds the network (the ingress network, a node that missed a
 * removal). With `node`: that node, held or not.
 */
export async function inspectDataplane(
  store: MemoryStore,
  dispatcher: Pick<Dispatcher, 'relay'>,
  req: InspectDataplaneRequest,
  timeoutMs = DATAPLANE_TIMEOUT_MS,
): Promise<InspectDataplaneResponse> {
  const { network, nodes, holders } = store.view((tx) => {
    const network = findNetwork(tx, req.ref);
    const nodes = req.node ? [findNode(tx, req.node)] : tx.nodes.list();
    const holders = new Set(
      networkUsers(tx, network)
        .tasks.map((t) => t.nodeId)
        .filter(Boolean),
    );
    return { network, nodes, holders };
  });
  const networkId = network.meta.id;
  const answers = await Promise.all(nodes.map(async (n) => ({ n, a: await askNode(dispatcher, n.meta.id, networkId, timeoutMs) })));
  const out: NodeDataplane[] = [];
  for (const { n, a } of answers) {
    const id = n.meta.id;
    const wanted = !!req.node || holders.has(id);
    if (!wanted) {
      // Another node: listed only when its agent holds the network.
      if (!a.json) continue;
      try {
        if (!(JSON.parse(a.json) as { held?: boolean }).held) continue;
      } catch {
        continue;
      }
    }
    out.push({ nodeId: id, hostname: hostnameOf(n), reportJson: a.json, error: a.error });
  }
  if (out.length === 0 && !req.node) {
    throw new TsswarmError(
      'FAILED_PRECONDITION',
      `no node holds network ${network.spec?.name ?? networkId} now: it has no running task (attach a service with \`tsswarm service create --network ${network.spec?.name ?? networkId} ...\`)`,
    );
  }
  out.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  return { networkId, networkName: network.spec?.name ?? '', nodes: out };
}
