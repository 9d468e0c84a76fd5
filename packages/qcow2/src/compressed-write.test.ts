import { checkImage } from '@q/check';
import { MemoryBlockFile, RecordingBlockFile } from '@q/raw';
import { decodeHeader } from '@q/format';
import { describe, expect, it } from 'vitest';
import { defaultCreateOptions, type CreateOptions } from './create-image.js';
import { createQcow2 } from './create-qcow2.js';
import { nodeCodecs } from './node-codecs.js';
import { nodeCompressor } from './node-compressors.js';
import { unclosable } from './memory-image.js';
import { Qcow2Image } from './qcow2-image.js';

const KiB = 1024;
const CLUSTER = 4 * KiB;

/** A fresh image in memory (4 KiB clusters) and its file, so the bytes can be checked after the image is closed. */
async function freshImage(size: number, options: Partial<CreateOptions> = {}): Promise<{ image: Qcow2Image; file: MemoryBlockFile }> {
  const file = new MemoryBlockFile(new Uint8Array(0), { name: 'compressed.qcow2', deallocate: true });
  const keepOpen = unclosable(file);
  await createQcow2(keepOpen, { ...defaultCreateOptions(size), clusterBits: 12, ...options });
  return { image: await Qcow2Image.open(file, { writable: true, codecs: nodeCodecs() }), file };
}

const zlib = nodeCompressor('zlib');
const compressed = (fill: number): Uint8Array => zlib.compress(new Uint8Array(CLUSTER).fill(fill))!;

async function hostOf(image: Qcow2Image, cluster: number): Promise<number | undefined> {
  const [extent] = await image.map(cluster * CLUSTER, CLUSTER);
  return extent?.kind === 'compressed' || extent?.kind === 'data' ? extent.hostOffset : undefined;
}

async function expectReads(image: Qcow2Image, cluster: number, fill: number): Promise<void> {
  const back = new Uint8Array(CLUSTER);
  await image.read(back, cluster * CLUSTER);
  const wrong = back.findIndex((byte) => byte !== fill);
  expect(wrong, `guest cluster ${cluster} byte ${wrong} is 0x${back[wrong]?.toString(16)}, not 0x${fill.toString(16)}`).toBe(-1);
}

async function expectClean(image: Qcow2Image, file: MemoryBlockFile): Promise<void> {
  await image.close();
  const report = await checkImage(new MemoryBlockFile(file.contents().slice(), { name: 'compressed.qcow2', writable: false }));
  expect(report.messages).toEqual([]);
  expect({ corruptions: report.corruptions, leaks: report.leaks }).toEqual({ corruptions: 0, leaks: 0 });
}

