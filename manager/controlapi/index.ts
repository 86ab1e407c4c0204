// The Control API's service, task, network, secret and config handlers (manager/manager.ts wires them
// to gRPC) and the store-bound checks they make; the pure spec checks they share
// with the CLI live in spec/.
export { ServiceApi, type ServiceApiOptions, sameTaskSpec } from './service.js';
export { findConfig, findNode, findSecret, findService, findTask, type RefKind, resolveRef, taskName } from './refs.js';
export { randomServiceName } from './names.js';
export { findNetwork, NetworkApi, type NetworkApiOptions, networkUsers, resolveServiceNetworking } from './network.js';
export {
  ConfigApi,
  fileObjectUsers,
  redactSecret,
  resolveServiceFileRefs,
  SecretApi,
  type SecretApiOptions,
} from './secret.js';
