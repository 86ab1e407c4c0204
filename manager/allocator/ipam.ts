// IP address management, pure: the subnets of the cluster's networks (carved
// out of a default pool unless given, never overlapping) and, per subnet, the
// addresses of gateways, service VIPs and tasks. Every address has an owner;
// an address is handed out again only after its owner released it, and
// handing out goes round the subnet (not lowest-first) so that a freed address
// is not reused at once while stale ARP entries may still point at it.
import { TsswarmError } from '../../lib/errors.js';
import { type Cidr, contains, formatCidr, formatIp, overlaps, sizeOf } from '../../lib/ipnet.js';
import { VNI_MAX, VNI_MIN } from '../../spec/network.js';

/** The pool networks get their subnets from when none is given (Swarm's default address pool). */
export const DEFAULT_POOL: Cidr = { base: 10 << 24, bits: 8 };
/** Length of the subnets carved out of the pool. */
export const DEFAULT_SUBNET_BITS = 24;

/** An allocation that cannot be made: the pool is full, or what was asked for is taken. */
export class AllocationError extends TsswarmError {
  constructor(message: string) {
    super('FAILED_PRECONDITION', message);
  }
}

/** The addresses of one subnet, each with its owner (a task id, `vip:SERVICE`, `gateway`). */
export class AddressPool {
  private readonly owners = new Map<number, string>();
  private cursor: number;
  private readonly first: number;
  private readonly last: number;

  constructor(readonly subnet: Cidr) {
    const size = sizeOf(subnet.bits);
    // /31 and /32 have no network or broadcast address to skip.
    this.first = size > 2 ? subnet.base + 1 : subnet.base;
    this.last = size > 2 ? subnet.base + size - 2 : subnet.base + size - 1;
    this.cursor = this.first;
  }

  /** Addresses that can be handed out, gateway included. */
  get capacity(): number {
    return this.last - this.first + 1;
  }

  get used(): number {
    return this.owners.size;
  }

  owner(ip: number): string | undefined {
    return this.owners.get(ip);
  }

  /** Marks `ip` as `owner`'s (again: idempotent); throws if another owner holds it or it is not a host address of the subnet. */
  reserve(ip: number, owner: string): void {
    if (ip < this.first || ip > this.last) {
      throw new AllocationError(
        `${formatIp(ip)} is not a usable address of ${formatCidr(this.subnet)} (from ${formatIp(this.first)} to ${formatIp(this.last)})`,
      );
    }
    const cur = this.owners.get(ip);
    if (cur !== undefined && cur !== owner)
      throw new AllocationError(`${formatIp(ip)} in ${formatCidr(this.subnet)} is already in use (by ${cur})`);
    this.owners.set(ip, owner);
    // Round-robin continues after the newest address, also when the state is rebuilt from the store.
    this.cursor = ip === this.last ? this.first : ip + 1;
  }

  /** The next free address after the last one handed out. */
  allocate(owner: string): number {
    if (this.owners.size >= this.capacity) {
      throw new AllocationError(
        `the subnet ${formatCidr(this.subnet)} has no free address left (${this.capacity} in use): remove tasks or services from the network, or use a network with a larger subnet`,
      );
    }
    let ip = this.cursor;
    while (this.owners.has(ip)) ip = ip === this.last ? this.first : ip + 1;
    this.reserve(ip, owner);
    return ip;
  }

  /** Frees `ip` if `owner` holds it; whether it did. */
  release(ip: number, owner: string): boolean {
    if (this.owners.get(ip) !== owner) return false;
    this.owners.delete(ip);
    return true;
  }
}

/**
 * The subnets of all networks, so that none overlap, and the default pool
 * they are carved from (in /24s) when a network asks for none.
 */
export class SubnetPool {
  /** `base/bits` → { subnet, owner (network id) } */
  private readonly taken = new Map<string, { cidr: Cidr; owner: string }>();
  private cursor: number;

  constructor(
    readonly pool: Cidr = DEFAULT_POOL,
    readonly bits: number = DEFAULT_SUBNET_BITS,
  ) {
    if (bits < pool.bits)
      throw new TsswarmError('INVALID_ARGUMENT', `subnets of /${bits} cannot be carved from the pool ${formatCidr(pool)}`);
    this.cursor = pool.base;
  }

  /** What overlaps `c`, held by someone other than `owner`. */
  private clash(c: Cidr, owner: string): { cidr: Cidr; owner: string } | undefined {
    for (const t of this.taken.values()) if (t.owner !== owner && overlaps(t.cidr, c)) return t;
    return undefined;
  }

