// The agent-facing load balancer of one network namespace: keeps the desired
// table and the state it last programmed; turns one service's or the ingress
// ports' change into the smallest program (upsertService, removeService,
// setIngress: cost independent of the table's size), a whole new table into a
// diff (update), re-reads the kernel to repair drift and stale entries
// (reconcile), and removes everything it owns (teardown). Calls are serialised.
import { silentLogger, type Logger } from '../../lib/log.js';
import { chooseLbBackend, detectLbBackends } from './detect.js';
import { runIn } from './exec.js';
import { IptablesDriver, IpvsDriver, NftDriver, type LbDriver } from './drivers.js';
import { libnftablesAvailable } from './libnftables.js';
import { nativeAvailable } from '../../native/libc.js';
import { UsageError } from '../../lib/errors.js';
import { describeFrontend, ingressFrontend, vipFrontends, type FrontendChange } from './frontends.js';
import {
  validateIngressPort,
  validateService,
  validateTable,
  vipTaken,
  type LbBackendKind,
  type LbIngressPort,
  type LbService,
  type LbTable,
} from './types.js';

export interface LoadBalancerOptions {
  /** Network namespace to program: a name under /run/netns or a path; default this process's. */
  netns?: string;
  /** Overrides the detected choice (`--lb-backend`). */
  lbBackend?: LbBackendKind | string;
  log?: Logger;
}

export interface LbApplyResult {
  backend: LbBackendKind;
  /** Kernel objects added, changed or removed (0: already as desired). */
  ops: number;
  /** True when the kernel was read back first (reconcile, or an update whose cached view proved stale). */
  readBack: boolean;
}

export class ServiceLoadBalancer {
  private cached: unknown;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly log: Logger;

  /** Whether removed backends' UDP flows are cleared (see afterward): where the driver names a namespace, or when asked. */
  private readonly clearUdp: boolean;

  constructor(
    private readonly driver: LbDriver<unknown>,
    log?: Logger,
    o: { clearUdpFlows?: boolean } = {},
  ) {
    this.log = (log ?? silentLogger()).child({ component: 'lb', backend: driver.kind });
    this.clearUdp = o.clearUdpFlows ?? driver.netns !== undefined;
  }

  get backend(): LbBackendKind {
    return this.driver.kind;
  }

  /** Detects the backends the namespace can run, picks one (or the override), and returns a balancer for it. */
  static async open(o: LoadBalancerOptions = {}): Promise<ServiceLoadBalancer> {
    const kind = chooseLbBackend(await detectLbBackends(o.netns), o.lbBackend);
    return new ServiceLoadBalancer(ServiceLoadBalancer.driver(kind, o.netns), o.log, { clearUdpFlows: true });
  }

