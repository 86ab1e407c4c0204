// A ManagerMessage too large for one gRPC message (a node's full assignment
// set, a network with thousands of endpoints) sent as several parts and put
// back together by the agent. Both halves live here so they cannot disagree.
import { type AssignedDependencies, type Assignments, ManagerMessage } from '../proto/gen/control.js';
import { NetworkEndpoint, NetworkService, NetworkState, type NetworkUpdate } from '../proto/gen/netfeed.js';
import { Config, Secret, Task } from '../proto/gen/objects.js';

/**
 * Bytes of one part. 1 MiB: far below the gRPC limit (a part holds at least
 * one item, and an item is at most a store entry, 1.5 MiB), and small enough
 * that a session's send queue holds many parts before it counts as stalled.
 */
export const PART_BYTES = 1 << 20;

// Room for what wraps the items: ManagerMessage and kind tags and lengths, the
// flags and the MessagePart. Items count their own tag and length.
const WRAP_BYTES = 64;
const ITEM_FRAME = 6;

const strBytes = (s: string): number => Buffer.byteLength(s) + ITEM_FRAME;

/** A message and its encoded size, as the session's send queue accounts it. */
export interface SizedMessage {
  message: ManagerMessage;
  bytes: number;
}

/**
 * `m` as it should go on the wire: itself when it fits in `maxBytes`,
 * otherwise its parts in order, each carrying `part` (index, last). Only
 * assignments and networks are split; every other message is small by
 * construction.
 */
export function splitMessage(m: ManagerMessage, maxBytes: number = PART_BYTES): SizedMessage[] {
  const bytes = ManagerMessage.encode(m).length;
  if (bytes <= maxBytes) return [{ message: m, bytes }];
  const budget = Math.max(1, maxBytes - WRAP_BYTES);
  let parts: ManagerMessage[];
  if (m.assignments) parts = splitAssignments(m.assignments, budget).map((assignments) => ManagerMessage.create({ assignments }));
  else if (m.networks) parts = splitNetworks(m.networks, budget).map((networks) => ManagerMessage.create({ networks }));
  else return [{ message: m, bytes }];
  if (parts.length === 1) return [{ message: m, bytes }];
  return parts.map((p, index) => {
    const message = ManagerMessage.create({ ...p, part: { index, last: index === parts.length - 1 } });
    return { message, bytes: ManagerMessage.encode(message).length };
  });
}

/** Greedy packing: a new part starts when the next item would overflow a non-empty one. */
class Packer<P> {
  readonly parts: P[] = [];
  private cur: P | null = null;
  private used = 0;

  constructor(
    private readonly budget: number,
    private readonly fresh: () => P,
  ) {}

  /** The part the next item of `size` bytes goes into. */
  take(size: number): P {
    if (!this.cur || (this.used > 0 && this.used + size > this.budget)) {
      this.cur = this.fresh();
      this.parts.push(this.cur);
      this.used = 0;
    }
    this.used += size;
    return this.cur;
  }

  /** Whether `size` more bytes fit in the current part. */
  fits(size: number): boolean {
    return this.cur !== null && this.used + size <= this.budget;
  }
}

const noDeps = (): AssignedDependencies => ({ secrets: [], configs: [], removedSecretIds: [], removedConfigIds: [] });

function splitAssignments(a: Assignments, budget: number): Assignments[] {
  const p = new Packer<Assignments>(budget, () => ({ full: a.full, tasks: [], removedTaskIds: [] }));
  // Dependencies first: a part's tasks never come before the secrets they use (the agent applies
  // only the whole message, but the order costs nothing).
  // `size` counts the item's own frame; the dependencies message around the items fits in WRAP_BYTES.
  const deps = (size: number): AssignedDependencies => {
    const part = p.take(size);
    if (!part.dependencies) part.dependencies = noDeps();
    return part.dependencies;
  };
  const d = a.dependencies;
  for (const x of d?.secrets ?? []) deps(Secret.encode(x).length + ITEM_FRAME).secrets.push(x);
  for (const x of d?.configs ?? []) deps(Config.encode(x).length + ITEM_FRAME).configs.push(x);
  for (const id of d?.removedSecretIds ?? []) deps(strBytes(id)).removedSecretIds.push(id);
  for (const id of d?.removedConfigIds ?? []) deps(strBytes(id)).removedConfigIds.push(id);
  for (const t of a.tasks) p.take(Task.encode(t).length + ITEM_FRAME).tasks.push(t);
  for (const id of a.removedTaskIds) p.take(strBytes(id)).removedTaskIds.push(id);
  return p.parts;
}

