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

  it('a stream longer than a cluster counts one reference in every host cluster it touches', () => {
    const packer = new CompressedPacker(512, 0xffff);
    expect(packer.place(1024, 300)).toBe(1024);
    // Runs on from 1324 through clusters 2, 3, 4 and ends inside 5.
    expect(packer.place(1536, 1400)).toBe(1324);
    expect([2, 3, 4, 5].map((c) => packer.references(c))).toEqual([2, 1, 1, 1]);
    // The next one shares cluster 5 with the long one.
    expect(packer.place(3072, 10)).toBe(2724);
    expect(packer.references(5)).toBe(2);
  });

  it('a run ending on a cluster boundary is over: the next stream starts at the first free cluster', () => {
    const packer = new CompressedPacker(4096, 0xffff);
    expect(packer.place(8192, 4096)).toBe(8192);
    expect(packer.place(16384, 100)).toBe(16384);
    expect(packer.references(2)).toBe(1);
    expect(packer.references(3)).toBe(1); // never touched: the writer's plain cluster
  });

  it('does not run on across a cluster used meanwhile (an L2 table reserved between two compressed clusters)', () => {
    const packer = new CompressedPacker(4096, 0xffff);
    expect(packer.place(8192, 4000)).toBe(8192);
    // Cluster 3 went to an L2 table: free space starts at 16384. 96 bytes are left in cluster 2: too few.
    expect(packer.place(16384, 200)).toBe(16384);
    // But a small one still fits in cluster 4's remainder.
    expect(packer.place(20480, 50)).toBe(16584);
    expect(packer.references(2)).toBe(1);
    expect(packer.references(4)).toBe(2);
  });

  it('stops sharing a host cluster at the refcount width\'s maximum (2-bit refcounts: 3 references)', () => {
    const packer = new CompressedPacker(4096, 3);
    expect([8192, 12288, 12288, 12288].map((end) => packer.place(end, 100))).toEqual([8192, 8292, 8392, 12288]);
    expect(packer.references(2)).toBe(3);
    expect(packer.references(3)).toBe(1);
  });

  it('with 64-bit refcounts, hundreds of tiny streams share one host cluster', () => {
    const packer = new CompressedPacker(65536, Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < 500; i++) expect(packer.place(i === 0 ? 131072 : 196608, 20)).toBe(131072 + i * 20);
    expect(packer.references(2)).toBe(500);
  });
});
