import { mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { qemuImg, qemuIo, scratch, type Scratch } from '@q/test-support';
import { expectSameRaw } from './oracle.js';

// External data files (`-o data_file=...`, with and without data_file_raw=on). QEMU opens a relative data file
// name from its current directory, so qemu-img runs in the image's directory; qcow runs from `/`.

interface DataFileCase {
  name: string;
  relative: boolean;
  opts: string;
  backing?: boolean;
  commands: string[];
}

const common = ['write -P 0x61 0 64k', 'write -P 0x62 100k 10k', 'write -P 0x63 1M 192k', 'write -z 1088k 64k', 'write -P 0x64 2044k 4k'];

const cases: DataFileCase[] = [
  { name: 'absolute name', relative: false, opts: 'cluster_size=64k', commands: common },
  { name: 'absolute name, data_file_raw=on', relative: false, opts: 'cluster_size=64k,data_file_raw=on', commands: common },
  { name: 'relative name', relative: true, opts: 'cluster_size=64k', commands: common },
  { name: 'relative name, data_file_raw=on, 4k clusters', relative: true, opts: 'cluster_size=4k,data_file_raw=on', commands: common },
  { name: 'discarded and zeroed clusters', relative: false, opts: 'cluster_size=64k', commands: [...common, 'discard 0 64k', 'write -z -u 1M 64k'] },
  { name: 'data_file_raw=on, preallocation=metadata', relative: false, opts: 'data_file_raw=on,preallocation=metadata', commands: common },
  { name: 'data_file_raw=on, preallocation=full, nothing written', relative: false, opts: 'data_file_raw=on,preallocation=full', commands: [] },
  { name: 'extended L2, 32k clusters', relative: false, opts: 'cluster_size=32k,extended_l2=on', commands: [...common, 'write -P 0x65 3k 1k', 'write -z 40k 2k'] },
  { name: 'over a qcow2 backing file', relative: true, opts: 'cluster_size=64k', backing: true, commands: common },
];

describe('external data files', () => {
  let s: Scratch;
  beforeAll(() => {
    s = scratch('interop-datafile-');
  });
  afterAll(() => s.cleanup());

  cases.forEach((c, i) => {
    it(c.name, async () => {
      const dir = s.path(`case${i}`);
      mkdirSync(dir);
      const img = `${dir}/img.qcow2`;
      const data = c.relative ? 'img.data' : `${dir}/img.data`;
      const args = ['create', '-q', '-f', 'qcow2', '-o', `data_file=${data},${c.opts}`];
      if (c.backing) {
        const base = `${dir}/base.qcow2`;
        qemuImg(['create', '-q', '-f', 'qcow2', base, '2M']);
        qemuIo(base, ['write -P 0x5b 0 2M']);
        args.push('-b', basename(base), '-F', 'qcow2');
      }
      qemuImg([...args, img, '2M'], { cwd: dir });
      if (c.commands.length > 0) qemuIo(img, c.commands, { cwd: dir });
      await expectSameRaw(s, img, { qemuCwd: dirname(img), qcowCwd: '/' });
    });
  });
});
