import { defineConfig, mergeConfig } from 'vitest/config';
import { oracleSuite } from '../../vitest.shared.js';

/**
 * `pnpm bench:vm` only (tools/bench/vm-bench.mjs): the benchmark file, one long "test" of up to a few hours, its
 * progress printed as it goes (console not intercepted) and vitest itself kept quiet (the dot reporter).
 */
export default defineConfig(
  mergeConfig(oracleSuite(4 * 3600_000), {
    test: { include: ['bench/vm-bench.ts'], fileParallelism: false, disableConsoleIntercept: true, reporters: ['dot'] },
  }),
);
