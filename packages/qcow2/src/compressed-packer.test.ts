import { describe, expect, it } from 'vitest';
import { CompressedPacker } from './compressed-packer.js';

// Placement as observed in qemu-img convert -c images (4 KiB clusters): compressed clusters follow each other byte
// after byte, keep filling their host cluster across plain clusters written in between, and each host cluster
// counts one reference per compressed cluster touching it.
describe('CompressedPacker', () => {
  it('packs consecutive clusters byte after byte and counts a reference per touching cluster', () => {
    const packer = new CompressedPacker(4096, 0xffff);
    expect(packer.place(8192, 4080)).toBe(8192);
    expect(packer.place(12288, 4081)).toBe(12272); // runs on into the next free cluster
    expect(packer.references(2)).toBe(2);
    expect(packer.references(3)).toBe(1);
    expect(packer.references(5)).toBe(1); // never touched: a plain cluster's single reference
  });

  it('keeps filling a partly used cluster after plain clusters, but never spills into them', () => {
    const packer = new CompressedPacker(4096, 0xffff);
    expect(packer.place(8192, 100)).toBe(8192);
    // Plain data took 12288..16383 meanwhile: free clusters start at 16384.
    expect(packer.place(16384, 200)).toBe(8292);
    expect(packer.place(16384, 4000)).toBe(16384);
    expect(packer.references(2)).toBe(2);
  });

  it('with 1-bit refcounts a host cluster is never shared', () => {
    const packer = new CompressedPacker(4096, 1);
    expect(packer.place(8192, 100)).toBe(8192);
    expect(packer.place(12288, 100)).toBe(12288);
    expect(packer.references(2)).toBe(1);
  });
});
