// The thin runners, one per backend: read the kernel's actual state, plan
// against it (the pure planners), and apply a program in one run inside the
// target namespace. Nothing here decides what to program.
import type { FrontendChange } from './frontends.js';
import { emptyIptState, iptTeardown, parseIptablesSave, planIptables, planIptablesChanges, type IptState } from './iptables.js';
import { ipvsTeardown, markTable, parseIpvsSave, parseMarkTable, planIpvs, planIpvsChanges, type IpvsState } from './ipvs.js';
import { LbCommandError, mustRunIn, runIn } from './exec.js';
import { NftContext } from './libnftables.js';
import { nftTable, nftTeardown, parseNftJson, planNft, planNftChanges, type ChangePlan, type NftState, type Plan } from './nft.js';
import type { LbBackendKind, LbTable } from './types.js';

/** What a driver applies: its program, and for ipvs the nft program of its firewall marks. */
export interface Program {
  program: string;
  /** ipvs only: run after `program`. */
  marks?: string;
}

export interface DriverPlan<S> extends Plan<S> {
  marks?: string;
}

export interface DriverChangePlan<S> extends ChangePlan<S> {
  marks?: string;
}

export interface LbDriver<S> {
  readonly kind: LbBackendKind;
  /** The namespace it programs (undefined: this process's). */
  readonly netns?: string;
  /** Reads what the kernel has now. */
  read(): Promise<S>;
  plan(desired: LbTable, actual: S): DriverPlan<S>;
  /** A plan for a few frontends against a state a full plan produced. */
  planChanges(changes: FrontendChange[], actual: S): DriverChangePlan<S>;
  /** Applies a program atomically (nft, iptables) or in one run (ipvsadm-restore, then nft for the marks). */
  apply(p: Program): Promise<void>;
  /** `actual` marked so that a plan against it rewrites everything (after a program built on it failed). */
  distrust(actual: S): S;
  /** Removes everything this backend owns in the namespace. */
  teardown(): Promise<void>;
  close(): void;
}

/** Programs at most this long go through libnftables on the event-loop thread (well under a millisecond). */
const inlineLimit = 4096;

export interface NftDriverOptions {
  netns?: string;
  /** `process`: one `nft -f -` run per program (what the agent falls back to without libnftables). */
  via?: 'libnftables' | 'process';
}

export class NftDriver implements LbDriver<NftState> {
  readonly kind = 'nft';
  get netns(): string | undefined {
    return this.o.netns;
  }
  private ctx: NftContext | undefined;
  private reader: NftContext | undefined;

  constructor(private readonly o: NftDriverOptions = {}) {}

  async read(): Promise<NftState> {
    if (this.o.via !== 'process') {
      this.reader ??= NftContext.open(this.o.netns, { json: true });
      try {
        return parseNftJson(await this.reader.run(`list table ip ${nftTable}`));
      } catch (err) {
        if (/No such file or directory/.test((err as Error).message)) return parseNftJson('');
        throw err;
      }
    }
    const r = await runIn(this.o.netns, 'nft', ['-j', 'list', 'table', 'ip', nftTable]);
    if (r.code !== 0) {
      if (/No such file or directory/.test(r.stderr)) return parseNftJson('');
      throw new LbCommandError(`nft -j list table ip ${nftTable}`, r);
    }
    return parseNftJson(r.stdout);
  }

  plan(desired: LbTable, actual: NftState): DriverPlan<NftState> {
    return planNft(desired, actual);
  }

  planChanges(changes: FrontendChange[], actual: NftState): DriverChangePlan<NftState> {
    return planNftChanges(changes, actual);
  }

  async apply({ program }: Program): Promise<void> {
    if (program === '') return;
    if (this.o.via === 'process') {
      await mustRunIn(this.o.netns, 'nft', ['-f', '-'], program);
      return;
    }
    this.ctx ??= NftContext.open(this.o.netns);
    if (program.length <= inlineLimit) this.ctx.runSync(program);
    else await this.ctx.run(program);
  }

  distrust(actual: NftState): NftState {
    return { ...actual, table: 'broken' };
  }

  async teardown(): Promise<void> {
    await this.apply({ program: nftTeardown() });
  }

  close(): void {
    this.ctx?.close();
    this.reader?.close();
    this.ctx = this.reader = undefined;
  }
}

export class IptablesDriver implements LbDriver<IptState> {
  readonly kind = 'iptables';
  get netns(): string | undefined {
    return this.o.netns;
  }
  constructor(private readonly o: { netns?: string } = {}) {}

  async read(): Promise<IptState> {
    const r = await runIn(this.o.netns, 'iptables-save', ['-t', 'nat']);
    if (r.code !== 0) throw new LbCommandError('iptables-save -t nat', r);
    return r.stdout.trim() === '' ? emptyIptState() : parseIptablesSave(r.stdout);
  }

  plan(desired: LbTable, actual: IptState): DriverPlan<IptState> {
    return planIptables(desired, actual);
  }

  planChanges(changes: FrontendChange[], actual: IptState): DriverChangePlan<IptState> {
    return planIptablesChanges(changes, actual);
  }

  async apply({ program }: Program): Promise<void> {
    if (program !== '') await mustRunIn(this.o.netns, 'iptables-restore', ['--noflush'], program);
  }

  distrust(actual: IptState): IptState {
    return { ...actual, frontends: new Map([...actual.frontends].map(([k, f]) => [k, { ...f, rulesOk: false }])) };
  }

  async teardown(): Promise<void> {
    await this.apply({ program: iptTeardown(await this.read()) });
  }

  close(): void {}
}

export class IpvsDriver implements LbDriver<IpvsState> {
  readonly kind = 'ipvs';
  get netns(): string | undefined {
    return this.o.netns;
  }
  private tuned = false;
  constructor(private readonly o: { netns?: string } = {}) {}

  async read(): Promise<IpvsState> {
    const st = parseIpvsSave(await mustRunIn(this.o.netns, 'ipvsadm', ['-S', '-n']));
    const r = await runIn(this.o.netns, 'nft', ['-j', 'list', 'table', 'ip', markTable]);
    if (r.code !== 0 && !/No such file or directory/.test(r.stderr)) throw new LbCommandError(`nft -j list table ip ${markTable}`, r);
    return parseMarkTable(r.code === 0 ? r.stdout : '', st);
  }

  plan(desired: LbTable, actual: IpvsState): DriverPlan<IpvsState> {
    return planIpvs(desired, actual);
  }

  planChanges(changes: FrontendChange[], actual: IpvsState): DriverChangePlan<IpvsState> {
    return planIpvsChanges(changes, actual);
  }

  async apply({ program, marks = '' }: Program): Promise<void> {
    if (program !== '' && !this.tuned) {
      // As Docker sets them: conntrack for IPVS connections, so that the
      // routing mesh's masquerade applies to them; and a connection whose
      // destination was removed is dropped at its next packet, not black-holed.
      this.tuned = true;
      await runIn(this.o.netns, 'sysctl', ['-qw', 'net.ipv4.vs.conntrack=1', 'net.ipv4.vs.expire_nodest_conn=1']);
    }
    if (program !== '') await mustRunIn(this.o.netns, 'ipvsadm-restore', [], program);
    if (marks !== '') await mustRunIn(this.o.netns, 'nft', ['-f', '-'], marks);
  }

  distrust(actual: IpvsState): IpvsState {
    return { ...actual, markTable: actual.markTable === 'absent' ? 'absent' : 'broken' };
  }

  async teardown(): Promise<void> {
    await this.apply(ipvsTeardown(await this.read()));
  }

  close(): void {}
}
