// The overlay: what one host programs in the kernel for overlay networks.
// Per-network namespaces with a bridge and a VXLAN device (vxlan.ts),
// containers joined by veth (veth.ts), static FDB/neighbor entries for remote
// endpoints (fdb.ts), an egress bridge with NAT (egress.ts), all driven by
// OverlayPlane (plane.ts). See README.md.
export { OverlayPlane } from './plane.js';
export { planNetwork, parseLinks, type NetworkDevices, type NetworkActual, type NetworkProgram } from './vxlan.js';
export { planAttach, planDetach, type EndpointDevices, type EndpointActual, type EndpointProgram } from './veth.js';
export { desiredPeerState, planPeers, parseFdb, parseNeigh, FLOOD_MAC } from './fdb.js';
export { egressNet, egressRuleset, planEgressBridge, allocateEgressIp, egressInUse } from './egress.js';
export {
  EGRESS_BRIDGE,
  EGRESS_TABLE,
  VXLAN_OVERHEAD,
  VXLAN_PORT,
  bridgeName,
  vxlanName,
  overlayNetnsName,
  overlayVethName,
  egressVethName,
  macOf,
} from './names.js';
export type * from './types.js';