describe('Qcow2Image.writeCompressed', () => {
  it('packs consecutive compressed clusters into one host cluster, in sequence or all at once', async () => {
    const { image, file } = await freshImage(1 << 20);
    await image.writeCompressed(0, compressed(1));
    await image.writeCompressed(CLUSTER, compressed(2));
    await Promise.all([3, 4, 5].map((fill, i) => image.writeCompressed((2 + i) * CLUSTER, compressed(fill))));
    const hosts = await Promise.all([0, 1, 2, 3, 4].map((cluster) => hostOf(image, cluster)));
    expect(new Set(hosts.map((host) => Math.floor(host! / CLUSTER))).size).toBe(1);
    for (const [i, fill] of [1, 2, 3, 4, 5].entries()) await expectReads(image, i, fill);
    await expectClean(image, file);
  });

  // The run's host cluster was freed (its only compressed cluster discarded) and handed out again as a data
  // cluster; the next compressed cluster was packed after the old run's end, into that data cluster, overwriting
  // another guest cluster's bytes.
  it('regression: compressed run continued into a freed host cluster reused for data', async () => {
    const { image, file } = await freshImage(1 << 20);
    await image.writeCompressed(0, compressed(1));
    const shared = Math.floor((await hostOf(image, 0))! / CLUSTER);
    await image.discard(0, CLUSTER);
    await image.flush();
    await image.write(new Uint8Array(CLUSTER).fill(0x55), 5 * CLUSTER);
    expect(Math.floor((await hostOf(image, 5))! / CLUSTER)).toBe(shared); // the freed cluster, reused
    await image.writeCompressed(CLUSTER, compressed(2));
    expect(Math.floor((await hostOf(image, 1))! / CLUSTER)).not.toBe(shared);
    await expectReads(image, 5, 0x55);
    await expectReads(image, 1, 2);
    await expectClean(image, file);
  });

  it('a compressed cluster overwritten by plain data, with no flush before the next compressed write', async () => {
    const { image, file } = await freshImage(1 << 20);
    await image.writeCompressed(0, compressed(1));
    await image.write(new Uint8Array(CLUSTER).fill(0x66), 0);
    await image.write(new Uint8Array(CLUSTER).fill(0x77), 9 * CLUSTER);
    await image.writeCompressed(CLUSTER, compressed(2));
    await expectReads(image, 0, 0x66);
    await expectReads(image, 9, 0x77);
    await expectReads(image, 1, 2);
    await expectClean(image, file);
  });

  // The same, with the freed cluster taken by a new L2 table: the overlap check refused the compressed write and
  // marked a healthy image corrupt.
  it('regression: compressed run continued into a freed host cluster reused for an L2 table', async () => {
    const { image, file } = await freshImage(64 << 20);
    await image.writeCompressed(0, compressed(1));
    await image.discard(0, CLUSTER);
    await image.flush();
    // 4 KiB clusters: an L2 table maps 2 MiB; a write at 40 MiB needs a new table (and a data cluster).
    await image.write(new Uint8Array(CLUSTER).fill(0x44), 40 << 20);
    await image.writeCompressed(CLUSTER, compressed(2));
    await expectReads(image, (40 << 20) / CLUSTER, 0x44);
    await expectReads(image, 1, 2);
    await expectClean(image, file);
  });

  it('keeps packing after plain writes that leave the run\'s cluster alone', async () => {
    const { image, file } = await freshImage(1 << 20);
    await image.writeCompressed(0, compressed(1));
    await image.write(new Uint8Array(CLUSTER).fill(9), 7 * CLUSTER);
    await image.writeCompressed(CLUSTER, compressed(2));
    expect(Math.floor((await hostOf(image, 1))! / CLUSTER)).toBe(Math.floor((await hostOf(image, 0))! / CLUSTER));
    await expectClean(image, file);
  });

  // With lazy refcounts the flush wrote L2 tables back with no sync after the data: a crash could keep an L2 entry
  // naming compressed bytes that never landed (tests/crash: compressed-4k-zlib-lazy).
  it('regression: lazy refcounts: L2 table written back before the compressed data it names was synced', async () => {
    const { image: created, file } = await freshImage(1 << 20, { lazyRefcounts: true });
    await created.writeCompressed(0, compressed(1));
    await created.close();
    const bytes = file.contents().slice();
    const header = decodeHeader(bytes);
    // L1 entry 0 names the L2 table (bits 9..55).
    const l2Table = Number(new DataView(bytes.buffer).getBigUint64(header.l1TableOffset) & 0x00ff_ffff_ffff_fe00n);
    const recording = await RecordingBlockFile.wrap(new MemoryBlockFile(bytes, { name: 'lazy.qcow2' }));
    const image = await Qcow2Image.open(recording, { writable: true, codecs: nodeCodecs() });
    await image.writeCompressed(CLUSTER, compressed(2));
    const data = await hostOf(image, 1);
    await image.flush();
    const ops = recording.ops;
    const dataWrite = ops.findIndex((op) => op.kind === 'write' && op.offset === data);
    const tableWrite = ops.findIndex((op) => op.kind === 'write' && op.offset === l2Table);
    expect(dataWrite).toBeGreaterThanOrEqual(0);
    expect(tableWrite).toBeGreaterThan(dataWrite);
    expect(ops.slice(dataWrite, tableWrite).some((op) => op.kind === 'flush')).toBe(true);
    await image.close();
  });
});
