// The Control API's service, task and network handlers (manager/manager.ts wires them
// to gRPC) and the spec validation they share with the CLI.
export { ServiceApi, type ServiceApiOptions, sameTaskSpec } from './service.js';
export { checkNodeLabels, DEFAULT_RESTART, DEFAULT_STOP_GRACE_MS, DEFAULT_UPDATE, MAX_SERVICE_SPEC_BYTES, MAX_TASK_SPEC_BYTES, MIN_MEMORY_LIMIT, plainSpec, SPEC_LIMITS, validateServiceSpec } from './validate.js';
export { type Constraint, type ConstraintOp, parseConstraint, parseConstraints, parseSpreadPreference } from './constraints.js';
export { findNode, findService, findTask, type RefKind, resolveRef, taskName } from './refs.js';
export { randomServiceName } from './names.js';
export { ENCRYPTION_UNAVAILABLE, findNetwork, NETWORK_DRIVERS, NetworkApi, type NetworkApiOptions, networkUsers, resolveServiceNetworking, validateNetworkSpec } from './network.js';
