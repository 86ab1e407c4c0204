// Service VIP and routing-mesh load balancing for one network namespace:
// pure planners (nft, iptables, ipvs), thin runners, backend detection, and
// the ServiceLoadBalancer the agent drives. README.md has the design.
export * from './types.js';
export {
  desiredFrontends,
  assignSlots,
  frontendKey,
  describeFrontend,
  vipFrontends,
  ingressFrontend,
  targetsOf,
  type Frontend,
  type FrontendChange,
  type Target,
  type DesiredFrontend,
} from './frontends.js';
export {
  planNft,
  planNftChanges,
  parseNftJson,
  nftTeardown,
  nftSkeleton,
  emptyNftState,
  nftTable,
  type NftState,
  type Plan,
  type ChangePlan,
} from './nft.js';
export {
  planIptables,
  planIptablesChanges,
  parseIptablesSave,
  iptTeardown,
  emptyIptState,
  iptChainName,
  iptJumps,
  type IptState,
} from './iptables.js';
export {
  planIpvs,
  planIpvsChanges,
  parseIpvsSave,
  parseMarkTable,
  ipvsTeardown,
  emptyIpvsState,
  markTable,
  MARK_BASE,
  type IpvsState,
  type IpvsPlan,
} from './ipvs.js';
export { detectLbBackends, chooseLbBackend, lbBackendPreference, type LbDetection, type Availability } from './detect.js';
export { NftDriver, IptablesDriver, IpvsDriver, type LbDriver, type DriverPlan, type DriverChangePlan, type Program } from './drivers.js';
export { NftContext, libnftablesAvailable } from './libnftables.js';
export { ServiceLoadBalancer, type LoadBalancerOptions, type LbApplyResult } from './balancer.js';
export { mustRunIn, netnsPath, runIn } from './exec.js';