  static driver(kind: LbBackendKind, netns?: string): LbDriver<unknown> {
    const ns = netns === undefined ? {} : { netns };
    switch (kind) {
      case 'nft':
        // In-process libnftables needs both ffi-rs libraries; the nft command does the same, slower.
        return new NftDriver({
          ...ns,
          via: libnftablesAvailable().ok && nativeAvailable().ok ? 'libnftables' : 'process',
        }) as LbDriver<unknown>;
      case 'iptables':
        return new IptablesDriver(ns) as LbDriver<unknown>;
      case 'ipvs':
        return new IpvsDriver(ns) as LbDriver<unknown>;
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the load balancer is closed'));
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  // ---- the desired table, indexed so that one change is O(1) ----

  private services = new Map<string, LbService>();
  /** VIP frontend key → owning service id. */
  private vipOwner = new Map<string, string>();
  /** VIP address → the services using it (to keep an every-port VIP to one service). */
  private vipUsers = new Map<string, Set<string>>();
  /** Published frontend key → port. */
  private ingress = new Map<string, LbIngressPort>();

  /** The desired table as last given (services in insertion order). */
  desired(): LbTable {
    return { services: [...this.services.values()], ingress: [...this.ingress.values()] };
  }

  private setDesired(t: LbTable): void {
    this.services = new Map(t.services.map((s) => [s.id, s]));
    this.vipOwner = new Map(t.services.flatMap((s) => vipFrontends(s).map((f) => [f.key, s.id] as const)));
    this.vipUsers = new Map();
    for (const s of t.services) this.useVip(s.vip, s.id);
    this.ingress = new Map(t.ingress.map((g) => [ingressFrontend(g, undefined).key, g]));
  }

  private useVip(vip: string, id: string): void {
    const ids = this.vipUsers.get(vip);
    if (ids) ids.add(id);
    else this.vipUsers.set(vip, new Set([id]));
  }

  private leaveVip(vip: string, id: string): void {
    const ids = this.vipUsers.get(vip);
    ids?.delete(id);
    if (ids?.size === 0) this.vipUsers.delete(vip);
  }

  private ingressOf(id: string): FrontendChange[] {
    const out: FrontendChange[] = [];
    for (const g of this.ingress.values()) if (g.serviceId === id) out.push(ingressFrontend(g, this.services.get(id)));
    return out;
  }

  /**
   * Adds or replaces one service (its VIP ports and backends) and re-points
   * the ingress ports published for it. The caller removes a task's backend
   * here before it stops the task's container.
   */
  upsertService(svc: LbService): Promise<LbApplyResult> {
    validateService(svc, `service ${svc.id}`);
    const old = this.services.get(svc.id);
    // Only this service can lose backends: a copy of the whole table would make one change O(table).
    const before = new Map(old ? [[svc.id, old]] : []);
    const fronts = vipFrontends(svc);
    for (const f of fronts) {
      const owner = this.vipOwner.get(f.key);
      if (owner !== undefined && owner !== svc.id)
        throw new UsageError(
          `service ${svc.id}: ${describeFrontend(f.fe)} already belongs to service ${owner}: a VIP port belongs to one service`,
          { field: 'vip' },
        );
    }
    // A VIP forwarding every port is its service's alone, whichever came first.
    for (const other of this.vipUsers.get(svc.vip) ?? []) {
      if (other !== svc.id && (svc.ports.length === 0 || this.services.get(other)?.ports.length === 0))
        throw vipTaken(`service ${svc.id}.vip`, svc.vip, other);
    }
    const changes: FrontendChange[] = [...fronts];
    const keep = new Set(fronts.map((f) => f.key));
    for (const f of old ? vipFrontends(old) : []) {
      if (keep.has(f.key)) continue;
      changes.push({ ...f, targets: [] });
      this.vipOwner.delete(f.key);
    }
    for (const f of fronts) this.vipOwner.set(f.key, svc.id);
    if (old) this.leaveVip(old.vip, svc.id);
    this.useVip(svc.vip, svc.id);
    this.services.set(svc.id, svc);
    changes.push(...this.ingressOf(svc.id));
    return this.afterward(this.change(changes), before);
  }

  /** Removes a service's VIP ports and the ingress ports published for it. */
  removeService(id: string): Promise<LbApplyResult> {
    const old = this.services.get(id);
    const before = new Map(old ? [[id, old]] : []);
    const changes: FrontendChange[] = [];
    if (old) {
      for (const f of vipFrontends(old)) {
        changes.push({ ...f, targets: [] });
        this.vipOwner.delete(f.key);
      }
      this.leaveVip(old.vip, id);
      this.services.delete(id);
    }
    for (const [k, g] of this.ingress) {
      if (g.serviceId !== id) continue;
      changes.push({ ...ingressFrontend(g, undefined), targets: [] });
      this.ingress.delete(k);
    }
    return this.afterward(this.change(changes), before);
  }

  /**
   * Once a change is in: UDP flows that conntrack still maps to a backend
   * the change took away would keep sending there (a datagram of a known
   * flow never reaches the NAT rules again), so their entries are deleted,
   * as kube-proxy does. TCP needs nothing: a connection to a gone task
   * fails, and new ones take the new rules. A backend kept at weight 0
   * (draining) keeps its flows. Best effort: without the `conntrack`
   * command the entries time out (30 s for UDP) and a warning says so once.
   */
  private async afterward(done: Promise<LbApplyResult>, before: ReadonlyMap<string, LbService>): Promise<LbApplyResult> {
    // `before`: the services the call may have changed, as they were (all of them for update and reconcile).
    const r = await done;
    if (!this.clearUdp) return r;
    const gone: Array<[string, string]> = [];
    for (const [id, old] of before) {
      const now = this.services.get(id);
      const kept = new Set(now && now.vip === old.vip ? now.backends.map((b) => b.ip) : []);
      for (const b of old.backends) if (!kept.has(b.ip)) gone.push([old.vip, b.ip]);
    }
    for (const [vip, ip] of gone) {
      try {
        // Exit 1 means no entry matched: nothing to do.
        await runIn(this.driver.netns, 'conntrack', ['-D', '-p', 'udp', '--orig-dst', vip, '--reply-src', ip]);
      } catch (err) {
        if (!this.warnedConntrack)
          this.log.warn(
            { err: (err as Error).message },
            'cannot clear UDP flows to removed backends (install the conntrack package); they time out after 30 s',
          );
        this.warnedConntrack = true;
        break;
      }
    }
    return r;
  }

  private warnedConntrack = false;

  /** Replaces the published (routing-mesh) ports; each must name a known service. */
  setIngress(ports: LbIngressPort[]): Promise<LbApplyResult> {
    const next = new Map<string, LbIngressPort>();
    ports.forEach((g, i) => {
      validateIngressPort(g, `ingress[${i}]`);
      if (!this.services.has(g.serviceId))
        throw new UsageError(`ingress[${i}].serviceId "${g.serviceId}" is not a known service: upsert the service first`, {
          field: `ingress[${i}].serviceId`,
        });
      const k = ingressFrontend(g, undefined).key;
      if (next.has(k))
        throw new UsageError(
          `ingress[${i}]: ${g.protocol} port ${g.publishedPort} is published twice: a published port belongs to one service`,
          { field: `ingress[${i}].publishedPort` },
        );
      next.set(k, g);
    });
    const changes: FrontendChange[] = [];
    for (const [k, g] of this.ingress) if (!next.has(k)) changes.push({ ...ingressFrontend(g, undefined), key: k, targets: [] });
    for (const g of next.values()) changes.push(ingressFrontend(g, this.services.get(g.serviceId)));
    this.ingress = next;
    return this.change(changes);
  }

  /** Plans and applies a few frontends against the cached state; reconciles when there is none or the program fails. */
  private change(changes: FrontendChange[]): Promise<LbApplyResult> {
    return this.serial(async () => {
      if (this.cached === undefined) return this.reconcileNow(this.desired());
      const p = this.driver.planChanges(changes, this.cached);
      try {
        await this.driver.apply(p);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'incremental load-balancer change failed; reading the kernel back and reconciling');
        this.cached = undefined;
        return this.reconcileNow(this.desired());
      }
      p.commit(this.cached);
      return { backend: this.driver.kind, ops: p.ops, readBack: false };
    });
  }

  /**
   * Replaces the whole desired table and programs the difference against
   * what this balancer last programmed (its cost grows with the table: for
   * one service's change use upsertService). Without a cached view (first
   * call) or when the program fails (someone changed the kernel under us),
   * it reconciles.
   */
  update(desired: LbTable): Promise<LbApplyResult> {
    validateTable(desired);
    const before = new Map(this.services);
    this.setDesired(desired);
    return this.afterward(this.updateNow(desired), before);
  }

  private updateNow(desired: LbTable): Promise<LbApplyResult> {
    return this.serial(async () => {
      if (this.cached === undefined) return this.reconcileNow(desired);
      const p = this.driver.plan(desired, this.cached);
      try {
        await this.driver.apply(p);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'load-balancer update failed; reading the kernel back and reconciling');
        this.cached = undefined;
        return this.reconcileNow(desired);
      }
      this.cached = p.next;
      return { backend: this.driver.kind, ops: p.ops, readBack: false };
    });
  }

