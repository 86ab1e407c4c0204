// Test runner configuration: every `test/**/*.test.ts`, a console report plus
// a JSON report that `.ci/run` reads for its `N passed, N failed` line.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-report.json' },
    // Some tests use real gRPC on loopback, fsync'd disks and network
    // namespaces; a slow CI machine must not turn them into flakes.
    // End-to-end files bring up sandboxes of six daemons and stop containers
    // with grace periods: their slowest tests take about 25 s here, and CI
    // machines can be several times slower.
    testTimeout: 180_000,
    hookTimeout: 300_000,
    // Forks, not threads: native code (ffi-rs setns/prctl) changes per-thread
    // and per-process kernel state that must not leak between test files.
    pool: 'forks',
  },
});
