import { defineConfig } from 'vitest/config';

/**
 * Both files run tsc and child processes for tens of seconds: one file at a time, so that on CI's two cores they
 * never compete with each other as well as with the other suites turbo runs beside them.
 */
export default defineConfig({
  test: {
    testTimeout: 180_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
