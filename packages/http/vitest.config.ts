import { defineConfig } from 'vitest/config';

// The tests start nginx and run qemu-img; on a busy 2-core machine that takes seconds, not milliseconds.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
