import { describe, expect, it } from 'vitest';
import { decodeHeader, encodeHeader, hasQcowMagic } from './header.js';
import { decodeBackingFileName, decodeHeaderExtensions } from './header-extensions.js';
import { INCOMPAT_DATA_FILE, INCOMPAT_EXTENDED_L2, EXT_FEATURE_NAMES } from './limits.js';
import { fixtureBytes } from './test-fixtures.js';

describe('decodeHeader on images made by qemu-img', () => {
  it('reads a default v3 header (64 KiB clusters, QEMU default layout)', () => {
    const h = decodeHeader(fixtureBytes('v3-64k.qcow2'));
    expect(h).toMatchObject({
      version: 3,
      clusterBits: 16,
      size: 4 * 1024 * 1024,
      cryptMethod: 0,
      l1Size: 1,
      l1TableOffset: 0x30000,
      refcountTableOffset: 0x10000,
      refcountTableClusters: 1,
      nbSnapshots: 0,
      refcountOrder: 4,
      headerLength: 112,
      compressionType: 0,
      incompatibleFeatures: 0n,
    });
  });

  it('reads a v2 header (fixed 72 bytes, refcount order 4)', () => {
    const h = decodeHeader(fixtureBytes('v2-512.qcow2'));
    expect(h).toMatchObject({ version: 2, clusterBits: 9, headerLength: 72, refcountOrder: 4, size: 1024 * 1024 });
  });

  it('reads refcount orders, compression type and feature bits', () => {
    expect(decodeHeader(fixtureBytes('refcount1-4k.qcow2')).refcountOrder).toBe(0);
    expect(decodeHeader(fixtureBytes('refcount64.qcow2')).refcountOrder).toBe(6);
    expect(decodeHeader(fixtureBytes('zstd-64k.qcow2')).compressionType).toBe(1);
    expect(decodeHeader(fixtureBytes('extl2-32k.qcow2')).incompatibleFeatures & INCOMPAT_EXTENDED_L2).toBe(INCOMPAT_EXTENDED_L2);
    expect(decodeHeader(fixtureBytes('datafile.qcow2')).incompatibleFeatures & INCOMPAT_DATA_FILE).toBe(INCOMPAT_DATA_FILE);
    expect(decodeHeader(fixtureBytes('snapshots.qcow2')).nbSnapshots).toBe(2);
  });

  it('round-trips every fixture header through encodeHeader', () => {
    for (const name of ['v3-64k.qcow2', 'v2-512.qcow2', 'zstd-64k.qcow2', 'extl2-32k.qcow2', 'chain-top.qcow2']) {
      const bytes = fixtureBytes(name);
      const header = decodeHeader(bytes);
      expect(encodeHeader(header), name).toEqual(bytes.subarray(0, header.headerLength));
    }
  });

  it('recognises the magic', () => {
    expect(hasQcowMagic(fixtureBytes('v3-64k.qcow2'))).toBe(true);
    expect(hasQcowMagic(new Uint8Array([0x51, 0x46, 0x49]))).toBe(false);
  });
});

describe('decodeHeaderExtensions on images made by qemu-img', () => {
  it('finds the feature name table QEMU writes', () => {
    const bytes = fixtureBytes('v3-64k.qcow2');
    const ext = decodeHeaderExtensions(bytes, decodeHeader(bytes));
    expect(ext.all.map((e) => e.type)).toEqual([EXT_FEATURE_NAMES]);
    expect(ext.featureNames).toContainEqual({ kind: 'incompatible', bit: 0, name: 'dirty bit' });
    expect(ext.featureNames).toContainEqual({ kind: 'compatible', bit: 0, name: 'lazy refcounts' });
    expect(ext.featureNames).toContainEqual({ kind: 'autoclear', bit: 1, name: 'raw external data' });
  });

  it('reads the backing format and backing file name', () => {
    const bytes = fixtureBytes('chain-top.qcow2');
    const header = decodeHeader(bytes);
    const ext = decodeHeaderExtensions(bytes, header);
    expect(ext.backingFormat).toBe('qcow2');
    expect(decodeBackingFileName(bytes, header)).toBe('chain-mid.qcow2');
    const mid = fixtureBytes('chain-mid.qcow2');
    expect(decodeHeaderExtensions(mid, decodeHeader(mid)).backingFormat).toBe('raw');
  });

  it('reads the external data file name and the bitmaps extension', () => {
    const data = fixtureBytes('datafile.qcow2');
    expect(decodeHeaderExtensions(data, decodeHeader(data)).dataFile).toBe('datafile.raw');
    const bitmaps = fixtureBytes('bitmaps.qcow2');
    const ext = decodeHeaderExtensions(bitmaps, decodeHeader(bitmaps));
    expect(ext.bitmaps).toMatchObject({ nbBitmaps: 2 });
    expect(ext.bitmaps!.directoryOffset % 16384).toBe(0);
  });

  it('skips an unknown extension and keeps it', () => {
    const bytes = fixtureBytes('v3-64k.qcow2').slice(0, 65536);
    const header = decodeHeader(bytes);
    // Move QEMU's extensions down by 16 bytes and put an unknown 5-byte extension first.
    const area = bytes.slice(header.headerLength, 4096);
    const view = new DataView(bytes.buffer);
    view.setUint32(header.headerLength, 0x12345678);
    view.setUint32(header.headerLength + 4, 5);
    bytes.set([1, 2, 3, 4, 5, 0, 0, 0], header.headerLength + 8);
    bytes.set(area.subarray(0, 4096 - header.headerLength - 16), header.headerLength + 16);
    const ext = decodeHeaderExtensions(bytes, header);
    expect(ext.all[0]).toEqual({ type: 0x12345678, data: new Uint8Array([1, 2, 3, 4, 5]) });
    expect(ext.featureNames.length).toBeGreaterThan(5);
  });
});
