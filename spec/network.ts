// A network spec as the CLI and the Control API check it, without a store:
// name, driver, options, subnet, gateway, VNI and ingress, with the fixes in
// the messages. The allocator fills in what is left out, later, on the leader.
import { TsswarmError } from '../lib/errors.js';
import { type Cidr, contains, formatIp, parseCidr, parseIp, sizeOf } from '../lib/ipnet.js';
import { NetworkSpec } from '../proto/gen/objects.js';
import { PREDEFINED_NETWORK_NAMES } from './predefined-networks.js';
import { checkNetworkSpecBounds } from './validate.js';

/** The name the leader gives the routing mesh's network. */
export const INGRESS_NAME = 'ingress';

/** Swarm's VXLAN ids start at 4096 (clear of 802.1Q VLAN ids); 24 bits. */
export const VNI_MIN = 4096;
export const VNI_MAX = 2 ** 24 - 1;

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** The drivers `network create -d` accepts. */
export const NETWORK_DRIVERS = ['overlay'] as const;

/** Why `--opt encrypted` is refused on this kernel. */
export const ENCRYPTION_UNAVAILABLE =
  'encrypted overlays are not available yet: this kernel has neither IPsec ESP nor WireGuard (CONFIG_INET_ESP and CONFIG_WIREGUARD are not set), and encryption comes in a later release; create the network without --opt encrypted';

function bad(field: string, message: string): TsswarmError {
  return new TsswarmError('INVALID_ARGUMENT', `${field} ${message}`);
}

const isSet = <T>(v: T | null | undefined): v is T => v !== null && v !== undefined;

/** A deep, plain copy with every field at its proto3 default. */
export function plainNetworkSpec(spec: NetworkSpec): NetworkSpec {
  return NetworkSpec.toObject(spec) as unknown as NetworkSpec;
}

/**
 * Checks a network spec on its own (no store): name, driver (default
 * overlay), options, subnet (IPv4, /8 to /29, host bits zero), gateway
 * (a host address of the subnet, only with a subnet), VNI, ingress. Throws
 * INVALID_ARGUMENT naming the field and the fix; returns a normalized copy.
 */
export function validateNetworkSpec(input: NetworkSpec | null | undefined): NetworkSpec {
  if (!isSet(input)) throw bad('spec', 'is required: send the network spec');
  const spec = plainNetworkSpec(input);
  checkNetworkSpecBounds(spec);
  if (!spec.name) throw bad('spec.name', 'is required: give the network a name (tsswarm network create NAME)');
  if (spec.name.length > 63) throw bad('spec.name', `"${spec.name}" is longer than 63 characters: choose a shorter name`);
  if (!NAME_RE.test(spec.name))
    throw bad(
      'spec.name',
      `"${spec.name}" is not valid: a name starts with a letter or digit and holds only letters, digits, "_", "." and "-"`,
    );
  if (spec.name.toLowerCase() === INGRESS_NAME && !spec.ingress)
    throw bad(
      'spec.name',
      `"${spec.name}" is kept for the routing mesh's network: add --ingress to create that one, or choose another name`,
    );
  if ((PREDEFINED_NETWORK_NAMES as readonly string[]).includes(spec.name.toLowerCase()))
    throw bad(
      'spec.name',
      `"${spec.name}" is a pre-defined network name (none, host and bridge name each node's own networks, as in Docker): choose another name`,
    );
  for (const k of Object.keys(spec.labels)) if (!k) throw bad('spec.labels', 'has an empty key: write KEY=VALUE');

  if (!spec.driver) spec.driver = 'overlay';
  if (!(NETWORK_DRIVERS as readonly string[]).includes(spec.driver))
    throw bad('spec.driver', `"${spec.driver}" is not supported: cluster networks are overlays (-d overlay)`);

  for (const k of Object.keys(spec.driverOpts)) {
    if (k === 'encrypted') throw bad('spec.driverOpts.encrypted', `(--opt encrypted): ${ENCRYPTION_UNAVAILABLE}`);
    throw bad(`spec.driverOpts.${k}`, `(--opt ${k}): unknown option: overlay networks take no driver options yet`);
  }

  let subnet: Cidr | null = null;
  if (spec.subnet) {
    subnet = parseCidr('spec.subnet (--subnet)', spec.subnet, { minBits: 8, maxBits: 29 });
  }
  if (spec.gateway) {
    if (!subnet)
      throw bad('spec.gateway (--gateway)', `needs a subnet: give --subnet too (the gateway ${spec.gateway} must lie inside it)`);
    const gw = parseIp('spec.gateway (--gateway)', spec.gateway);
    const last = subnet.base + sizeOf(subnet.bits) - 1;
    if (!contains(subnet, gw))
      throw bad(
        'spec.gateway (--gateway)',
        `${spec.gateway} is not inside the subnet ${spec.subnet}: give an address of the subnet, e.g. ${formatIp(subnet.base + 1)}`,
      );
    if (gw === subnet.base || gw === last)
      throw bad(
        'spec.gateway (--gateway)',
        `${spec.gateway} is the ${gw === subnet.base ? 'network' : 'broadcast'} address of ${spec.subnet}: give a host address, e.g. ${formatIp(subnet.base + 1)}`,
      );
    spec.gateway = formatIp(gw);
  }
  if (spec.vni && !(Number.isInteger(spec.vni) && spec.vni >= 1 && spec.vni <= VNI_MAX))
    throw bad('spec.vni', `must be from 1 to ${VNI_MAX} (got ${spec.vni})`);
  if (spec.ingress && spec.attachable)
    throw bad('spec.attachable (--attachable)', 'cannot be set on the ingress network: it carries the routing mesh only');
  return spec;
}
