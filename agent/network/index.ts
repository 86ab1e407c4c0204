// The agent's overlay data plane: per-network namespaces with a bridge and a
// VXLAN device, containers joined by veth, static FDB/neighbor entries for
// remote endpoints, and an egress bridge with NAT. See README.md.
export { OverlayPlane } from './plane.js';
export { planNetwork, parseLinks, type NetworkDevices, type NetworkActual, type NetworkProgram } from './device.js';
export { planAttach, planDetach, type EndpointDevices, type EndpointActual, type EndpointProgram } from './endpoint.js';
export { desiredPeerState, planPeers, parseFdb, parseNeigh, FLOOD_MAC } from './peers.js';
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
