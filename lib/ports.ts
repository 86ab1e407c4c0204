// Port protocols as people write them (tcp, udp, sctp) and as the protos hold
// them: one mapping for the CLI, the managers and the agents.
import { PortProtocol } from '../proto/gen/objects.js';

const byName: Record<string, PortProtocol> = { tcp: PortProtocol.TCP, udp: PortProtocol.UDP, sctp: PortProtocol.SCTP };

/** `tcp`, `udp` or `sctp`; an unknown value as its number. */
export function protocolName(p: PortProtocol): string {
  return PortProtocol[p]?.toLowerCase() ?? String(p);
}

/** The protocol a name stands for, in any case; undefined for anything else. */
export function parseProtocol(name: string): PortProtocol | undefined {
  return byName[name.toLowerCase()];
}
