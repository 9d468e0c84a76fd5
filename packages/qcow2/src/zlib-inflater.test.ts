import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { reusableRawInflater } from './zlib-inflater.js';

const cluster = (seed: number): Uint8Array => new Uint8Array(65536).map((_, i) => ((i >> 7) * seed + (i & 3)) & 0xff);
// QEMU's zlib clusters: raw deflate with a 4 KiB window.
const compress = (bytes: Uint8Array): Uint8Array => zlib.deflateRawSync(bytes, { windowBits: 12 });

describe('reusableRawInflater', () => {
  it('inflates cluster after cluster straight into the destination', () => {
    const inflate = reusableRawInflater(zlib)!;
    expect(inflate).toBeDefined();
    for (const seed of [3, 5, 7]) {
      const dst = new Uint8Array(65536).fill(0xee);
      expect(inflate(compress(cluster(seed)), dst)).toBe(65536);
      expect(Buffer.from(dst).equals(cluster(seed))).toBe(true);
    }
  });

  it('stops at the end of the destination, and reports a short stream by its count', () => {
    const inflate = reusableRawInflater(zlib)!;
    const half = new Uint8Array(32768);
    expect(inflate(compress(cluster(3)), half)).toBe(32768);
    expect(Buffer.from(half).equals(cluster(3).subarray(0, 32768))).toBe(true);
    const short = compress(cluster(5).subarray(0, 1000));
    expect(inflate(short, new Uint8Array(65536))).toBe(1000);
  });

  it('throws zlib\'s error for a corrupt stream, then inflates the next cluster with a fresh context', () => {
    const inflate = reusableRawInflater(zlib)!;
    expect(() => inflate(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x00, 0x12]), new Uint8Array(65536))).toThrow(/invalid/);
    const dst = new Uint8Array(65536);
    expect(inflate(compress(cluster(9)), dst)).toBe(65536);
    expect(Buffer.from(dst).equals(cluster(9))).toBe(true);
  });
});

describe('reusableRawInflater against a deflate bomb', () => {
  it('refuses a stream that inflates to more than twice the destination', () => {
    const inflate = reusableRawInflater(zlib)!;
    const bomb = zlib.deflateRawSync(new Uint8Array(1 << 20), { windowBits: 12 });
    expect(() => inflate(bomb, new Uint8Array(65536))).toThrow(/more than 131072 bytes/);
    // Up to twice is accepted (the cluster is filled), and the inflater goes on working.
    expect(inflate(zlib.deflateRawSync(new Uint8Array(100000).fill(1), { windowBits: 12 }), new Uint8Array(65536))).toBe(65536);
    const dst = new Uint8Array(65536);
    expect(inflate(compress(cluster(9)), dst)).toBe(65536);
    expect(Buffer.from(dst).equals(cluster(9))).toBe(true);
  });
});
