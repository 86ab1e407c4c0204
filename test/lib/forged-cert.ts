// Certificates no tsswarm CA issued, for tests that check they are refused: a
// self-signed leaf with whatever subject (an "operator" the cluster never
// made), built with ca/asn1.ts and signed with node:crypto.
import { createPublicKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import * as asn1 from '../../ca/asn1.js';

const OID = {
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

export interface ForgedSubject {
  /** Cluster id (O). */
  o: string;
  /** Role (OU), e.g. swarm-operator. */
  ou: string;
  cn: string;
}

/** A self-signed ECDSA P-256 client certificate (EKU clientAuth) with this subject, valid from `now` − 1 h for `days`. */
export function selfSignedClientCert(subject: ForgedSubject, now = Date.now(), days = 30): { certPem: string; keyPem: string } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const name = asn1.sequence(
    ...[
      [OID.organization, subject.o],
      [OID.organizationalUnit, subject.ou],
      [OID.commonName, subject.cn],
    ].map(([oid, v]) => asn1.setOf(asn1.sequence(asn1.oid(oid!), asn1.utf8String(v!)))),
  );
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const sec = (t: number): Date => new Date(Math.floor(t / 1000) * 1000);
  const alg = asn1.sequence(asn1.oid(OID.ecdsaWithSHA256));
  const tbs = asn1.sequence(
    asn1.explicit(0, asn1.integer(2)),
    asn1.integer(serial),
    alg,
    name,
    asn1.sequence(asn1.time(sec(now - 3_600_000)), asn1.time(sec(now + days * 86_400_000))),
    name,
    createPublicKey(privateKey).export({ type: 'spki', format: 'der' }),
    asn1.explicit(
      3,
      asn1.sequence(
        asn1.sequence(asn1.oid(OID.basicConstraints), asn1.boolean(true), asn1.octetString(asn1.sequence())),
        asn1.sequence(asn1.oid(OID.extKeyUsage), asn1.octetString(asn1.sequence(asn1.oid(OID.clientAuth)))),
      ),
    ),
  );
  const der = asn1.sequence(tbs, alg, asn1.bitString(sign('sha256', tbs, privateKey)));
  return { certPem: asn1.derToPem(der, 'CERTIFICATE'), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
