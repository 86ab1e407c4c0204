// The data-plane report of `network inspect --dataplane`, as an agent sends
// it (JSON in a relay reply) and the CLI renders it: one node's kernel entries
// for one network against what the managers expect. Types only:
// agent/dataplane-report.ts fills it in, manager/controlapi/dataplane-report.ts
// gathers one per node.

/** An FDB entry of a VXLAN device: `mac` is behind the VTEP `dst` (agent/overlay's FdbEntry). */
export interface FdbRow {
  mac: string;
  dst: string;
}

/** A neighbor entry of a VXLAN device: `ip` is at `mac` (agent/overlay's NeighEntry). */
export interface NeighRow {
  ip: string;
  mac: string;
  permanent: boolean;
}

export type DifferenceKind = 'missing' | 'stale' | 'wrong';
export type DataplaneSection = 'device' | 'fdb' | 'neigh' | 'vip';

/** One entry that is not as it should be. */
export interface Difference {
  section: DataplaneSection;
  /** missing: expected, not in the kernel; stale: in the kernel, not expected; wrong: both, different. */
  kind: DifferenceKind;
  /** What the entry is about: a MAC (fdb), an IP (neigh), a frontend (vip), a device or table. */
  key: string;
  expected?: string;
  actual?: string;
}

/** A VIP frontend with its backends, one per slot (a backend of weight 2 twice), sorted. */
export interface VipRow {
  /** The frontend's stable key (agent/lb frontendKey). */
  key: string;
  /** As people read it: `tcp 10.0.1.2:80`. */
  frontend: string;
  backends: string[];
  /** Something wrong with how the kernel holds it (read-back only): an empty slot, an unreachable map entry. */
  problem?: string;
}

export interface ContainerVips {
  taskId: string;
  netns: string;
  /** The load balancer backend that holds the table (agent/lb's names). */
  backend: 'nft' | 'iptables' | 'ipvs' | '';
  expected: VipRow[];
  actual: VipRow[];
  differences: Difference[];
  /** Why the table could not be read (its namespace gone, a tool missing). */
  error?: string;
}

export interface DataplaneReport {
  nodeId: string;
  networkId: string;
  /** Whether this node holds the network at all (the managers sent it). */
  held: boolean;
  vni: number;
  /** The per-network namespace and its VXLAN device. */
  netns: string;
  device: string;
  /** Namespace or device problems (missing). */
  deviceDifferences: Difference[];
  fdb: { expected: FdbRow[]; actual: FdbRow[]; differences: Difference[] };
  neigh: { expected: NeighRow[]; actual: NeighRow[]; differences: Difference[] };
  containers: ContainerVips[];
  /** Every difference above, counted. 0: in sync. */
  differences: number;
  /** What could not be read or compared. */
  errors: string[];
}
