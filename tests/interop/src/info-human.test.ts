import { basename, dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, run, scratch, type Scratch } from '@q/test-support';
import { buildCatalog, catalog, type CatalogImage } from './catalog.js';

// Human `qcow info` against `qemu-img info`: the same lines in the same order, except `disk size:` (host file
// allocation) which may differ.

function lines(out: string): string[] {
  return out.split('\n').filter((l) => !l.startsWith('disk size:'));
}

describe('qcow info (human) vs qemu-img info', () => {
  let s: Scratch;
  let images: Array<CatalogImage & { path: string }>;
  beforeAll(() => {
    s = scratch('interop-infohuman-');
    images = buildCatalog(s);
  });
  afterAll(() => s.cleanup());

  const variants: Array<{ label: string; args: string[] }> = [
    { label: 'plain', args: [] },
    { label: '--backing-chain', args: ['--backing-chain'] },
  ];

  catalog.forEach((entry, i) => {
    for (const v of variants) {
      it(`${entry.name} (${v.label})`, () => {
        const img = images[i]!.path;
        const args = ['info', ...v.args, ...(entry.format ? ['-f', entry.format] : []), basename(img)];
        const q = run('qemu-img', args, { cwd: dirname(img) });
        const c = qcow(args, { cwd: dirname(img) });
        expect(q.status, q.stderr).toBe(0);
        expect(c.status, c.stderr).toBe(0);
        expect(lines(c.stdout)).toEqual(lines(q.stdout));
        // "disk size:" is there in both, once per image of the chain.
        const count = (out: string): number => out.split('\n').filter((l) => l.startsWith('disk size:')).length;
        expect(count(c.stdout)).toBe(count(q.stdout));
      });
    }
  });
});
