import { copyFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qcow, qemuImg, run, scratch, sha256File, type Scratch } from '@q/test-support';
import { expectSameRaw } from './oracle.js';

// A dirty image: qemu-io with lazy refcounts killed by SIGKILL mid-run leaves the dirty bit set (and refcounts
// stale). qcow opens it read-only, reads what qemu reads, and never writes to the file.

interface DirtyCase {
  name: string;
  opts: string;
  /** Commands run before the kill. */
  commands: string[];
  /** Add an enabled persistent bitmap first (the crash leaves it marked in use). */
  bitmap: boolean;
}

const cases: DirtyCase[] = [
  { name: '64k clusters, plain writes', opts: 'cluster_size=64k', commands: ['write -P 0x5a 0 128k', 'write -P 0x6b 1M 64k', 'write -z 64k 64k'], bitmap: false },
  { name: '4k clusters, overwrite and discard', opts: 'cluster_size=4k', commands: ['write -P 0x11 0 256k', 'write -P 0x12 8k 4k', 'discard 64k 64k', 'write -P 0x13 3M 12k'], bitmap: false },
  { name: 'compressed writes', opts: 'cluster_size=64k', commands: ['write -c -P 0x21 0 64k', 'write -c -P 0x22 1M 64k', 'write -P 0x23 1M+4k 4k'.replace('1M+4k', '1052672')], bitmap: false },
  { name: 'extended L2', opts: 'cluster_size=64k,extended_l2=on', commands: ['write -P 0x31 2k 2k', 'write -z 8k 4k', 'write -P 0x32 2M 100k'], bitmap: false },
  { name: 'with an enabled persistent bitmap (left in use)', opts: 'cluster_size=64k', commands: ['write -P 0x41 0 64k', 'write -P 0x42 3M 64k'], bitmap: true },
];

/** Runs qemu-io with the commands, then SIGKILLs itself (`sigraise 9`), as a crash would. */
function crash(img: string, commands: readonly string[]): void {
  const args = ['-f', 'qcow2', ...[...commands, 'sigraise 9'].flatMap((c) => ['-c', c]), img];
  const r = run('qemu-io', args);
  // spawnSync reports death by signal as a null status (mapped to -1 by run).
  expect(r.status, `qemu-io should have been killed: ${r.stdout}${r.stderr}`).toBe(-1);
}

describe('dirty image after a crash with lazy refcounts', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('interop-dirty-');
  });
  afterAll(() => s.cleanup());

  cases.forEach((c, i) => {
    it(c.name, async () => {
      const img = s.path(`dirty${i}.qcow2`);
      qemuImg(['create', '-q', '-f', 'qcow2', '-o', `lazy_refcounts=on,${c.opts}`, img, '4M']);
      if (c.bitmap) qemuImg(['bitmap', '--add', img, 'live']);
      crash(img, c.commands);

      // qemu works on a copy so that nothing but qcow touches the original.
      const copy = s.path(`dirty${i}-copy.qcow2`);
      copyFileSync(img, copy);
      const qinfo = JSON.parse(qemuImg(['info', '--output=json', copy])) as Record<string, unknown>;
      expect(qinfo['dirty-flag'], 'the oracle image must be dirty').toBe(true);

      const before = await sha256File(img);
      const info = qcow(['info', '--output=json', img]);
      expect(info.status, info.stderr).toBe(0);
      expect((JSON.parse(info.stdout) as Record<string, unknown>)['dirty-flag']).toBe(true);
      expect(qcow(['info', img]).status).toBe(0);
      expect(qcow(['map', '--output=json', img]).status).toBe(0);
      const io = qcow(['io', '-r', '-c', `read 0 64k`, img]);
      expect(io.status, io.stderr).toBe(0);
      const qraw = s.path(`dirty${i}-qemu.raw`);
      qemuImg(['convert', '-O', 'raw', copy, qraw]);
      const cmp = qcow(['compare', img, qraw]);
      expect(cmp.stdout.trim()).toBe('Images are identical.');
      expect(cmp.status).toBe(0);
      await expectSameRaw(s, copy, { qcowSource: img });
      expect(await sha256File(img), 'qcow must not modify a dirty image it reads').toBe(before);
    });
  });

  it('qcow info of the dirty image matches qemu-img info (JSON, all keys but actual-size)', () => {
    const img = s.path('dirty-info.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', img, '4M']);
    qemuImg(['bitmap', '--add', img, 'b']);
    crash(img, ['write -P 0x77 0 64k']);
    const copy = s.path('dirty-info-copy.qcow2');
    copyFileSync(img, copy);
    const strip = (text: string, name: string): Record<string, unknown> => {
      const o = JSON.parse(text) as Record<string, unknown>;
      delete o['actual-size'];
      o['filename'] = name;
      return o;
    };
    const q = strip(qemuImg(['info', '--output=json', copy]), 'x');
    const r = qcow(['info', '--output=json', img]);
    expect(r.status, r.stderr).toBe(0);
    expect(strip(r.stdout, 'x')).toEqual(q);
  });

  it('human qcow info of the dirty image (bitmap in use, not cleanly shut down) matches qemu-img info', () => {
    const img = s.path('dirty-human.qcow2');
    qemuImg(['create', '-q', '-f', 'qcow2', '-o', 'lazy_refcounts=on', img, '4M']);
    qemuImg(['bitmap', '--add', img, 'b']);
    crash(img, ['write -P 0x78 64k 64k']);
    const copy = s.path('dirty-human-copy.qcow2');
    copyFileSync(img, copy);
    const lines = (out: string, name: string): string[] =>
      out.split('\n').filter((l) => !l.startsWith('disk size:')).map((l) => l.replace(name, 'IMG'));
    const q = lines(qemuImg(['info', copy]), copy);
    const r = qcow(['info', img]);
    expect(r.status, r.stderr).toBe(0);
    expect(lines(r.stdout, img)).toEqual(q);
  });
});
