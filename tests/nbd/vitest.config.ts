import { defineConfig } from 'vitest/config';

// These tests run the built CLI as an NBD server and real clients (nbdinfo, nbdcopy, qemu-img, qemu-io) against it:
// long timeouts, few workers (CI has 2 cores).
export default defineConfig({
  test: {
    testTimeout: 300_000,
    hookTimeout: 300_000,
    setupFiles: ['@q/test-support/yield-setup'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
