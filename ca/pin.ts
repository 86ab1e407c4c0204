// Server pinning: what a node checks of the certificate a manager's address
// presents. Our CA signing it is not enough (workers have certificates from
// the same CA): the certificate must say manager, of this cluster, and name
// a node the managers last listed as a manager (a demoted one's old manager
// certificate still says manager until it expires).
import { TsswarmError } from '../lib/errors.js';
import { derToPem } from './asn1.js';
import { parseNodeCert } from './x509.js';

export interface ManagerPin {
  /** The cluster the server must belong to; '' (a node still joining) checks the role only. */
  clusterId: () => string;
  /** host:port we dialled, for the message; the TLS host name is used when absent. */
  addr?: string;
  /**
   * Node ids of the current managers, as the managers last said (session
   * welcome and heartbeats); empty or absent: not known yet, role and
   * cluster alone decide.
   */
  managerNodeIds?: () => readonly string[];
}

/**
 * Undefined when the DER certificate is a manager's of the pinned cluster;
 * otherwise the error that fails the TLS handshake (and so the call).
 */
export function checkManagerCert(der: Buffer, pin: ManagerPin, host = ''): TsswarmError | undefined {
  const where = pin.addr || host || 'this address';
  let info: ReturnType<typeof parseNodeCert>;
  try {
    info = parseNodeCert(derToPem(der, 'CERTIFICATE'));
  } catch (e) {
    return new TsswarmError(
      'UNAUTHENTICATED',
      `the server at ${where} presented a certificate that is not a tsswarm node certificate (${(e as Error).message}): it is not a manager of this cluster; check the manager address`,
    );
  }
  if (info.role !== 'manager') {
    return new TsswarmError(
      'PERMISSION_DENIED',
      `the server at ${where} presented a worker certificate (node ${info.nodeId}): it is not a manager of this cluster; check the manager address`,
    );
  }
  const want = pin.clusterId();
  if (want && info.clusterId !== want) {
    return new TsswarmError(
      'PERMISSION_DENIED',
      `the server at ${where} presented a manager certificate of cluster ${info.clusterId}, not of this cluster (${want}): it is not a manager of this cluster; check the manager address`,
    );
  }
  const managers = pin.managerNodeIds?.() ?? [];
  if (managers.length > 0 && !managers.includes(info.nodeId)) {
    return new TsswarmError(
      'PERMISSION_DENIED',
      `the server at ${where} presented the manager certificate of node ${info.nodeId}, which is not one of the cluster's managers (${managers.join(', ')}): it was demoted or removed; check the manager address`,
    );
  }
  return undefined;
}
