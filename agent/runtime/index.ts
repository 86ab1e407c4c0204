// The agent's container runtime: images (agent/runtime/images.ts), containers
// under runc + conmon (runtime.ts), their OCI config (spec.ts), health checks.
export { DEFAULT_INIT, Runtime, type RuntimeOptions } from './runtime.js';
export { ImageStore, canonicalRef, normalizeRef, parsePullRef, repoDigestOf, type ResolvedImage } from './images.js';
export { checkLogin, type DistributionInspect, type RegistryAuth, resolveDescriptor } from './registry.js';
export { readTar, writeTar, type TarEntry, type TarType } from './tar.js';
export { unpackLayer } from './layer.js';
export {
  HEALTH_DEFAULTS,
  HealthMonitor,
  HealthState,
  healthCommand,
  mergeHealthcheck,
  type HealthClock,
  type HealthExec,
  type HealthStatus,
} from './health.js';
export { INIT_PATH, ociConfig, processArgs, mergeEnv, resolveUser, TTY_SIZE } from './spec.js';
export type { ContainerConfig, ContainerFile, ContainerState, ExecHandle, LogLine, MountConfig } from './types.js';
