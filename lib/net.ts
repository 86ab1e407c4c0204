// Addressing rules the managers and the agents must agree on byte for byte.

/**
 * The MAC of an overlay address: 02:42 (locally administered) then the
 * address's four bytes, 10.0.1.35 → 02:42:0a:00:01:23. The managers put it in
 * the peer table; the agents give it to the container's interface.
 */
export function macOfIp(ip: string): string {
  return ['02', '42', ...ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0'))].join(':');
}
