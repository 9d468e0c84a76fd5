import { afterAll, beforeAll, describe, it } from 'vitest';
import { scratch, type Scratch } from '@q/test-support';
import { configs } from './configs.js';
import { runWorkload } from './harness.js';

// The same seeded random command list goes to qemu-io (one copy) and to one `qcow io` run (the other copy);
// qemu-img compare must find them identical and qemu-img check must find the qcow copy clean.

describe('random write workloads, one qcow io run', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('write-random-');
  });
  afterAll(() => s.cleanup());

  configs.forEach((cfg, index) => {
    for (const seed of cfg.seeds) {
      it(`${cfg.name}, seed ${seed}, ${cfg.count} commands`, async () => {
        await runWorkload(s, cfg, index, seed, { parts: 1 });
      });
    }
  });
});
