// How long a node certificate is valid, as the signer takes it: the cluster's
// setting (0: the CA's default) and a backdate that absorbs clock skew between
// the manager that signs and the node that checks.

export function certValidity(validityMs: number): { validityMs?: number; backdateMs?: number } {
  if (!validityMs) return {};
  return { validityMs, backdateMs: Math.min(3_600_000, Math.floor(validityMs / 10)) };
}
