import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { run } from '@q/test-support';
import { cpioArchive } from './guest/cpio.js';
import { GUEST_MODULES, guestCacheDir, guestImage } from './guest/guest-image.js';
import { unpackedKernel } from './guest/kernel-package.js';
import { modinfo, planModules } from './guest/module-order.js';

/**
 * The guest's parts, checked without booting, so a broken build fails here with a plain message rather than as
 * a guest that never says `up`: busybox's own cpio reads our archives (the device node included), and the module
 * plan puts every module after all it depends on.
 */
describe('the guest build', () => {
  it('cpio: busybox lists our archive as written, device node and symlink included', () => {
    const archive = cpioArchive([
      { kind: 'dir', path: '/dev' },
      { kind: 'char', path: '/dev/console', major: 5, minor: 1 },
      { kind: 'file', path: '/init', data: '#!/bin/sh\n', mode: 0o755 },
      { kind: 'symlink', path: '/bin-sh', target: 'busybox' },
    ]);
    expect(archive.length % 4).toBe(0);
    const listing = run('busybox', ['cpio', '-t', '-v'], { input: archive });
    expect(listing.status, listing.stderr).toBe(0);
    const lines = listing.stdout.trim().split('\n');
    expect(lines.map((line) => line.split(/\s+/)[0])).toEqual(['drwxr-xr-x', 'crw-------', '-rwxr-xr-x', 'lrwxrwxrwx']);
    expect(lines[3]).toMatch(/bin-sh -> busybox$/);
  });

  it('modules: each after what it depends on, crc32c for ext4 included, all in the initramfs', () => {
    const kernel = unpackedKernel(guestCacheDir());
    const plan = planModules(kernel.modulesDir, GUEST_MODULES);
    for (const [i, file] of plan.files.entries()) {
      const depends = modinfo(readFileSync(file)).find(([key]) => key === 'depends')?.[1] ?? '';
      for (const dependency of depends.split(',').filter(Boolean)) {
        expect(plan.names.indexOf(dependency.replaceAll('-', '_')), `${plan.names[i]} needs ${dependency} first`).toBeGreaterThanOrEqual(0);
        expect(plan.names.indexOf(dependency.replaceAll('-', '_'))).toBeLessThan(i);
      }
    }
    expect(plan.names).toEqual(expect.arrayContaining(['virtio_pci', 'virtio_blk', 'ext4', 'jbd2', 'mbcache', 'crc16', 'crc32c_generic']));
    // Without a module providing crypto-crc32c, ext4's soft dependency is unmet: the plan refuses.
    expect(() => planModules(kernel.modulesDir, ['virtio_pci', 'virtio_blk', 'ext4'])).toThrow(/crypto-crc32c/);

    const listing = run('busybox', ['cpio', '-t'], { input: gunzipSync(guestImage().initramfs) });
    const names = listing.stdout.trim().split('\n');
    for (const name of ['init', 'dev/console', 'bin/busybox', 'bin/e2fsck', 'etc/modules.order', ...plan.names.map((m) => `lib/modules/${m}.ko`)]) {
      expect(names, name).toContain(name);
    }
  });
});
