import { describe, expect, it } from 'vitest';
import { DiskError, isDiskError, MemoryBlockFile, type BlockFile } from '@q/raw';
import { checkImage } from './index.js';
import { TestImage, fixtureFile } from './test-image.js';

/**
 * Hostile images: every input ends in a report or a DiskError, in bounded time and memory. Lying sizes and
 * offsets far past the end of the file must not make the check allocate for them.
 */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

/**
 * A memory file that refuses to grow past a limit, as a full disk would: QEMU's repairs grow the file to wherever
 * a damaged refcount table points (so do ours), and a test must not allocate gigabytes for that.
 */
class CappedFile extends MemoryBlockFile {
  static readonly LIMIT = 64 * 1024 * 1024;
  override async write(src: Uint8Array, offset: number): Promise<void> {
    if (offset + src.length > CappedFile.LIMIT) throw new DiskError('E_IO', 'No space left on device', { file: this.name });
    return super.write(src, offset);
  }
  override async truncate(size: number): Promise<void> {
    if (size > CappedFile.LIMIT) throw new DiskError('E_IO', 'File too large', { file: this.name });
    return super.truncate(size);
  }
}

async function outcome(file: BlockFile, repair?: 'leaks' | 'all'): Promise<string> {
  try {
    const report = await checkImage(file, { repair, onMessage: () => undefined });
    return `report ${report.corruptions}/${report.leaks}/${report.checkErrors}`;
  } catch (error) {
    if (isDiskError(error)) return `DiskError ${error.code}`;
    throw error;
  }
}

describe('hostile images', () => {
  it('garbage instead of a header is a DiskError', async () => {
    await expect(checkImage(new MemoryBlockFile(new TextEncoder().encode('QFI\xfbgarbage')))).rejects.toBeInstanceOf(DiskError);
    await expect(checkImage(new MemoryBlockFile(new Uint8Array(0)))).rejects.toBeInstanceOf(DiskError);
  });

  it('an L1 table of the maximum size, past the end of the file, reads as zeros', async () => {
    const img = new TestImage(fixtureFile('v3-64k.qcow2'));
    const v = new DataView(img.bytes.buffer, img.bytes.byteOffset);
    v.setUint32(36, (32 * 1024 * 1024) / 8);
    img.setU64(40, 1n << 40n);
    const report = await checkImage(img.file);
    expect(report.messages[0]).toMatch(/^ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x10000000000 size 0x2000000$/);
  });

  it('a full L2 table of entries far past the end of the file costs no memory per entry', async () => {
    const img = new TestImage(fixtureFile('v3-64k.qcow2'));
    const l2 = img.l2EntryAt(0, 0);
    for (let j = 0; j < img.clusterSize / 8; j++) img.setU64(l2 + j * 8, (1n << 63n) | (BigInt(j + 1) << 40n));
    const before = process.memoryUsage().heapUsed;
    const report = await checkImage(img.file, { onMessage: () => undefined });
    expect(report.corruptions).toBeGreaterThanOrEqual(img.clusterSize / 8);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('offsets beyond 2^53 are reported exactly, not rounded', async () => {
    const img = new TestImage(fixtureFile('v3-64k.qcow2'));
    img.setU64(img.l2EntryAt(0, 1), (1n << 63n) | 0x00ff_ffff_ffff_fe00n);
    const report = await checkImage(img.file);
    expect(report.messages).toContain(
      'ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0xfffffffffffe00 size 0x10000',
    );
  });

  it('a refcount table naming blocks past the end of the file: each is outside the image', async () => {
    const img = new TestImage(fixtureFile('v3-64k.qcow2'));
    const table = Number(img.u64(48));
    for (let i = 1; i < img.clusterSize / 8; i++) img.setU64(table + i * 8, BigInt(i) << 32n);
    const report = await checkImage(img.file, { onMessage: () => undefined });
    expect(report.corruptions).toBe(img.clusterSize / 8 - 1);
  });

  it.each(['v3-64k.qcow2', 'v2-512.qcow2', 'refcount1-4k.qcow2', 'refcount64.qcow2', 'extl2-32k.qcow2', 'zlib-4k.qcow2', 'snapshots.qcow2', 'bitmaps.qcow2'])(
    '%s: random damage to the metadata ends in a report or a DiskError, also when repairing',
    async (name) => {
      const random = xorshift(name.length * 7919);
      const pristine = fixtureFile(name).contents().slice();
      const clusterSize = new TestImage(fixtureFile(name)).clusterSize;
      const metadataBytes = Math.min(pristine.length, clusterSize * 8);
      for (let round = 0; round < 60; round++) {
        const bytes = pristine.slice();
        const flips = 1 + (random() % 8);
        // Leave the magic and version alone now and then, so that most rounds get past the header.
        for (let i = 0; i < flips; i++) bytes[8 + (random() % (metadataBytes - 8))] = random() & 0xff;
        for (const repair of [undefined, 'all'] as const) {
          const file = new CappedFile(bytes.slice(), { name });
          expect(await outcome(file, repair)).toMatch(/^(report|DiskError)/);
        }
      }
    },
    120_000,
  );
});