  /** Records a given subnet (or one read back from the store) as `owner`'s; throws if it overlaps another network's. */
  reserve(c: Cidr, owner: string): void {
    const k = formatCidr(c);
    const t = this.clash(c, owner);
    if (t)
      throw new AllocationError(
        `the subnet ${k} overlaps ${formatCidr(t.cidr)} of network ${t.owner}: choose a subnet that does not overlap another network's`,
      );
    this.taken.set(k, { cidr: c, owner });
    if (contains(this.pool, c.base) && c.bits === this.bits) this.cursor = c.base + sizeOf(c.bits);
  }

  /**
   * The next free /24 (or the pool's subnet size) of the pool, going round
   * from the last one handed out; none containing an address in `avoid`
   * (the nodes' own addresses, so that no overlay hides the underlay).
   */
  allocate(owner: string, avoid: readonly number[] = []): Cidr {
    const step = sizeOf(this.bits);
    const end = this.pool.base + sizeOf(this.pool.bits);
    const count = sizeOf(this.pool.bits) / step;
    let base = this.cursor >= end ? this.pool.base : this.cursor;
    for (let tried = 0; tried < count; tried++) {
      const c = { base, bits: this.bits };
      if (!this.clash(c, owner) && !avoid.some((a) => contains(c, a))) {
        this.reserve(c, owner);
        return c;
      }
      base += step;
      if (base >= end) base = this.pool.base;
    }
    throw new AllocationError(
      `the default address pool ${formatCidr(this.pool)} has no free /${this.bits} subnet left: remove unused networks, or give the network a subnet outside the pool (--subnet)`,
    );
  }

  /** Frees `c` if `owner` holds it. */
  release(c: Cidr, owner: string): boolean {
    const k = formatCidr(c);
    if (this.taken.get(k)?.owner !== owner) return false;
    this.taken.delete(k);
    return true;
  }

  /** Network ids whose subnets overlap `c` (other than `owner`'s). */
  overlapping(c: Cidr, owner = ''): string[] {
    return [...this.taken.values()].filter((t) => t.owner !== owner && overlaps(t.cidr, c)).map((t) => t.owner);
  }
}

/**
 * Whole numbers in a range, each with an owner: VXLAN ids and published
 * ports. `allocate` takes from [min, max] going round; `reserve` accepts any
 * number in [reserveMin, reserveMax] (a port given by the user may lie outside
 * the dynamic range).
 */
export class IntPool {
  private readonly owners = new Map<number, string>();
  private cursor: number;

  constructor(
    readonly what: string,
    readonly min: number,
    readonly max: number,
    readonly reserveMin = min,
    readonly reserveMax = max,
  ) {
    this.cursor = min;
  }

  owner(n: number): string | undefined {
    return this.owners.get(n);
  }

  get used(): number {
    return this.owners.size;
  }

  reserve(n: number, owner: string): void {
    if (!(Number.isInteger(n) && n >= this.reserveMin && n <= this.reserveMax))
      throw new AllocationError(`${this.what} ${n} is out of range: it must be from ${this.reserveMin} to ${this.reserveMax}`);
    const cur = this.owners.get(n);
    if (cur !== undefined && cur !== owner) throw new AllocationError(`${this.what} ${n} is already in use by ${cur}`);
    this.owners.set(n, owner);
    if (n >= this.min && n <= this.max) this.cursor = n === this.max ? this.min : n + 1;
  }

  allocate(owner: string): number {
    const span = this.max - this.min + 1;
    let n = this.cursor;
    for (let tried = 0; tried < span; tried++) {
      if (!this.owners.has(n)) {
        this.reserve(n, owner);
        return n;
      }
      n = n === this.max ? this.min : n + 1;
    }
    throw new AllocationError(`no free ${this.what} left in ${this.min}-${this.max}: release some (remove services or networks)`);
  }

  release(n: number, owner: string): boolean {
    if (this.owners.get(n) !== owner) return false;
    this.owners.delete(n);
    return true;
  }
}

export { VNI_MAX, VNI_MIN };

export function vniPool(): IntPool {
  return new IntPool('VXLAN id', VNI_MIN, VNI_MAX, 1, VNI_MAX);
}

/** Published ports the managers pick when none is given (Swarm's range). */
export const DYNAMIC_PORT_MIN = 30000;
export const DYNAMIC_PORT_MAX = 32767;

export function portPool(protocol: string): IntPool {
  return new IntPool(`published port (${protocol})`, DYNAMIC_PORT_MIN, DYNAMIC_PORT_MAX, 1, 65535);
}
