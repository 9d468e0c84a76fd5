import { afterAll, beforeAll, describe, it } from 'vitest';
import { scratch, type Scratch } from '@q/test-support';
import { configs } from './configs.js';
import { runWorkload } from './harness.js';

// The same workloads as random-workloads.test.ts, with the qcow side split into 4 `qcow io` runs: each batch
// reopens an image the previous run wrote (grown tables, new L2 tables, compressed/COW state).

describe('random write workloads, split across qcow io runs (reopening the image)', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('write-reopen-');
  });
  afterAll(() => s.cleanup());

  configs.forEach((cfg, index) => {
    for (const seed of cfg.seeds) {
      it(`${cfg.name}, seed ${seed}, ${cfg.count} commands in 4 runs`, async () => {
        await runWorkload(s, cfg, index, seed, { parts: 4 });
      });
    }
  });
});
