import { defineConfig } from 'vitest/config';

// These tests drive qemu-img, qemu-io and the built CLI as child processes: long timeouts, few workers (CI has 2 cores).
export default defineConfig({
  test: {
    testTimeout: 300_000,
    hookTimeout: 300_000,
    setupFiles: ['@q/test-support/yield-setup'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