  /**
   * Reads the kernel, then adds what is missing and removes what is stale or
   * not ours as it should be: at start (a restarted agent) and periodically.
   * With a table, that table becomes the desired one first.
   */
  reconcile(desired?: LbTable): Promise<LbApplyResult> {
    const before = new Map(this.services);
    if (desired) {
      validateTable(desired);
      this.setDesired(desired);
    }
    return this.afterward(
      this.serial(() => this.reconcileNow(this.desired())),
      before,
    );
  }

  private async reconcileNow(desired: LbTable): Promise<LbApplyResult> {
    this.cached = undefined;
    const actual = await this.driver.read();
    let p = this.driver.plan(desired, actual);
    try {
      await this.driver.apply(p);
    } catch (err) {
      // Something we cannot see in the read-back (an older layout, a rule
      // edited by hand) made the program fail: rewrite everything we own.
      this.log.warn({ err: (err as Error).message }, 'reconcile program failed; rebuilding everything this backend owns');
      p = this.driver.plan(desired, this.driver.distrust(actual));
      await this.driver.apply(p);
    }
    this.cached = p.next;
    if (p.ops > 0) this.log.info({ ops: p.ops }, 'load balancer reconciled: kernel state repaired');
    return { backend: this.driver.kind, ops: p.ops, readBack: true };
  }

  /** Removes every table, chain, rule or IPVS service this backend owns in the namespace. */
  teardown(): Promise<void> {
    return this.serial(async () => {
      this.cached = undefined;
      await this.driver.teardown();
    });
  }

  /** Releases the kernel handle; nothing programmed is removed (see teardown). */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    this.driver.close();
  }
}
