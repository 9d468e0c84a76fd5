import { copyFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, qemuIo, run, scratch, sha256File, type Scratch } from '@q/test-support';
import { expectSameRaw, firstDifference, MiB, qcowRawHash, qemuRawHash } from './oracle.js';

// Internal snapshots through `FILE@SNAP`, `-l snapshot.name=S`, `-l snapshot.id=N`, `-l S` and `-s S`.
// Oracles: `qemu-img convert -l` of the snapshot, and `qemu-img snapshot -a` on a copy then convert. A snapshot
// has its own disk size: qcow reads it at that size; qemu-img convert -l keeps the image's current size (it pads
// a smaller snapshot with zeros, and cuts a larger one), which the checks below allow for explicitly.

interface SnapImage {
  name: string;
  opts: string;
  backing: boolean;
  /** Resize between snapshots: sizes in order (first is the creation size). */
  sizes: number[];
  /** Commands run right after creation. */
  pre?: string[];
}

const images: SnapImage[] = [
  { name: 'v3 64k', opts: 'cluster_size=64k', backing: false, sizes: [4 * MiB] },
  { name: 'v2 4k', opts: 'compat=0.10,cluster_size=4k', backing: false, sizes: [4 * MiB] },
  { name: 'v3 512 byte clusters', opts: 'cluster_size=512', backing: false, sizes: [2 * MiB] },
  { name: 'extended L2 32k', opts: 'cluster_size=32k,extended_l2=on', backing: false, sizes: [4 * MiB] },
  { name: 'overlay of a raw backing file', opts: 'cluster_size=64k', backing: true, sizes: [4 * MiB] },
  { name: 'grown after the first snapshot', opts: 'cluster_size=64k', backing: false, sizes: [2 * MiB, 5 * MiB] },
  { name: 'grown twice, 4k clusters', opts: 'cluster_size=4k', backing: false, sizes: [1 * MiB, 3 * MiB, 4 * MiB] },
  { name: 'zstd compressed clusters shared with snapshots', opts: 'compression_type=zstd,cluster_size=16k', backing: false, sizes: [2 * MiB], pre: ['write -c -P 0x61 0 16k', 'write -c -P 0x62 256k 16k', 'write -c -P 0x63 512k 16k'] },
  { name: 'shrunk after the first snapshot', opts: 'cluster_size=64k', backing: false, sizes: [4 * MiB, 2 * MiB] },
];

const snapName = (i: number): string => `snap-${i}`;

/** Writes, a snapshot, and for each later size: resize, more writes (overwrite, zero, discard), a snapshot. */
function build(s: Scratch, tag: string, im: SnapImage): string {
  const img = s.path(`${tag}.qcow2`);
  const args = ['create', '-q', '-f', 'qcow2', '-o', im.opts];
  if (im.backing) {
    const base = s.path(`${tag}-base.raw`);
    qemuImg(['create', '-q', '-f', 'raw', base, String(im.sizes[0])]);
    qemuIo(base, [`write -P 0xbb 0 ${im.sizes[0]}`], { format: 'raw' });
    args.push('-b', base, '-F', 'raw');
  }
  qemuImg([...args, img, String(im.sizes[0])]);
  if (im.pre) qemuIo(img, im.pre);
  const v3 = !im.opts.includes('compat=0.10');
  im.sizes.forEach((size, i) => {
    if (i > 0) qemuImg(['resize', ...(size < im.sizes[i - 1]! ? ['--shrink'] : []), img, String(size)]);
    const cmds = [`write -P ${0x20 + i} ${i * 64 * 1024} 128k`, `write -P ${0x30 + i} ${size - 8192} 4k`, `discard ${(i + 4) * 64 * 1024} 64k`];
    if (v3) cmds.push(`write -z ${(i + 1) * 64 * 1024} 32k`);
    qemuIo(img, cmds);
    qemuImg(['snapshot', '-c', snapName(i), img]);
  });
  // The active layer moves on after the last snapshot.
  qemuIo(img, ['write -P 0x7f 0 64k', ...(v3 ? ['write -z 128k 64k'] : [])]);
  return img;
}

/** The snapshot's own bytes, by qemu: apply it to a copy, then convert. */
async function appliedSnapshot(s: Scratch, img: string, snap: string): Promise<{ path: string; sha: string; size: number }> {
  const copy = `${img}.applied-${snap}.qcow2`;
  copyFileSync(img, copy);
  qemuImg(['snapshot', '-a', snap, copy]);
  return qemuRawHash(s, copy);
}

