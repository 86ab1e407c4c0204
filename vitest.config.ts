// Test runner configuration: three projects chosen by file name (`unit`,
// `kernel`, `e2e`), one console report and one JSON report over all of them
// that `.ci/run` reads for its per-project counts and `N passed, N failed`.
import { defineConfig } from 'vitest/config';

// The naming rule, shared with `.ci/run`: files under test/e2e/ are `e2e`,
// `*.kernel.test.ts` files need root and the kernel, everything else is `unit`.
const E2E = 'test/e2e/**/*.test.ts';
const KERNEL = 'test/**/*.kernel.test.ts';

export default defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-report.json' },
    // Forks, not threads: native code (ffi-rs setns/prctl) changes per-thread
    // and per-process kernel state that must not leak between test files.
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [E2E, KERNEL, '**/node_modules/**'],
          // No root, no kernel: a unit test that needs longer than this is
          // waiting on something it should not; the few that run real gRPC
          // clusters on loopback set their own timeout.
          testTimeout: 10_000,
          hookTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'kernel',
          include: [KERNEL],
          // Namespaces, runc containers and fsync'd disks: a slow CI machine
          // must not turn them into flakes.
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: [E2E],
          // Sandboxes of six daemons that stop containers with grace periods:
          // their slowest tests take about 25 s here, and CI machines can be
          // several times slower.
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
