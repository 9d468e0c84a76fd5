import { writeFileSync } from 'node:fs';
import { describe, it } from 'vitest';
import { benchOptions } from './bench-options.js';
import { runBench } from './run-bench.js';

/**
 * `pnpm bench:vm`: tools/bench/vm-bench.mjs runs this file through vitest.bench.config.ts, because the guest's
 * build and boot code is TypeScript that only vitest runs here (no other loader in the repository). It is no test:
 * its name has no `.test.`, so the suite's `vitest run` never picks it up. It writes the report, or the error's
 * first line, to the file the launcher reads back; it fails only on a real error (a boot, a server, a bad image),
 * never because qcow serve was slower.
 */
describe('pnpm bench:vm', () => {
  it('runs the guest workload against qemu-nbd and qcow serve', async () => {
    const options = benchOptions();
    try {
      writeFileSync(options.out, JSON.stringify({ table: await runBench(options) }));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      writeFileSync(options.out, JSON.stringify({ error: message.split('\n')[0] }));
      throw error;
    }
  });
});
