// Joining a cluster with a token, as `tsswarm join` does it and as hollow
// nodes (node/hollow.ts) do it: the CA is fetched without trust and checked
// against the digest the token pins, then a certificate for the node's key is
// asked of the leader (a follower names it; at most three hops).
import * as grpc from '@grpc/grpc-js';
import { checkCAPin, createCSR } from '../ca/index.js';
import { TsswarmError } from '../lib/errors.js';
import { callUnary, grpcChannelOptions } from '../lib/grpc.js';
import { untrustedChannelCredentials } from '../lib/tls.js';
import { type IssueNodeCertificateResponse, NodeCAService } from '../proto/gen/control.js';

/** How long one call of a join or a renewal may take (ms). */
export const CALL_MS = 5000;

/** One unary call on a short-lived client, closed afterwards (joining, renewal: rare calls to varying managers). */
export async function callOnce<Res>(
  def: grpc.ServiceDefinition,
  name: string,
  addr: string,
  creds: grpc.ChannelCredentials,
  method: string,
  req: object,
  what: string,
): Promise<Res> {
  const Ctor = grpc.makeGenericClientConstructor(def, name);
  const c = new Ctor(addr, creds, grpcChannelOptions());
  try {
    return await callUnary<object, Res>(c, method, req, CALL_MS, what);
  } finally {
    c.close();
  }
}

export interface JoinOptions {
  /** The manager to ask first, host:port. */
  remote: string;
  token: string;
  /** The node's private key (PEM); the certificate issued is for it. */
  keyPem: string;
  hostname: string;
  /** The node's advertised address. */
  addr: string;
  /** Called with the cluster's CA once it matched the token: the credentials below must trust it from then on. */
  trust: (caPem: string) => void;
  /** Credentials for calling the manager at `addr` (which must present a manager certificate of the CA trusted). */
  credentials: (addr: string) => grpc.ChannelCredentials;
}

/** Joins: the certificate the leader issued, and the manager that issued it. */
export async function requestJoin(o: JoinOptions): Promise<{ issued: IssueNodeCertificateResponse; remote: string }> {
  let remote = o.remote;
  // 1. The CA, fetched without trust and checked against the digest pinned in the token.
  const caPem = (
    await callOnce<{ certPem: string }>(
      NodeCAService,
      'NodeCA',
      remote,
      untrustedChannelCredentials(),
      'getRootCA',
      {},
      `reaching the manager at ${remote}`,
    )
  ).certPem;
  checkCAPin(o.token, caPem);
  o.trust(caPem);
  // 2. A certificate for our key, from the leader (a follower points us to it).
  const csr = createCSR(o.keyPem, { nodeId: 'pending' });
  for (let hop = 0; hop < 3; hop++) {
    try {
      const issued = await callOnce<IssueNodeCertificateResponse>(
        NodeCAService,
        'NodeCA',
        remote,
        o.credentials(remote),
        'issueNodeCertificate',
        { token: o.token, csrPem: csr, hostname: o.hostname, addr: o.addr, nodeId: '' },
        `joining through ${remote}`,
      );
      return { issued, remote };
    } catch (e) {
      const hint = /leader is at (\S+?)(?:[;,\s]|$)/.exec((e as Error).message)?.[1];
      if (!hint) throw e;
      remote = hint;
    }
  }
  throw new TsswarmError('UNAVAILABLE', 'could not reach the leader to join; retry');
}
