// libnftables (what the `nft` command wraps) called in-process through ffi-rs,
// with one context per network namespace kept open. Measured here: an `nft`
// process that deleted an element waits ~12-20 ms at exit, when its netlink
// socket closes and the kernel flushes the transaction's deferred release
// (an RCU grace period); a context kept open never pays that, nor the
// fork/exec of nsenter + nft, so a one-element change costs ~0.1 ms.
import { TsswarmError } from '../../lib/errors.js';
import { loadFfi, withNetns } from '../../native/libc.js';
import { netnsPath } from './exec.js';

type Ffi = typeof import('ffi-rs');
type Ptr = import('ffi-rs').JsExternal;

const LIBRARY = 'tsswarm-nftables';
/** enum nft_output_flags in nftables/libnftables.h. */
const NFT_CTX_OUTPUT_JSON = 1 << 4;
let ffi: Ffi | undefined;

function lib(): Ffi {
  if (!ffi) {
    const loaded = loadFfi();
    loaded.open({ library: LIBRARY, path: 'libnftables.so.1' });
    ffi = loaded;
  }
  return ffi;
}

/** Whether libnftables loads here; the reason when it does not. */
export function libnftablesAvailable(): { ok: true } | { ok: false; reason: string } {
  try {
    lib();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `libnftables.so.1 cannot be loaded (install nftables): ${(err as Error).message}` };
  }
}

export class NftError extends TsswarmError {
  constructor(message: string) {
    super('INTERNAL', message);
  }
}

/**
 * One libnftables context whose netlink socket lives in a given network
 * namespace (it is opened there and stays bound to it). Calls must not
 * overlap: the owner serialises them.
 */
export class NftContext {
  private ctx: Ptr | undefined;

  private constructor(ctx: Ptr) {
    this.ctx = ctx;
  }

  /**
   * Opens a context in `netns` (a name under /run/netns or a path), or in this
   * process's namespace. `json`: listings come out as `nft -j` prints them
   * (commands are still read as nft syntax).
   */
  static open(netns?: string, o: { json?: boolean } = {}): NftContext {
    const f = lib();
    const { DataType } = f;
    const create = (): NftContext => {
      const ctx = f.load({
        library: LIBRARY,
        funcName: 'nft_ctx_new',
        retType: DataType.External,
        paramsType: [DataType.I32],
        paramsValue: [0],
      });
      if (f.isNullPointer(ctx)) throw new NftError('nft_ctx_new returned NULL (out of memory?)');
      const c = new NftContext(ctx);
      c.call('nft_ctx_buffer_output');
      c.call('nft_ctx_buffer_error');
      if (o.json) {
        f.load({
          library: LIBRARY,
          funcName: 'nft_ctx_output_set_flags',
          retType: DataType.Void,
          paramsType: [DataType.External, DataType.U32],
          paramsValue: [ctx, NFT_CTX_OUTPUT_JSON],
        });
      }
      // The socket is opened by the first command: run one while inside the namespace.
      c.runSync('list tables');
      return c;
    };
    return netns === undefined ? create() : withNetns(netnsPath(netns), create);
  }

  private call(fn: string): number {
    const { DataType } = lib();
    return lib().load({
      library: LIBRARY,
      funcName: fn,
      retType: DataType.I32,
      paramsType: [DataType.External],
      paramsValue: [this.live()],
    });
  }

  private live(): Ptr {
    if (!this.ctx) throw new NftError('the nft context is closed');
    return this.ctx;
  }

  private buffer(fn: 'nft_ctx_get_output_buffer' | 'nft_ctx_get_error_buffer'): string {
    const { DataType } = lib();
    return lib().load({
      library: LIBRARY,
      funcName: fn,
      retType: DataType.String,
      paramsType: [DataType.External],
      paramsValue: [this.live()],
    });
  }

  private finish(rc: number): string {
    const out = this.buffer('nft_ctx_get_output_buffer');
    const err = this.buffer('nft_ctx_get_error_buffer');
    if (rc !== 0) throw new NftError(`nft transaction failed: ${err.trim().slice(0, 2000) || `rc ${rc}`}`);
    return out;
  }

  /** Runs a program (one transaction, as `nft -f`) on the calling thread; returns its output. */
  runSync(program: string): string {
    const { DataType } = lib();
    const rc = lib().load({
      library: LIBRARY,
      funcName: 'nft_run_cmd_from_buffer',
      retType: DataType.I32,
      paramsType: [DataType.External, DataType.String],
      paramsValue: [this.live(), program],
    });
    return this.finish(rc);
  }

  /** Same on a worker thread, so a large program does not stall the event loop. */
  async run(program: string): Promise<string> {
    const { DataType } = lib();
    const rc = await lib().load({
      library: LIBRARY,
      funcName: 'nft_run_cmd_from_buffer',
      retType: DataType.I32,
      paramsType: [DataType.External, DataType.String],
      paramsValue: [this.live(), program],
      runInNewThread: true,
    });
    return this.finish(rc);
  }

  close(): void {
    if (!this.ctx) return;
    const { DataType } = lib();
    lib().load({
      library: LIBRARY,
      funcName: 'nft_ctx_free',
      retType: DataType.Void,
      paramsType: [DataType.External],
      paramsValue: [this.ctx],
    });
    this.ctx = undefined;
  }
}
