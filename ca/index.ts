// The cluster's certificate authority and join tokens: the root CA, node keys
// and CSRs, node certificates carrying node id / role / cluster, their
// verification and renewal timing, and Swarm-style join tokens. Pure library
// code: PEM strings, Buffers and plain objects in and out; time and
// randomness are arguments.
export {
  type CertAndKey,
  type CreateRootCAOptions,
  createCSR,
  createRootCA,
  type CrossSignOptions,
  crossSignRootCA,
  DEFAULT_BACKDATE_MS,
  DEFAULT_NODE_CERT_VALIDITY_MS,
  DEFAULT_ROOT_CA_NAME,
  DEFAULT_ROOT_CA_VALIDITY_MS,
  directIssuer,
  generateNodeKey,
  keyMatchesCert,
  type NodeCertInfo,
  type NodeKey,
  type NodeRole,
  normalizeSerial,
  parseCertificateDer,
  parseNodeCert,
  roleOU,
  type SignNodeCSROptions,
  signNodeCSR,
  splitCertificates,
  type VerifyNodeCertOptions,
  verifyNodeCert,
} from './x509.js';
export {
  CA_DIGEST_LENGTH,
  caDigest,
  checkCAPin,
  JOIN_SECRET_LENGTH,
  JOIN_TOKEN_PREFIX,
  type JoinToken,
  makeJoinToken,
  parseJoinToken,
  roleForToken,
} from './tokens.js';
export {
  bundleDigest,
  finishRotation,
  joinCertificates,
  type NodeRoot,
  type RootCAFields,
  type RotationProgress,
  rotationProgress,
  signingCA,
  type StartRotationOptions,
  startRotation,
  trustBundle,
} from './rotation.js';
export { checkManagerCert, type ManagerPin } from './pin.js';
export { earliestRenewal, needsRenewal, type RenewalOptions, renewalDue, renewalDueAt, renewalTime, type Validity } from './renewal.js';
export {
  CLOCK_SKEW_MS,
  type CertRef,
  type CertTimes,
  liveLegacyRevocations,
  REPLACED_RENEWAL_GRACE_MS,
  type Revocation,
  RevocationIndex,
  type RevocationSpec,
  revokeOnDemote,
  revokeOnRemove,
  revokeOnRenewal,
} from './revocation.js';
export {
  BadCAError,
  BadCertificateError,
  BadCSRError,
  CAError,
  type CAErrorReason,
  CAMismatchError,
  CertificateExpiredError,
  CertificateNotYetValidError,
  CertificateRevokedError,
  InvalidJoinTokenError,
  UntrustedCertificateError,
  WrongClusterError,
} from './errors.js';
