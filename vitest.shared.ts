import type { ViteUserConfig } from 'vitest/config';

/**
 * The config every suite under tests/ shares: they drive qemu-img, qemu-io, fio and the built CLI as child
 * processes, so long timeouts and few workers (CI has 2 cores); yield-setup lets the worker report between tests.
 */
export function oracleSuite(testTimeout = 300_000): ViteUserConfig {
  return {
    test: {
      testTimeout,
      hookTimeout: 300_000,
      setupFiles: ['@q/test-support/yield-setup'],
      pool: 'forks',
      poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    },
  };
}

/**
 * The config of the packages' own unit tests: vitest's 5 s default fails tests that take a second alone when CI
 * runs two suites at once on 2 cores; a minute only matters when a test really hangs.
 */
export function unitSuite(testTimeout = 60_000): ViteUserConfig {
  return { test: { testTimeout, hookTimeout: 60_000 } };
}
