// What the CLI and the managers share about a spec: Swarm's defaults, the
// checks of service, network, secret and config specs (pure, no store), constraint and
// preference parsing, and the size limits. Imports only lib/ and proto/gen.
export {
  checkNetworkSpecBounds,
  checkNodeLabels,
  checkServiceSpecBounds,
  DEFAULT_RESTART,
  DEFAULT_STOP_GRACE_MS,
  DEFAULT_UPDATE,
  isJob,
  MAX_SERVICE_SPEC_BYTES,
  MAX_TASK_SPEC_BYTES,
  MIN_MEMORY_LIMIT,
  plainSpec,
  SPEC_LIMITS,
  validateServiceSpec,
} from './validate.js';
export {
  checkFileReferences,
  DEFAULT_FILE_MODE,
  SECRETS_DIR,
  secretPath,
} from './validate.js';
export {
  checkObjectData,
  checkObjectName,
  type FileObjectKind,
  isObjectName,
  MAX_FILE_OBJECT_BYTES,
  OBJECT_NAME_HINT,
  validateConfigSpec,
  validateSecretSpec,
} from './secret.js';
export { type Constraint, type ConstraintOp, parseConstraint, parseConstraints, parseSpreadPreference } from './constraint.js';
export {
  ENCRYPTION_UNAVAILABLE,
  INGRESS_NAME,
  NETWORK_DRIVERS,
  plainNetworkSpec,
  validateNetworkSpec,
  VNI_MAX,
  VNI_MIN,
} from './network.js';
export type {
  ContainerVips,
  DataplaneReport,
  DataplaneSection,
  Difference,
  DifferenceKind,
  FdbRow,
  NeighRow,
  VipRow,
} from './dataplane-report.js';
export { type JobCounts, jobCounts, jobIteration } from './jobs.js';
