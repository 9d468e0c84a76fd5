import { describe, expect, it } from 'vitest';
import { checkImage } from '@q/check';
import { MemoryBlockFile, RawDisk, type BlockFile } from '@q/raw';
import { expectSameBytes } from '@q/raw/conformance';
import { defaultCreateOptions, type CreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { Qcow2Image } from './qcow2-image.js';
import type { Qcow2OpenOptions } from './qcow2-open.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Writes that reach a file, in order: what the batching is about (one data write per contiguous host run). */
class RecordingFile {
  readonly writes: Array<{ offset: number; length: number }> = [];
  readonly file: BlockFile;

  constructor(readonly inner: MemoryBlockFile) {
    this.file = {
      name: inner.name,
      capabilities: inner.capabilities,
      read: (dst, offset) => inner.read(dst, offset),
      write: (src, offset) => {
        this.writes.push({ offset, length: src.length });
        return inner.write(src, offset);
      },
      flush: () => inner.flush(),
      size: () => inner.size(),
      truncate: (length) => inner.truncate(length),
      close: async () => undefined,
    };
  }

  /** Writes recorded while `action` ran. */
  async during(action: () => Promise<void>): Promise<Array<{ offset: number; length: number }>> {
    const from = this.writes.length;
    await action();
    return this.writes.slice(from);
  }
}

async function created(size: number, options: Partial<CreateOptions> = {}, dataFile?: RecordingFile): Promise<RecordingFile> {
  const file = new RecordingFile(new MemoryBlockFile(new Uint8Array(0), { name: 'memory.qcow2' }));
  await createQcow2(file.file, { ...defaultCreateOptions(size), ...options }, { openDataFile: async () => dataFile!.file });
  return file;
}

/** Bytes where each 512-byte sector carries its own number and `seed`: a misplaced cluster shows. */
function pattern(length: number, seed: number, base = 0): Uint8Array {
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  for (let at = 0; at < length; at += 512) {
    view.setUint32(at, (base + at) / 512);
    bytes.fill(seed, at + 4, at + 512);
  }
  return bytes;
}

async function readAt(image: Qcow2Image, offset: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await image.read(bytes, offset);
  return bytes;
}

/** qemu-img check's verdict on the image bytes: neither corruptions nor leaks. */
async function expectClean(file: RecordingFile): Promise<void> {
  const report = await checkImage(file.inner);
  expect({ corruptions: report.corruptions, leaks: report.leaks, checkErrors: report.checkErrors }).toEqual({ corruptions: 0, leaks: 0, checkErrors: 0 });
}

function open(file: RecordingFile, options: Qcow2OpenOptions = {}): Promise<Qcow2Image> {
  return Qcow2Image.open(file.file, { writable: true, ...options });
}

describe('WritePath: one data write per contiguous host run', () => {
  it('allocates the clusters a write covers whole as one run, written with one write', async () => {
    const file = await created(16 * MiB);
    const image = await open(file);
    const data = pattern(MiB, 1, 2 * MiB);
    const writes = await file.during(() => image.write(data, 2 * MiB));
    // One L2 table (a cluster, plus its L1 entry) and one data write of 16 clusters.
    expect(writes.filter((w) => w.length > 64 * KiB)).toHaveLength(1);
    expect(writes.filter((w) => w.length === MiB)).toHaveLength(1);
    const extents = await image.map(2 * MiB, MiB);
    expect(extents.map((e) => [e.kind, e.length])).toEqual([['data', MiB]]);
    expectSameBytes(await readAt(image, 2 * MiB, MiB), data);
    await image.close();
    await expectClean(file);
  });

  it('rewrites clusters it owns in place, one write per contiguous host run', async () => {
    const file = await created(16 * MiB);
    const image = await open(file);
    // Clusters 0 and 2 first, then 1 and 3: host order 0 2 1 3, so guest 0-3 is four one-cluster host runs.
    await image.write(pattern(64 * KiB, 1, 0), 0);
    await image.write(pattern(64 * KiB, 1, 128 * KiB), 128 * KiB);
    await image.write(pattern(64 * KiB, 1, 64 * KiB), 64 * KiB);
    await image.write(pattern(64 * KiB, 1, 192 * KiB), 192 * KiB);
    await image.write(pattern(MiB, 1, 256 * KiB), 256 * KiB);
    // From the middle of cluster 1 to the middle of cluster 18: host runs [1 (half)] [2] [3 ... 18 (half)].
    const data = pattern(17 * 64 * KiB, 2, 96 * KiB);
    const writes = await file.during(() => image.write(data, 96 * KiB));
    expect(writes.map((w) => w.length)).toEqual([32 * KiB, 64 * KiB, 15 * 64 * KiB + 32 * KiB]);
    expectSameBytes(await readAt(image, 96 * KiB, data.length), data);
    expectSameBytes(await readAt(image, 0, 96 * KiB), pattern(96 * KiB, 1, 0));
    await image.close();
    await expectClean(file);
  });

  it('copies on write for a partial head and tail over a backing file, and batches the whole clusters between', async () => {
    const size = 8 * MiB;
    const base = pattern(size, 0x5a);
    const openBacking = (): Promise<RawDisk> => RawDisk.open(new MemoryBlockFile(base));
    const file = await created(size, { backingFile: 'base.raw', backingFormat: 'raw' });
    const image = await open(file, { openBacking });
    const data = pattern(10 * 64 * KiB, 7, 100 * KiB);
    const writes = await file.during(() => image.write(data, 100 * KiB));
    // Head (cluster 1) and tail (cluster 11) each get their own span; clusters 2-10 one run.
    expect(writes.filter((w) => w.length === 9 * 64 * KiB)).toHaveLength(1);
    const expected = base.slice();
    expected.set(data, 100 * KiB);
    expectSameBytes(await readAt(image, 0, size), expected);
    await image.close();
    await expectClean(file);
    const reopened = await open(file, { openBacking });
    expectSameBytes(await readAt(reopened, 0, size), expected);
    await reopened.close();
  });

  it('writes a run across an L2 table boundary with one data write and both tables updated', async () => {
    // 4 KiB clusters: an L2 table maps 512 clusters (2 MiB).
    const file = await created(8 * MiB, { clusterBits: 12 });
    const image = await open(file);
    const data = pattern(64 * KiB, 3, 2 * MiB - 32 * KiB);
    const writes = await file.during(() => image.write(data, 2 * MiB - 32 * KiB));
    expect(writes.filter((w) => w.length === 64 * KiB)).toHaveLength(1);
    expect((await image.map(2 * MiB - 32 * KiB, 64 * KiB)).map((e) => [e.kind, e.length])).toEqual([['data', 64 * KiB]]);
    await image.close();
    await expectClean(file);
    const reopened = await open(file);
    expectSameBytes(await readAt(reopened, 2 * MiB - 32 * KiB, 64 * KiB), data);
    expect((await readAt(reopened, 0, 2 * MiB - 32 * KiB)).every((b) => b === 0)).toBe(true);
    await reopened.close();
  });

  it('with extended L2, keeps a partly allocated cluster where it is and fills its subclusters; zero subclusters go', async () => {
    const file = await created(8 * MiB, { extendedL2: true });
    let image = await open(file);
    // Cluster 1: one 2 KiB subcluster of data; cluster 2: zero subclusters; then a run over clusters 0-3.
    await image.write(pattern(2 * KiB, 9, 64 * KiB + 4 * KiB), 64 * KiB + 4 * KiB);
    await image.writeZeroes(128 * KiB + 8 * KiB, 8 * KiB);
    const before = await image.map(64 * KiB, 64 * KiB);
    const host1 = before.find((e) => e.kind === 'data')!;
    const data = pattern(256 * KiB, 4, 0);
    await image.write(data, 0);
    const after = await image.map(0, 256 * KiB);
    expect(after.every((e) => e.kind === 'data')).toBe(true);
    const cluster1 = after.find((e) => e.guestOffset <= 64 * KiB && e.guestOffset + e.length > 64 * KiB)! as { hostOffset: number; guestOffset: number };
    expect(cluster1.hostOffset + (64 * KiB - cluster1.guestOffset)).toBe((host1 as { hostOffset: number }).hostOffset - 4 * KiB);
    await image.close();
    await expectClean(file);
    image = await open(file);
    expectSameBytes(await readAt(image, 0, 256 * KiB), data);
    await image.close();
  });

  it('writes a run into an external data file at the guest offset, in one write', async () => {
    const dataFile = new RecordingFile(new MemoryBlockFile(new Uint8Array(0), { name: 'data.raw' }));
    const file = await created(8 * MiB, { dataFile: 'data.raw' }, dataFile);
    const image = await open(file, { openDataFile: async () => dataFile.file });
    const data = pattern(MiB, 5, MiB);
    const writes = await dataFile.during(() => image.write(data, MiB));
    expect(writes).toEqual([{ offset: MiB, length: MiB }]);
    expectSameBytes(dataFile.inner.contents().subarray(MiB, 2 * MiB), data);
    // And again in place: still one write.
    expect(await dataFile.during(() => image.write(pattern(MiB, 6, MiB), MiB))).toEqual([{ offset: MiB, length: MiB }]);
    await image.close();
    await expectClean(file);
  });

  it('gives clusters shared with a snapshot new hosts and leaves the snapshot its own', async () => {
    const file = await created(8 * MiB);
    let image = await open(file);
    const old = pattern(MiB, 1, 0);
    await image.write(old, 0);
    await image.createSnapshot('s1');
    const data = pattern(MiB, 2, 0);
    await image.write(data, 0);
    await image.close();
    await expectClean(file);
    image = await open(file);
    expectSameBytes(await readAt(image, 0, MiB), data);
    await image.close();
    const snapshot = await Qcow2Image.open(file.file, { snapshot: 's1' });
    expectSameBytes(await readAt(snapshot, 0, MiB), old);
    await snapshot.close();
  });

  it('never deadlocks or tears a cluster when overlapping runs, partial writes and discards race', async () => {
    const file = await created(8 * MiB);
    const image = await open(file);
    const requests: Promise<void>[] = [];
    for (let i = 0; i < 24; i++) {
      const offset = (i % 5) * 128 * KiB;
      if (i % 6 === 5) requests.push(image.discard(offset, 256 * KiB));
      else requests.push(image.write(new Uint8Array(i % 4 === 3 ? 100 * KiB : 512 * KiB).fill(i + 1), offset));
    }
    await Promise.all(requests);
    await image.flush();
    // Each cluster holds one request's bytes, whole (requests are cluster aligned; the 100 KiB ones end mid-cluster).
    const back = await readAt(image, 0, 2 * MiB);
    for (let cluster = 0; cluster < 32; cluster++) {
      const part = back.subarray(cluster * 64 * KiB, cluster * 64 * KiB + 36 * KiB);
      expect(part.every((b) => b === part[0]), `cluster ${cluster}`).toBe(true);
    }
    await image.close();
    await expectClean(file);
  });
});
