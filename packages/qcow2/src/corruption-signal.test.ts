import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeHeader, decodeL1Entry, decodeL2Entry, encodeCompressedDescriptor, geometryOf, INCOMPAT_CORRUPT, view } from '@q/format';
import { DiskError, isDiskError, MemoryBlockFile } from '@q/raw';
import type { Codecs } from './codecs.js';
import { portableCodecs } from './portable-codecs.js';
import { Qcow2Image } from './qcow2-image.js';

// Which read failures mark a writable image corrupt: broken metadata does, compressed data that does not
// decompress does not (QEMU reports EIO and leaves the bit clear). The decision is the error's code and reason;
// tests/hostile/src/corrupt-bit.test.ts compares the same cases with qemu-io.

const fixtures = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'images');

function fixture(name: string): MemoryBlockFile {
  return new MemoryBlockFile(new Uint8Array(readFileSync(join(fixtures, name))), { name, writable: true });
}

/** File position of the first L2 entry (guest cluster 0), found through the header and the L1 table. */
function firstL2Entry(bytes: Uint8Array): { at: number; clusterBits: number } {
  const header = decodeHeader(bytes);
  const v = view(bytes);
  const l1 = decodeL1Entry(v.getUint32(header.l1TableOffset), v.getUint32(header.l1TableOffset + 4));
  return { at: l1.l2Offset, clusterBits: header.clusterBits };
}

function setDescriptor(file: MemoryBlockFile, hostOffset: number, bytes: number): void {
  const contents = file.contents();
  const { at, clusterBits } = firstL2Entry(contents);
  const [hi, lo] = encodeCompressedDescriptor(hostOffset, bytes, clusterBits);
  view(contents).setUint32(at, hi);
  view(contents).setUint32(at + 4, lo);
}

function markedCorrupt(file: MemoryBlockFile): boolean {
  return (decodeHeader(file.contents()).incompatibleFeatures & INCOMPAT_CORRUPT) !== 0n;
}

async function readFailure(file: MemoryBlockFile, options: Parameters<typeof Qcow2Image.open>[1] = {}): Promise<DiskError> {
  const image = await Qcow2Image.open(file, { writable: true, codecs: portableCodecs(), ...options });
  const error: unknown = await image.read(new Uint8Array(4096), 0).then(
    () => undefined,
    (failure: unknown) => failure,
  );
  await image.close().catch(() => undefined);
  if (!isDiskError(error)) throw new Error(`expected a DiskError, got ${String(error)}`);
  return error;
}

describe('the corrupt bit after a failed read of a writable image', () => {
  it('stays clear for a compressed stream that does not inflate (reason compressed-data)', async () => {
    const file = fixture('zlib-4k.qcow2');
    const contents = file.contents();
    const { at, clusterBits } = firstL2Entry(contents);
    const geometry = geometryOf(decodeHeader(contents));
    const entry = decodeL2Entry(view(contents.subarray(at, at + 8)), 0, geometry);
    expect(entry.compressed && clusterBits === 12).toBe(true);
    contents.fill(0xff, entry.hostOffset, entry.hostOffset + 64);
    const error = await readFailure(file);
    expect(error).toMatchObject({ code: 'E_CORRUPT', reason: 'compressed-data' });
    expect(markedCorrupt(file)).toBe(false);
  });

  it('stays clear when an injected codec fails with an unclassified DiskError', async () => {
    const failing: Codecs = {
      zlib: {
        decompress() {
          throw new DiskError('E_CORRUPT', 'this codec dislikes every stream');
        },
      },
    };
    const file = fixture('zlib-4k.qcow2');
    const error = await readFailure(file, { codecs: failing });
    expect(error).toMatchObject({ code: 'E_CORRUPT', reason: 'compressed-data', file: 'zlib-4k.qcow2' });
    expect(markedCorrupt(file)).toBe(false);
  });

  it('stays clear for a compressed descriptor into the header (reason compressed-offset)', async () => {
    const file = fixture('zlib-4k.qcow2');
    setDescriptor(file, 0x200, 1024);
    const error = await readFailure(file);
    expect(error).toMatchObject({ code: 'E_CORRUPT', reason: 'compressed-offset' });
    expect(markedCorrupt(file)).toBe(false);
  });

  it('is set for a compressed entry in an image with an external data file (broken metadata)', async () => {
    const file = fixture('datafile.qcow2');
    setDescriptor(file, 0x50000, 1024);
    const dataFile = fixture('datafile.raw');
    const error = await readFailure(file, { openDataFile: async () => dataFile });
    expect(error.code).toBe('E_CORRUPT');
    expect(error.reason).toBeUndefined();
    expect(markedCorrupt(file)).toBe(true);
  });
});
