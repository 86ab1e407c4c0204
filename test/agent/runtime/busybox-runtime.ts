// A Runtime on runc and conmon for a kernel test file's describe block: a
// temporary root under /tmp with the busybox image loaded, the containers a
// test made (pushed onto `made`) removed after each test, and everything
// unmounted and deleted after the block.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { buildBusyboxImage } from '../../../deploy/images/busybox.js';
import { Runtime } from '../../../agent/runtime/index.js';

export interface BusyboxRuntime {
  /** Set once the block's beforeAll has run; a test that restarts the runtime sets the new one here, which the hooks then use and close. */
  rt: Runtime;
  readonly dir: string;
  /** Ids of containers to remove after the current test. */
  readonly made: string[];
}

/** Call inside a describe block; `prefix` names the temporary directory (`/tmp/tss-…-`). */
export function useBusyboxRuntime(prefix: string): BusyboxRuntime {
  let rt: Runtime | undefined;
  let dir = '';
  const made: string[] = [];
  beforeAll(async () => {
    dir = mkdtempSync(prefix);
    await buildBusyboxImage({ outPath: join(dir, 'oci.tar'), format: 'oci', tag: 'tsswarm/busybox:latest' });
    rt = new Runtime({ root: join(dir, 'root'), logger: pino({ level: 'silent' }) });
    await rt.init();
    await rt.images.load(join(dir, 'oci.tar'));
  });
  afterEach(async () => {
    for (const id of made.splice(0)) await rt?.remove(id);
  });
  afterAll(async () => {
    rt?.close();
    if (!dir) return;
    for (const m of readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .filter((l) => l.includes(dir)))
      execFileSync('umount', ['-l', m.split(' ')[1]!]);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get rt(): Runtime {
      if (!rt) throw new Error('the runtime is made in beforeAll');
      return rt;
    },
    set rt(r: Runtime) {
      rt = r;
    },
    get dir(): string {
      return dir;
    },
    made,
  };
}
