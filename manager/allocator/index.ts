// The allocator (on the leader): networks' VNIs, subnets and gateways, services'
// VIPs and published ports, tasks' addresses, then NEW → PENDING. The pure
// parts (ipnet, ipam, state) are exported for the Control API's checks and tests.
export {
  ALLOCATE_CHUNK,
  ALLOCATION_FAILED,
  Allocator,
  type AllocatorOptions,
  ensureIngressNetwork,
  findNetworkIn,
  INGRESS_NAME,
  ingressNetwork,
} from './allocator.js';
export { AllocatorState, type AllocatorStateOptions, networkOwner, publishesIngress, serviceOwner, taskDead, taskOwner } from './state.js';
export {
  AddressPool,
  AllocationError,
  DEFAULT_POOL,
  DEFAULT_SUBNET_BITS,
  DYNAMIC_PORT_MAX,
  DYNAMIC_PORT_MIN,
  IntPool,
  portPool,
  SubnetPool,
  VNI_MAX,
  VNI_MIN,
  vniPool,
} from './ipam.js';
export { addrOf, type Cidr, contains, formatCidr, formatIp, overlaps, parseCidr, parseIp, sizeOf, tryParseIp } from '../../lib/ipnet.js';
