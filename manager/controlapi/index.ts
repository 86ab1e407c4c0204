// The Control API's service, task and network handlers (manager/manager.ts wires them
// to gRPC) and the store-bound checks they make; the pure spec checks they share
// with the CLI live in spec/.
export { ServiceApi, type ServiceApiOptions, sameTaskSpec } from './service.js';
export { findNode, findService, findTask, type RefKind, resolveRef, taskName } from './refs.js';
export { randomServiceName } from './names.js';
export { findNetwork, NetworkApi, type NetworkApiOptions, networkUsers, resolveServiceNetworking } from './network.js';
