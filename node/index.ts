// The node: the one place where agent/ and manager/ meet (the daemon, its
// state directory and its config file). The CLI's `daemon` command loads this
// barrel lazily; nothing else in cli/ may import node/ (test/arch.test.ts).
export { Daemon, type DaemonOptions, nodeDescription } from './daemon.js';
export { type Certificates, type NodeState, StateDir } from './state.js';
export {
  CONFIG_KEYS,
  DEFAULT_LISTEN_ADDR,
  DEFAULT_STATE_DIR,
  type DaemonConfig,
  type DaemonConfigFile,
  type DaemonFlags,
  dockerSocketPath,
  groupId,
  LB_BACKENDS,
  type LbBackend,
  parseDaemonConfig,
  readDaemonConfig,
  resolveDaemonConfig,
} from './daemon-config.js';
export { runDaemon, type RunDaemonInput } from './run.js';
export { type HollowDelays, type HollowNode, type HollowNodes, type HollowOptions, startHollowNodes } from './hollow.js';
