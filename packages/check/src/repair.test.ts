import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkExitCode, checkImage, formatCheckHuman, type CheckReport } from './index.js';
import { TestImage, fixtureFile } from './test-image.js';

/**
 * Damage committed fixtures in memory in known ways and check what the check reports and what its repairs
 * leave. The oracle suite (tests/check) runs the same damage against qemu-img; these run without QEMU.
 */
function image(name: string): TestImage {
  return new TestImage(fixtureFile(name));
}

/** What the guest sees, independent of flags and refcounts: every active mapping and its cluster's bytes. */
function guestView(img: TestImage): string {
  const hash = createHash('sha256');
  const l1Size = img.u32(36);
  const entries = img.clusterSize / (img.extendedL2 ? 16 : 8);
  for (let i = 0; i < l1Size; i++) {
    if ((img.l1Entry(i) & 0x00ff_ffff_ffff_fe00n) === 0n) continue;
    for (let j = 0; j < entries; j++) {
      const at = img.l2EntryAt(i, j);
      const entry = img.u64(at) & ~(1n << 63n);
      hash.update(`${i}/${j}:${entry.toString(16)}:${img.extendedL2 ? img.u64(at + 8).toString(16) : ''};`);
      const offset = Number(entry & 0x00ff_ffff_ffff_fe00n);
      if ((entry & (1n << 62n)) === 0n && offset !== 0) hash.update(img.bytes.subarray(offset, offset + img.clusterSize));
    }
  }
  return hash.digest('hex');
}

function counts(report: CheckReport): { corruptions: number; leaks: number; checkErrors: number } {
  return { corruptions: report.corruptions, leaks: report.leaks, checkErrors: report.checkErrors };
}

describe('leaks', () => {
  it.each(['v3-64k.qcow2', 'v2-512.qcow2', 'refcount1-4k.qcow2', 'refcount64.qcow2', 'zlib-4k.qcow2', 'snapshots.qcow2', 'extl2-32k.qcow2'])(
    '%s: a leaked cluster is found, and -r leaks frees it',
    async (name) => {
      const img = image(name);
      const view = guestView(img);
      const leaked = await img.leakAppendedCluster();
      const found = await checkImage(img.file);
      expect(counts(found)).toEqual({ corruptions: 0, leaks: 1, checkErrors: 0 });
      expect(found.messages).toEqual([`Leaked cluster ${leaked} refcount=1 reference=0`]);
      expect(checkExitCode(found)).toBe(3);
      expect(formatCheckHuman(found)).toMatch(/^\n1 leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n/);

      const repaired = await checkImage(img.file, { repair: 'leaks' });
      expect(repaired.repaired).toEqual({ leaks: 1, corruptions: 0 });
      expect(repaired.leaksFixed).toBe(1);
      expect(counts(repaired)).toEqual({ corruptions: 0, leaks: 0, checkErrors: 0 });
      expect(repaired.messages).toEqual([`Leaked cluster ${leaked} refcount=1 reference=0`, `Repairing cluster ${leaked} refcount=1 reference=0`]);
      expect(img.refcount(leaked)).toBe(0);
      expect(checkExitCode(await checkImage(img.file))).toBe(0);
      expect(guestView(img)).toBe(view);
    },
  );
});

describe('refcount too low', () => {
  it('refcount 0 on a used cluster: two errors; -r leaks cannot repair it; -r all rebuilds the refcounts', async () => {
    const img = image('v3-64k.qcow2');
    const view = guestView(img);
    const cluster = img.dataCluster(0, 0);
    img.setRefcount(cluster, 0);
    const found = await checkImage(img.file);
    expect(counts(found)).toEqual({ corruptions: 2, leaks: 0, checkErrors: 0 });
    expect(found.messages[0]).toBe(`ERROR cluster ${cluster} refcount=0 reference=1`);
    expect(found.messages[1]).toMatch(/^ERROR OFLAG_COPIED data cluster: l2_entry=8[0-9a-f]+ refcount=0$/);
    expect(checkExitCode(found)).toBe(2);

    const messages: string[] = [];
    await expect(checkImage(img.file, { repair: 'leaks', onMessage: (line) => messages.push(line) })).rejects.toThrow('Input/output error');
    expect(messages).toContain('ERROR need to rebuild refcount structures');

    const repaired = await checkImage(img.file, { repair: 'all' });
    expect(repaired.messages).toContain('Rebuilding refcount structure');
    expect(repaired.repaired).toEqual({ leaks: 0, corruptions: 1 });
    expect(counts(repaired)).toEqual({ corruptions: 0, leaks: 0, checkErrors: 0 });
    expect(img.refcount(cluster)).toBe(1);
    expect(guestView(img)).toBe(view);
  });

  it('a 1-bit refcount image rebuilds with 1-bit blocks', async () => {
    const img = image('refcount1-4k.qcow2');
    const view = guestView(img);
    img.setRefcount(img.dataCluster(0, 0), 0);
    expect(checkExitCode(await checkImage(img.file))).toBe(2);
    const repaired = await checkImage(img.file, { repair: 'all' });
    expect(checkExitCode(repaired)).toBe(0);
    expect(guestView(img)).toBe(view);
  });

  it('a shared cluster one below its references is repaired in place (no rebuild)', async () => {
    const img = image('snapshots.qcow2');
    const view = guestView(img);
    // The snapshot "first" shares the L2 table of the active L1 (refcount 2) until the next write.
    const l2Cluster = Number(img.l1Entry(0) & 0x00ff_ffff_ffff_fe00n) / img.clusterSize;
    const shared = [...Array(img.clusterSize / 8).keys()].map((j) => img.dataCluster(0, j)).find((c) => c !== 0 && img.refcount(c) === 2);
    expect(shared).toBeDefined();
    img.setRefcount(shared!, 1);
    const found = await checkImage(img.file);
    expect(found.messages[0]).toBe(`ERROR cluster ${shared} refcount=1 reference=2`);
    expect(checkExitCode(found)).toBe(2);
    const repaired = await checkImage(img.file, { repair: 'all' });
    expect(repaired.messages).not.toContain('Rebuilding refcount structure');
    expect(repaired.messages[0]).toBe(`ERROR cluster ${shared} refcount=1 reference=2`);
    expect(repaired.messages).toContain(`Repairing cluster ${shared} refcount=1 reference=2`);
    expect(checkExitCode(repaired)).toBe(0);
    expect(img.refcount(shared!)).toBe(2);
    expect(l2Cluster).toBeGreaterThan(0);
    expect(guestView(img)).toBe(view);
  });
});