function splitNetworks(u: NetworkUpdate, budget: number): NetworkUpdate[] {
  const p = new Packer<NetworkUpdate>(budget, () => ({ reset: u.reset, networks: [], removedNetworks: [] }));
  for (const ns of u.networks) {
    const whole = NetworkState.encode(ns).length + ITEM_FRAME;
    if (whole <= budget) {
      p.take(whole).networks.push(ns);
      continue;
    }
    // One network larger than a part: its lists go in pieces, each under the network's header.
    const header = (): NetworkState => ({
      network: ns.network,
      full: ns.full,
      endpoints: [],
      removedEndpoints: [],
      services: [],
      removedServices: [],
    });
    const headerBytes = NetworkState.encode(header()).length + ITEM_FRAME;
    let piece: NetworkState | null = null;
    let owner: NetworkUpdate | null = null;
    const into = (size: number): NetworkState => {
      if (piece && owner && p.fits(size)) {
        p.take(size);
        return piece;
      }
      owner = p.take(headerBytes + size);
      piece = header();
      owner.networks.push(piece);
      return piece;
    };
    into(0);
    for (const e of ns.endpoints) into(NetworkEndpoint.encode(e).length + ITEM_FRAME).endpoints.push(e);
    for (const id of ns.removedEndpoints) into(strBytes(id)).removedEndpoints.push(id);
    for (const s of ns.services) into(NetworkService.encode(s).length + ITEM_FRAME).services.push(s);
    for (const id of ns.removedServices) into(strBytes(id)).removedServices.push(id);
  }
  for (const id of u.removedNetworks) p.take(strBytes(id)).removedNetworks.push(id);
  return p.parts;
}

// ------------------------------------------------------------------ the agent's half

/**
 * Collects the parts of one message, in order on one session stream, and
 * hands back the whole once the last arrives; a message that is not a part
 * passes through. One per session: a new stream starts empty.
 */
export class PartAssembler {
  private parts: ManagerMessage[] = [];

  /** The complete message `m` finishes (m itself when it is not a part), or null while parts are missing. */
  push(m: ManagerMessage): ManagerMessage | null {
    if (!m.part) return m;
    if (m.part.index === 0) this.parts = [];
    else if (m.part.index !== this.parts.length || this.parts.length === 0) {
      // A part out of order cannot complete anything: wait for the next index 0.
      this.parts = [];
      return null;
    }
    this.parts.push(m);
    if (!m.part.last) return null;
    const all = this.parts;
    this.parts = [];
    return mergeParts(all);
  }

  /** Parts held for an incomplete message. */
  get pending(): number {
    return this.parts.length;
  }
}

/** The message the parts were cut from. */
export function mergeParts(parts: ManagerMessage[]): ManagerMessage {
  const first = parts[0]!;
  if (first.assignments) {
    const a: Assignments = { full: first.assignments.full, tasks: [], removedTaskIds: [] };
    for (const p of parts) {
      a.tasks.push(...(p.assignments?.tasks ?? []));
      a.removedTaskIds.push(...(p.assignments?.removedTaskIds ?? []));
      const d = p.assignments?.dependencies;
      if (!d) continue;
      const into = (a.dependencies ??= noDeps());
      into.secrets.push(...d.secrets);
      into.configs.push(...d.configs);
      into.removedSecretIds.push(...d.removedSecretIds);
      into.removedConfigIds.push(...d.removedConfigIds);
    }
    return ManagerMessage.create({ assignments: a });
  }
  if (first.networks) {
    const u: NetworkUpdate = { reset: first.networks.reset, networks: [], removedNetworks: [] };
    const byId = new Map<string, NetworkState>();
    for (const p of parts) {
      for (const ns of p.networks?.networks ?? []) {
        const id = ns.network?.meta?.id ?? '';
        const had = byId.get(id);
        if (!had) {
          const copy: NetworkState = {
            ...ns,
            endpoints: [...ns.endpoints],
            removedEndpoints: [...ns.removedEndpoints],
            services: [...ns.services],
            removedServices: [...ns.removedServices],
          };
          byId.set(id, copy);
          u.networks.push(copy);
          continue;
        }
        had.endpoints.push(...ns.endpoints);
        had.removedEndpoints.push(...ns.removedEndpoints);
        had.services.push(...ns.services);
        had.removedServices.push(...ns.removedServices);
      }
      u.removedNetworks.push(...(p.networks?.removedNetworks ?? []));
    }
    return ManagerMessage.create({ networks: u });
  }
  return first;
}
