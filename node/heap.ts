// Hands the C heap's free pages back to the kernel once the garbage collector
// has gone quiet. glibc keeps memory that was freed inside its heaps for
// reuse, and the buffers of a daemon's bursts of work (an image loaded or
// pulled, TLS handshakes, containers started) are freed only when V8 collects
// the objects that held them: measured on an idle worker of the bench's
// sandbox, about 4 MB of its 72 stayed resident that way. So the release
// follows the collections that end a burst, when no other comes for a while,
// and at most once in a while under a steady load.
import { PerformanceObserver } from 'node:perf_hooks';

export interface HeapReleaseOptions {
  /** Returns the free pages (true: some were); undefined where that cannot be done: the watch then stops. */
  release: () => boolean | undefined;
  /** How long no collection must come before the release; default 2 s. */
  quietMs?: number;
  /** The least time between two releases; default 10 s. */
  minIntervalMs?: number;
}

/** Watches V8's collections and calls `release` once they go quiet; returns the function that stops it. */
export function releaseHeapAfterGc({ release, quietMs = 2000, minIntervalMs = 10_000 }: HeapReleaseOptions): () => void {
  let timer: NodeJS.Timeout | undefined;
  let last = Number.NEGATIVE_INFINITY;
  const arm = (ms: number): void => {
    clearTimeout(timer);
    timer = setTimeout(fire, ms);
    timer.unref();
  };
  const fire = (): void => {
    timer = undefined;
    const wait = last + minIntervalMs - performance.now();
    if (wait > 0) return arm(wait);
    last = performance.now();
    if (release() === undefined) stop();
  };
  const obs = new PerformanceObserver(() => arm(quietMs));
  const stop = (): void => {
    obs.disconnect();
    clearTimeout(timer);
    timer = undefined;
  };
  obs.observe({ entryTypes: ['gc'] });
  return stop;
}