describe('COPIED flags', () => {
  it('a data cluster at refcount 1 without COPIED is an error that both repair modes fix', async () => {
    for (const repair of ['leaks', 'all'] as const) {
      const img = image('v3-64k.qcow2');
      const view = guestView(img);
      const at = img.l2EntryAt(0, 0);
      const entry = img.u64(at);
      img.setU64(at, entry & ~(1n << 63n));
      const found = await checkImage(img.file);
      expect(found.messages).toEqual([`ERROR OFLAG_COPIED data cluster: l2_entry=${(entry & ~(1n << 63n)).toString(16)} refcount=1`]);
      expect(counts(found)).toEqual({ corruptions: 1, leaks: 0, checkErrors: 0 });
      const repaired = await checkImage(img.file, { repair });
      expect(repaired.repaired).toEqual({ leaks: 0, corruptions: 1 });
      expect(checkExitCode(repaired)).toBe(0);
      expect(img.u64(at)).toBe(entry);
      expect(guestView(img)).toBe(view);
    }
  });

  it('an L1 entry without COPIED is repaired too', async () => {
    const img = image('v3-64k.qcow2');
    const entry = img.l1Entry(0);
    img.setU64(img.l1Offset, entry & ~(1n << 63n));
    const found = await checkImage(img.file);
    expect(found.messages).toEqual([`ERROR OFLAG_COPIED L2 cluster: l1_index=0 l1_entry=${(entry & ~(1n << 63n)).toString(16)} refcount=1`]);
    expect(checkExitCode(await checkImage(img.file, { repair: 'all' }))).toBe(0);
    expect(img.l1Entry(0)).toBe(entry);
  });
});

describe('corrupt entries', () => {
  it('reserved bits in an L2 entry cannot be repaired', async () => {
    const img = image('v3-64k.qcow2');
    const at = img.l2EntryAt(0, 0);
    img.setU64(at, img.u64(at) | (1n << 57n));
    const found = await checkImage(img.file);
    expect(found.messages[0]).toMatch(/^ERROR found l2 entry with reserved bits set: /);
    expect(checkExitCode(found)).toBe(2);
    expect(checkExitCode(await checkImage(img.file, { repair: 'all' }))).toBe(2);
  });

  it('an L2 entry past the end of the file is not counted as a reference', async () => {
    const img = image('v3-64k.qcow2');
    const offset = (img.clusters + 3) * img.clusterSize;
    img.setU64(img.l2EntryAt(0, 1), (1n << 63n) | BigInt(offset));
    const found = await checkImage(img.file);
    expect(found.messages[0]).toBe(
      `ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x${offset.toString(16)} size 0x10000`,
    );
    expect(checkExitCode(found)).toBe(2);
  });

  it('extended L2: a subcluster both allocated and zero is corruption', async () => {
    const img = image('extl2-32k.qcow2');
    const at = img.l2EntryAt(0, 0);
    img.setU64(at + 8, 0x0000_0001_ffff_ffffn);
    const found = await checkImage(img.file);
    expect(found.messages[0]).toMatch(/^ERROR offset=[0-9a-f]+: Allocated cluster has corrupted subcluster allocation bitmap$/);
    expect(checkExitCode(found)).toBe(2);
  });

  it('an unaligned preallocated zero cluster is turned into a plain zero cluster by -r all', async () => {
    const img = image('v3-64k.qcow2');
    const at = img.l2EntryAt(0, 5);
    img.setU64(at, BigInt(2 * img.clusterSize + 512) | 1n);
    const found = await checkImage(img.file);
    expect(found.messages[0]).toBe(`ERROR offset=${(2 * img.clusterSize + 512).toString(16)}: Preallocated cluster is not properly aligned; L2 entry corrupted.`);
    const repaired = await checkImage(img.file, { repair: 'all' });
    expect(repaired.messages[0]).toMatch(/^Repairing offset=/);
    expect(checkExitCode(repaired)).toBe(0);
    expect(img.u64(at)).toBe(1n);
  });
});
