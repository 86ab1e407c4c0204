// The sandbox: a tsswarm cluster of N hosts on one machine, each host a network
// namespace on a shared underlay bridge running its own daemon. Used by
// `tsswarm sandbox ...` and the end-to-end tests.
export {
  Sandbox,
  up,
  down,
  ls,
  defaultDaemonCommand,
  tsswarmBin,
  type DaemonCommand,
  type DaemonLaunch,
  type DownReport,
  type ExecOptions,
  type HostStatus,
  type SandboxOptions,
  type UpOptions,
} from './sandbox.js';
export {
  DAEMON_PORT,
  DEFAULT_PREFIX,
  DEFAULT_ROOT,
  DEFAULT_SUBNET,
  findHost,
  layoutHosts,
  type HostRole,
  type SandboxHost,
} from './layout.js';
export type { RunResult } from './kernel.js';
export { SANDBOX_IMAGE, preloadImages } from './images.js';
