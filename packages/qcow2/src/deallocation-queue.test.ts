import { describe, expect, it } from 'vitest';
import { MemoryBlockFile, type BlockFile } from '@q/raw';
import { defaultCreateOptions, type CreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { DeallocationQueue } from './deallocation-queue.js';
import { portableCodecs } from './portable-codecs.js';
import { Qcow2Image } from './qcow2-image.js';

const KiB = 1024;
const CLUSTER = 64 * KiB;

/** A memory file that punches (zeros) and logs every deallocation, and a fresh image in it. */
async function punchingImage(size: number, options: Partial<CreateOptions> = {}): Promise<{ image: Qcow2Image; file: LoggingFile }> {
  const file = new LoggingFile();
  const keepOpen: BlockFile = {
    name: file.name,
    capabilities: file.capabilities,
    read: (dst, offset) => file.read(dst, offset),
    write: (src, offset) => file.write(src, offset),
    flush: () => file.flush(),
    size: () => file.size(),
    truncate: (length) => file.truncate(length),
    close: async () => undefined,
  };
  await createQcow2(keepOpen, { ...defaultCreateOptions(size), ...options });
  const image = await Qcow2Image.open(file, { writable: true, codecs: portableCodecs() });
  return { image, file };
}

class LoggingFile extends MemoryBlockFile {
  readonly punched: Array<[offset: number, length: number]> = [];
  failWith: boolean | Error | undefined;

  constructor() {
    super(new Uint8Array(0), { name: 'punching.qcow2', deallocate: true });
  }

  /** Keeps the bytes, so the test can look at what close left and open them again. */
  override async close(): Promise<void> {}

  override async deallocate(offset: number, length: number): Promise<boolean> {
    if (this.failWith instanceof Error) throw this.failWith;
    if (this.failWith === false) return false;
    this.punched.push([offset, length]);
    return super.deallocate(offset, length);
  }
}

async function readAll(image: Qcow2Image, offset: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await image.read(bytes, offset);
  return bytes;
}

const all = (bytes: Uint8Array, value: number): boolean => bytes.every((b) => b === value);

describe('space given back: freed clusters become holes', () => {
  it('punches discarded clusters at flush, not before, neighbours in one call', async () => {
    const { image, file } = await punchingImage(16 << 20);
    await image.write(new Uint8Array(1 << 20).fill(0x41), 0);
    await image.flush();
    const [first] = (await image.map(0, 1 << 20)).filter((extent) => extent.kind === 'data');
    const host = first!.kind === 'data' ? first!.hostOffset : -1;
    await image.discard(0, 512 * KiB);
    expect(file.punched).toEqual([]);
    await image.flush();
    // Eight clusters, contiguous in the file: one call.
    expect(file.punched).toEqual([[host, 512 * KiB]]);
    expect(all(file.contents().subarray(host, host + 512 * KiB), 0)).toBe(true);
    expect(all(await readAll(image, 0, 512 * KiB), 0)).toBe(true);
    expect(all(await readAll(image, 512 * KiB, 512 * KiB), 0x41)).toBe(true);
    await image.close();
  });

  it('punches what write-zeroes with unmap and copy-on-write free, and nothing for zeroes that keep their clusters', async () => {
    const { image, file } = await punchingImage(16 << 20);
    await image.write(new Uint8Array(4 * CLUSTER).fill(0x42), 0);
    await image.flush();
    await image.writeZeroes(0, CLUSTER);
    await image.flush();
    expect(file.punched).toEqual([]);
    await image.writeZeroes(CLUSTER, CLUSTER, { unmap: true });
    await image.flush();
    expect(file.punched).toHaveLength(1);
    // A snapshot shares every cluster; deleting it after the active disk moved on frees the old copies.
    await image.createSnapshot('old');
    await image.write(new Uint8Array(2 * CLUSTER).fill(0x43), 2 * CLUSTER);
    await image.flush();
    const before = file.punched.length;
    await image.deleteSnapshot('old');
    const freed = file.punched.slice(before).reduce((sum, [, length]) => sum + length, 0);
    // The two data clusters the snapshot alone kept, its L2 table copy, its L1 table and the old snapshot table.
    expect(freed).toBeGreaterThanOrEqual(3 * CLUSTER);
    expect(all(await readAll(image, 2 * CLUSTER, 2 * CLUSTER), 0x43)).toBe(true);
    expect(all(await readAll(image, 0, 2 * CLUSTER), 0)).toBe(true);
    await image.close();
  });

  it('never punches a freed cluster that was allocated again before the flush', async () => {
    // 512-byte clusters: growing to 64 MiB moves the L1 table, whose old cluster is freed at once and reused next.
    const { image, file } = await punchingImage(1 << 20, { clusterBits: 9 });
    await image.write(new Uint8Array(512).fill(0x44), 0);
    await image.flush();
    const oldL1 = (await headerL1(file)).offset;
    await image.resize(64 << 20);
    expect((await headerL1(file)).offset).not.toBe(oldL1);
    await image.write(new Uint8Array(4 * KiB).fill(0x45), 32 << 20);
    await image.flush();
    await image.close();
    // The L2 table for 32 MiB (L1 index 1024: 64 entries of 512 bytes per table) took the old L1's cluster.
    const newL1 = (await headerL1(file)).offset;
    const l2 = new DataView(file.contents().buffer).getUint32(newL1 + 1024 * 8 + 4) & ~0x1ff;
    const reused = l2 === oldL1;
    for (const [offset, length] of file.punched) expect(offset <= oldL1 && oldL1 < offset + length, `punch at ${offset}+${length}`).toBe(false);
    const back = await Qcow2Image.open(new MemoryBlockFile(file.contents().slice(), { writable: false }), { codecs: portableCodecs() });
    expect(all(await readAll(back, 32 << 20, 4 * KiB), 0x45)).toBe(true);
    expect(all(await readAll(back, 0, 512), 0x44)).toBe(true);
    await back.close();
    // The point of the test: the old L1 cluster did get reused (otherwise it proves nothing).
    expect(reused).toBe(true);
  });

  it('cuts free clusters off the end of the file at close, and leaves an image it only read alone', async () => {
    const { image, file } = await punchingImage(16 << 20);
    await image.write(new Uint8Array(4 * CLUSTER).fill(0x46), 0);
    await image.flush();
    const [data] = await image.map(0, 4 * CLUSTER);
    const host = data?.kind === 'data' ? data.hostOffset : -1;
    // The file reaches past the data while open (room reserved for growth).
    expect(await file.size()).toBeGreaterThan(host + 4 * CLUSTER);
    await image.discard(2 * CLUSTER, 2 * CLUSTER);
    await image.close();
    // The last two data clusters are free: the file ends after the first two.
    expect(await file.size()).toBe(host + 2 * CLUSTER);
    const again = await Qcow2Image.open(file, { writable: true, codecs: portableCodecs() });
    expect(all(await readAll(again, 0, 2 * CLUSTER), 0x46)).toBe(true);
    const size = await file.size();
    await file.truncate(size + 3 * CLUSTER);
    await again.close();
    expect(await file.size()).toBe(size + 3 * CLUSTER);
  });

  it('cuts a freed tail off the file at flush instead of punching it', async () => {
    const { image, file } = await punchingImage(16 << 20);
    await image.write(new Uint8Array(8 * CLUSTER).fill(0x48), 0);
    await image.flush();
    const [data] = await image.map(0, 8 * CLUSTER);
    const host = data?.kind === 'data' ? data.hostOffset : -1;
    // Clusters 1-2 are inside the file, 5-7 its last ones: the first become a hole, the others go with the cut.
    await image.discard(CLUSTER, 2 * CLUSTER);
    await image.discard(5 * CLUSTER, 3 * CLUSTER);
    await image.flush();
    expect(file.punched).toEqual([[host + CLUSTER, 2 * CLUSTER]]);
    expect(await file.size()).toBe(host + 5 * CLUSTER);
    // Writing on allocates past the cut again, and the file grows back to cover it.
    await image.write(new Uint8Array(4 * CLUSTER).fill(0x49), 8 * CLUSTER);
    await image.flush();
    await image.close();
    const back = await Qcow2Image.open(new MemoryBlockFile(file.contents().slice(), { writable: false }), { codecs: portableCodecs() });
    expect(all(await readAll(back, 0, CLUSTER), 0x48)).toBe(true);
    expect(all(await readAll(back, CLUSTER, 2 * CLUSTER), 0)).toBe(true);
    expect(all(await readAll(back, 3 * CLUSTER, 2 * CLUSTER), 0x48)).toBe(true);
    expect(all(await readAll(back, 5 * CLUSTER, 3 * CLUSTER), 0)).toBe(true);
    expect(all(await readAll(back, 8 * CLUSTER, 4 * CLUSTER), 0x49)).toBe(true);
    await back.close();
  });

  it('gives up quietly where the file cannot punch, or a punch fails', async () => {
    for (const failWith of [false, new Error('EIO')] as const) {
      const { image, file } = await punchingImage(16 << 20);
      await image.write(new Uint8Array(2 * CLUSTER).fill(0x47), 0);
      await image.flush();
      file.failWith = failWith;
      await image.discard(0, CLUSTER);
      await image.flush();
      expect(all(await readAll(image, CLUSTER, CLUSTER), 0x47)).toBe(true);
      await image.close();
    }
  });
});

describe('DeallocationQueue', () => {
  it('forgets claimed clusters and coalesces the rest', async () => {
    const file = new LoggingFile();
    await file.write(new Uint8Array(16 * 512).fill(1), 0);
    const queue = new DeallocationQueue(file, 512);
    for (const cluster of [3, 4, 5, 6, 9, 12, 13]) queue.freed(cluster);
    queue.claimed(5);
    queue.claimed(12);
    expect(queue.pending).toBe(5);
    expect(await queue.release()).toBe(5);
    expect(file.punched).toEqual([
      [3 * 512, 1024],
      [6 * 512, 512],
      [9 * 512, 512],
      [13 * 512, 512],
    ]);
    expect(await queue.release()).toBe(0);
  });

  it('leaves the clusters a tail cut took to the cut', async () => {
    const file = new LoggingFile();
    await file.write(new Uint8Array(16 * 512).fill(1), 0);
    const queue = new DeallocationQueue(file, 512);
    for (const cluster of [2, 3, 9, 10, 11, 14, 15]) queue.freed(cluster);
    expect(await queue.release(async () => 10)).toBe(7);
    expect(file.punched).toEqual([
      [2 * 512, 1024],
      [9 * 512, 512],
    ]);
  });

  it('queues nothing for a file that cannot deallocate', async () => {
    const queue = new DeallocationQueue(new MemoryBlockFile(), 512);
    queue.freed(7);
    expect(queue.pending).toBe(0);
  });
});

async function headerL1(file: MemoryBlockFile): Promise<{ offset: number }> {
  const view = new DataView(file.contents().buffer, file.contents().byteOffset);
  return { offset: view.getUint32(40) * 2 ** 32 + view.getUint32(44) };
}
