import { mkdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuRaw, scratch, sha256File, type Scratch } from '@q/test-support';
import { buildBaseImages, type BaseImages, type BaseName } from './base-images.js';
import { runQcow, snapshotTree, TIME_LIMIT_MS } from './hostile-harness.js';

// Positive controls for the hostile suites: every undamaged base image opens and reads cleanly through the same
// commands and the same harness (so a failure there is the damage, not the harness or the base image), and reads
// the bytes qemu-img reads.

const READABLE: BaseName[] = ['v3', 'v2', 'small', 'l1big', 'compressed', 'compressed2m', 'zstd', 'extl2', 'snap', 'bitmaps'];

describe('controls: the undamaged base images read cleanly', () => {
  let s: Scratch;
  let bases: BaseImages;
  beforeAll(() => {
    s = scratch('qcow-hostile-control-');
    bases = buildBaseImages(s);
    mkdirSync(s.path('out'));
  });
  afterAll(() => s?.cleanup());

  it.each(READABLE)('%s: info, map, io and convert succeed and match qemu-img', async (name) => {
    const base = bases[name];
    const before = snapshotTree(s.dir);
    const out = s.path(`out/${name}.raw`);
    for (const args of [
      ['info', base.path],
      ['map', '--output=json', base.path],
      ['io', '-r', '-c', `read 0 ${base.size}`, base.path],
      ['convert', '-O', 'raw', base.path, out],
    ]) {
      const outcome = runQcow(args, s.dir);
      expect(outcome.status, `qcow ${args.join(' ')}: ${outcome.stderr}`).toBe(0);
      expect(outcome.stderr).toBe('');
      expect(outcome.elapsedMs).toBeLessThan(TIME_LIMIT_MS);
    }
    const oracle = qemuRaw(base.path, s.path(`out/${name}.qemu.raw`));
    expect(await sha256File(out)).toBe(await sha256File(oracle));
    const after = snapshotTree(s.dir);
    for (const key of Object.keys(before)) if (!key.startsWith('out')) expect(after[key], key).toBe(before[key]);
  });
});
