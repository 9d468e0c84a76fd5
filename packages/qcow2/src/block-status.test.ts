import { describe, expect, it } from 'vitest';
import { MemoryBlockFile, type FileRun } from '@q/raw';
import { defaultCreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { portableCodecs } from './portable-codecs.js';
import { Qcow2Image } from './qcow2-image.js';

const CLUSTER = 64 * 1024;

/** A memory file that claims a hole at `hole` and occupies `allocated` bytes, as a sparse file would. */
class SparseFile extends MemoryBlockFile {
  allocated = 0;
  hole: [number, number] = [0, 0];

  async runAt(offset: number, length: number): Promise<FileRun> {
    const [start, end] = this.hole;
    if (offset >= start && offset < end) return { data: false, length: Math.min(length, end - offset) };
    return { data: true, length: Math.min(length, (offset < start ? start : Infinity) - offset) };
  }

  async allocatedSize(): Promise<number> {
    return this.allocated;
  }

  /** Keeps the bytes for the next open. */
  override async close(): Promise<void> {}
}

/** A 4 MiB image with its first 16 clusters written, in a SparseFile; `host` is where its data starts. */
async function written(writable: boolean): Promise<{ file: SparseFile; host: number; open(): Promise<Qcow2Image> }> {
  const file = new SparseFile();
  await createQcow2(file, defaultCreateOptions(4 << 20));
  const image = await Qcow2Image.open(file, { writable: true, codecs: portableCodecs() });
  await image.write(new Uint8Array(16 * CLUSTER).fill(0x61), 0);
  const [extent] = await image.map(0, CLUSTER);
  await image.close();
  return { file, host: extent?.kind === 'data' ? extent.hostOffset : -1, open: () => Qcow2Image.open(file, { writable, codecs: portableCodecs() }) };
}

describe('block status: holes of the host file inside data clusters', () => {
  for (const writable of [false, true]) {
    it(`are reported (zero and data) where the image looks preallocated, as qemu-img does (${writable ? 'writable' : 'read-only'})`, async () => {
      const { file, host, open } = await written(writable);
      // 21 clusters in use (header, tables, 16 data); 19 allocated: max(floor(190/9), 21) = 21 clusters, reached.
      file.allocated = 19 * CLUSTER + 4096;
      file.hole = [host + 4096, host + 3 * 4096];
      const image = await open();
      expect(await image.blockStatus(0, 2 * CLUSTER)).toEqual([
        { offset: 0, length: 4096, kind: 'data', hostOffset: host, hostFile: 'memory' },
        { offset: 4096, length: 8192, kind: 'data', hostOffset: host + 4096, hostFile: 'memory', hole: true },
        { offset: 12288, length: 2 * CLUSTER - 12288, kind: 'data', hostOffset: host + 12288, hostFile: 'memory' },
      ]);
      await image.close();
    });
  }

  it('are not looked for where the file holds nearly all it maps (QEMU reports a partly written cluster as data)', async () => {
    const { file, host, open } = await written(false);
    file.allocated = 20 * CLUSTER;
    file.hole = [host + 4096, host + 3 * 4096];
    const image = await open();
    expect(await image.blockStatus(0, 2 * CLUSTER)).toEqual([{ offset: 0, length: 2 * CLUSTER, kind: 'data', hostOffset: host, hostFile: 'memory' }]);
    await image.close();
  });
});
