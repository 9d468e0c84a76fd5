import { defineConfig } from 'vitest/config';

// Crash tests replay thousands of crash points, each checked by qemu-img: long timeouts, few workers (CI has 2 cores).
export default defineConfig({
  test: {
    testTimeout: 600_000,
    hookTimeout: 300_000,
    setupFiles: ['@q/test-support/yield-setup'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
