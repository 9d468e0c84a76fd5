import { describe, expect, it } from 'vitest';
import type { BlockDevice, BlockStatus } from '@q/raw';
import { copyDevice, surveySource } from './copy-device.js';
import type { RawTarget } from './raw-target.js';

const MiB = 1024 * 1024;

/**
 * A 16 MiB device: 8 MiB of plain data, then 8 MiB stored compressed (or plain too); reads fill each byte with its
 * MiB index.
 */
function device(reads: Array<[offset: number, length: number]>, compressed = true): BlockDevice {
  const status: BlockStatus[] = [
    { offset: 0, length: 8 * MiB, kind: 'data', hostOffset: 1 * MiB, hostFile: 'src' },
    compressed ? { offset: 8 * MiB, length: 8 * MiB, kind: 'data', compressed: true } : { offset: 8 * MiB, length: 8 * MiB, kind: 'data', hostOffset: 12 * MiB, hostFile: 'src' },
  ];
  return {
    name: 'src',
    format: 'qcow2',
    size: 16 * MiB,
    readOnly: true,
    backing: undefined,
    read: async (dst, offset) => {
      reads.push([offset, dst.length]);
      for (let at = 0; at < dst.length; at++) dst[at] = Math.floor((offset + at) / MiB);
    },
    blockStatus: async (offset, length) =>
      status.filter((s) => s.offset < offset + length && s.offset + s.length > offset),
    write: () => Promise.reject(new Error('read-only')),
    writeZeroes: () => Promise.reject(new Error('read-only')),
    discard: () => Promise.reject(new Error('read-only')),
    flush: async () => undefined,
    close: async () => undefined,
  };
}

function memoryTarget(size: number): RawTarget & { bytes: Uint8Array } {
  const bytes = new Uint8Array(size);
  return {
    bytes,
    ordered: false,
    write: async (src, offset) => void bytes.set(src, offset),
    zero: async (offset, length) => void bytes.fill(0, offset, offset + length),
    close: async () => undefined,
  };
}

describe('copyDevice', () => {
  it('surveys whether the source stores data compressed, and copies with that survey', async () => {
    expect((await surveySource(device([]))).compressed).toBe(true);
    expect((await surveySource(device([], false))).compressed).toBe(false);
    const reads: Array<[number, number]> = [];
    const target = memoryTarget(16 * MiB);
    const source = device(reads);
    await copyDevice(source, target, { parallel: 2, chunkBytes: 4 * MiB, compressedChunkBytes: 2 * MiB }, await surveySource(source));
    expect(reads.length).toBe(8);
    for (let mib = 0; mib < 16; mib++) expect(target.bytes[mib * MiB + 12345]).toBe(mib);
  });

  it('reads a source with compressed data in compressedChunkBytes pieces, its plain data too', async () => {
    const reads: Array<[number, number]> = [];
    const target = memoryTarget(16 * MiB);
    await copyDevice(device(reads), target, { parallel: 3, chunkBytes: 4 * MiB, compressedChunkBytes: 1 * MiB });
    expect([...reads].sort((a, b) => a[0] - b[0])).toEqual(Array.from({ length: 16 }, (_, i) => [i * MiB, MiB]));
    for (let mib = 0; mib < 16; mib++) expect(target.bytes[mib * MiB + 12345]).toBe(mib);
  });

  it('reads a source without compressed data in chunkBytes pieces', async () => {
    const reads: Array<[number, number]> = [];
    const target = memoryTarget(16 * MiB);
    await copyDevice(device(reads, false), target, { parallel: 3, chunkBytes: 4 * MiB, compressedChunkBytes: 1 * MiB });
    expect([...reads].sort((a, b) => a[0] - b[0])).toEqual(Array.from({ length: 4 }, (_, i) => [i * 4 * MiB, 4 * MiB]));
    for (let mib = 0; mib < 16; mib++) expect(target.bytes[mib * MiB + 12345]).toBe(mib);
  });

  it('looks allocation up in 64 MiB windows after a window of many extents, and still copies every byte', async () => {
    // 1.5 GiB of 64 KiB extents, data and zeros by turns: 16384 extents in the first GiB.
    const size = 1536 * MiB;
    const step = 64 * 1024;
    const asked: Array<[number, number]> = [];
    const source: BlockDevice = {
      ...device([]),
      size,
      read: async () => undefined,
      blockStatus: async (offset, length) => {
        asked.push([offset, length]);
        const out: BlockStatus[] = [];
        for (let at = offset; at < offset + length; at += step) out.push({ offset: at, length: step, kind: (at / step) % 2 === 0 ? 'data' : 'zero' });
        return out;
      },
    };
    const covered: Array<[number, number]> = [];
    const target: RawTarget = {
      ordered: false,
      write: async (src, offset) => void covered.push([offset, src.length]),
      zero: async (offset, length) => void covered.push([offset, length]),
      close: async () => undefined,
    };
    await copyDevice(source, target, { parallel: 4, chunkBytes: 4 * MiB });
    expect(asked[0]).toEqual([0, 1024 * MiB]);
    expect(asked.slice(1)).toEqual(Array.from({ length: 8 }, (_, i) => [1024 * MiB + i * 64 * MiB, 64 * MiB]));
    covered.sort((a, b) => a[0] - b[0]);
    let end = 0;
    for (const [offset, length] of covered) {
      expect(offset).toBe(end);
      end = offset + length;
    }
    expect(end).toBe(size);
  });
});
