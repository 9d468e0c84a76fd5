import { describe, expect, it } from 'vitest';
import { MemoryBlockFile, RawDisk } from '@q/raw';
import { defaultCreateOptions, type CreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { Qcow2Image } from './qcow2-image.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A memory file that keeps its bytes when closed, so the image can be reopened and its bytes inspected. */
class KeptFile extends MemoryBlockFile {
  override async close(): Promise<void> {}
}

async function created(size: number, options: Partial<CreateOptions> = {}): Promise<KeptFile> {
  const file = new KeptFile(new Uint8Array(0), { deallocate: true });
  await createQcow2(file, { ...defaultCreateOptions(size), ...options });
  return file;
}

function filled(length: number, pattern: number): Uint8Array {
  return new Uint8Array(length).fill(pattern);
}

async function readAt(image: Qcow2Image, offset: number, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await image.read(bytes, offset);
  return bytes;
}

/** Whether every byte of `bytes` is `value` (a fast check: no per-byte expect). */
function all(bytes: Uint8Array, value: number): boolean {
  return bytes.every((byte) => byte === value);
}

describe('Qcow2Image.makeEmpty', () => {
  for (const [label, options] of [
    ['64 KiB clusters', {}],
    ['512-byte clusters (L1 of two clusters, many L2 tables)', { clusterBits: 9 }],
    ['extended L2', { extendedL2: true }],
    ['compat 0.10', { version: 2 }],
  ] as Array<[string, Partial<CreateOptions>]>) {
    it(`leaves the bytes of a freshly created image (${label})`, async () => {
      const size = 4 * MiB;
      const fresh = (await created(size, options)).contents().slice();
      const file = await created(size, options);
      const image = await Qcow2Image.open(file, { writable: true });
      // Few enough clusters for one refcount block even at 512 bytes: a second block would stay (see README).
      await image.write(filled(96 * KiB, 0x11), 64 * KiB);
      await image.write(filled(512, 0x22), 3 * MiB + 512);
      if (options.version !== 2) await image.writeZeroes(1 * MiB, 128 * KiB);
      await image.makeEmpty();
      expect(all(await readAt(image, 0, size), 0)).toBe(true);
      await image.close();

      const bytes = file.contents();
      const clusterSize = 2 ** (options.clusterBits ?? 16);
      // QEMU's emptied overlay: the fresh layout, cut at the end of the L1 table's last cluster.
      expect(bytes.length).toBe(Math.ceil(fresh.length / clusterSize) * clusterSize);
      expect(Buffer.compare(bytes.subarray(0, fresh.length), fresh)).toBe(0);
      expect(all(bytes.subarray(fresh.length), 0)).toBe(true);
    });
  }

  it('shows the backing file again, zero clusters included', async () => {
    const size = 2 * MiB;
    const backing = await RawDisk.open(new MemoryBlockFile(filled(size, 0x5a)));
    const file = await created(size);
    const open = (): Promise<Qcow2Image> => Qcow2Image.open(file, { writable: true, openBacking: async () => backing });
    await (await open()).setBackingFile('base.raw', 'raw');
    const image = await open();
    await image.write(filled(64 * KiB, 0x01), 0);
    await image.writeZeroes(512 * KiB, 64 * KiB);
    expect((await readAt(image, 512 * KiB, 1))[0]).toBe(0);
    await image.makeEmpty();
    expect(all(await readAt(image, 0, size), 0x5a)).toBe(true);
    expect((await image.blockStatus(0, size)).map((status) => status.kind)).toEqual(['unallocated']);
    await image.close();
  });

  it('keeps every cluster a snapshot still reaches, and new writes never land on them', async () => {
    const size = 4 * MiB;
    const file = await created(size);
    let image = await Qcow2Image.open(file, { writable: true });
    await image.write(filled(1 * MiB, 0x31), 0);
    await image.createSnapshot('s1');
    await image.write(filled(256 * KiB, 0x32), 512 * KiB);
    await image.write(filled(256 * KiB, 0x33), 2 * MiB);
    await image.makeEmpty();
    expect(all(await readAt(image, 0, size), 0)).toBe(true);
    await image.close();

    // Refcounts that went too low would hand the snapshot's clusters out again: fill the disk, then read it back.
    image = await Qcow2Image.open(file, { writable: true });
    await image.write(filled(size, 0x44), 0);
    await image.close();
    const snapshot = await Qcow2Image.open(file, { snapshot: 's1' });
    expect(all(await readAt(snapshot, 0, 1 * MiB), 0x31)).toBe(true);
    expect(all(await readAt(snapshot, 1 * MiB, size - 1 * MiB), 0)).toBe(true);
    await snapshot.close();
    const active = await Qcow2Image.open(file);
    expect(all(await readAt(active, 0, size), 0x44)).toBe(true);
    await active.close();
  });
});