describe('internal snapshots', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('interop-snap-');
  });
  afterAll(() => s.cleanup());

  images.forEach((im, n) => {
    describe(im.name, () => {
      let img: string;
      beforeAll(() => {
        img = build(s, `img${n}`, im);
      });

      it('the active layer', async () => {
        await expectSameRaw(s, img);
      });

      im.sizes.forEach((size, i) => {
        const snap = snapName(i);
        const id = String(i + 1);

        it(`${snap}: FILE@SNAP equals qemu-img snapshot -a; -l snapshot.name, -s, -l snapshot.id equal qemu-img convert -l`, async () => {
          const applied = await appliedSnapshot(s, img, snap);
          expect(applied.size).toBe(size);
          const converted = await qemuRawHash(s, img, ['-l', `snapshot.name=${snap}`]);
          // FILE@SNAP has the snapshot's own size; -l and -s give the image's current size, as qemu-img convert -l.
          const spellings: Array<[string, string[], { sha: string; path: string }]> = [
            [`${img}@${snap}`, [], applied],
            [`${img}@${id}`, [], applied],
            [img, ['-l', `snapshot.name=${snap}`], converted],
            [img, ['-s', snap], converted],
            [img, ['-l', `snapshot.id=${id}`], converted],
            [img, ['-l', snap], converted],
            [img, ['-s', id], converted],
          ];
          const failures: string[] = [];
          for (const [source, args, expected] of spellings) {
            const label = `qcow convert ${[...args, source].join(' ')}`;
            try {
              const c = await qcowRawHash(s, source, args);
              if (c.sha !== expected.sha) failures.push(`${label}: ${firstDifference(expected.path, c.path)}`);
            } catch (e) {
              failures.push(`${label}: ${(e as Error).message.split('\n')[0]}`);
            }
          }
          expect(failures).toEqual([]);
        });

        it(`${snap}: the same bytes and size as qemu-img convert -l snapshot.name=${snap}`, async () => {
          const q = await qemuRawHash(s, img, ['-l', `snapshot.name=${snap}`]);
          const c = await qcowRawHash(s, img, ['-l', `snapshot.name=${snap}`]);
          expect(c.size).toBe(q.size);
          expect(c.sha).toBe(q.sha);
        });
      });

      it('-l ID (a bare id, which qemu-img looks up as an id, then a name) for every snapshot', async () => {
        const failures: string[] = [];
        for (let i = 0; i < im.sizes.length; i += 1) {
          const id = String(i + 1);
          const expected = await qemuRawHash(s, img, ['-l', id]);
          const r = qcow(['convert', '-l', id, '-O', 'raw', img, s.path(`bare-${n}-${id}.raw`)], { cwd: '/' });
          if (r.status !== 0) failures.push(`qcow convert -l ${id}: exit ${r.status}: ${r.stderr.trim()}`);
          else if ((await sha256File(s.path(`bare-${n}-${id}.raw`))) !== expected.sha) failures.push(`qcow convert -l ${id}: different bytes`);
        }
        expect(failures).toEqual([]);
      });
    });
  });

  it('a snapshot name that is another snapshot\'s id: -l snapshot.name= looks up names only', async () => {
    const img = s.path('idname.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', img, '1M']);
    qemuIo(img, ['write -P 0x01 0 64k']);
    qemuImg(['snapshot', '-c', 'first', img]); // id 1
    qemuIo(img, ['write -P 0x02 0 64k']);
    qemuImg(['snapshot', '-c', '1', img]); // id 2, named "1"
    qemuIo(img, ['write -P 0x03 0 64k']);
    await expectSameRaw(s, img, { qemuArgs: ['-l', 'snapshot.name=1'], qcowArgs: ['-l', 'snapshot.name=1'] });
    await expectSameRaw(s, img, { qemuArgs: ['-l', 'snapshot.id=1'], qcowArgs: ['-l', 'snapshot.id=1'] });
    await expectSameRaw(s, img, { qemuArgs: ['-l', 'snapshot.id=2,snapshot.name=1'], qcowArgs: ['-l', 'snapshot.id=2,snapshot.name=1'] });
  });

  it("a snapshot the image does not have: qemu-img's refusal and exit code, for every spelling", () => {
    const img = s.path('missing-snap.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', img, '1M']);
    qemuImg(['snapshot', '-c', 'only', img]);
    for (const args of [['-l', 'snapshot.name=nope'], ['-l', 'snapshot.id=9'], ['-l', 'nope'], ['-l', 'snapshot.id=1,snapshot.name=nope'], ['-s', 'nope']]) {
      const theirs = args[0] === '-s' ? undefined : run('qemu-img', ['convert', ...args, '-O', 'raw', img, s.path('missing-q.raw')]);
      const mine = qcow(['convert', ...args, '-O', 'raw', img, s.path('missing-c.raw')]);
      // qemu-img 7.2 has no -s any more: ours answers as for -l.
      expect(mine.stderr, args.join(' ')).toBe("qcow: Failed to load snapshot: Can't find snapshot\n");
      expect(mine.status, args.join(' ')).toBe(1);
      if (theirs !== undefined) expect(theirs.stderr.replace(/^qemu-img:/, 'qcow:'), args.join(' ')).toBe(mine.stderr);
    }
  });
});
