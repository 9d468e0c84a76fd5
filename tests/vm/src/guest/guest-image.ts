import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { requireTool } from '@q/test-support';
import { cpioArchive, type CpioEntry } from './cpio.js';
import { hostBinaryEntries } from './host-binaries.js';
import { initScript } from './init-script.js';
import { unpackedKernel } from './kernel-package.js';
import { planModules } from './module-order.js';

/** What QEMU boots: Debian's kernel and our initramfs (the base; each boot appends its scenario). */
export interface GuestImage {
  kernelKey: string;
  vmlinuz: string;
  initramfs: Buffer;
  modules: string[];
}

/**
 * Modules for the virtio disk (virtio_pci finds it on the PCI bus, virtio_blk makes it /dev/vda) and for ext4.
 * Debian builds all of them as modules. crc32c_generic comes first by hand: ext4 and jbd2 only ask for
 * "crypto-crc32c" at mount time (a softdep, which needs modprobe), and the generic one works on any CPU QEMU
 * emulates (crc32c-intel needs SSE4.2, which TCG's default CPU model lacks).
 */
export const GUEST_MODULES = ['crc32c_generic', 'virtio_pci', 'virtio_blk', 'ext4'];

/** The guest cache: QCOW_VM_CACHE, else $XDG_CACHE_HOME/qcow-vm, else ~/.cache/qcow-vm. */
export function guestCacheDir(): string {
  const dir = process.env['QCOW_VM_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'qcow-vm');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * The guest, built on first use. The kernel package (70 MB, the slow part) is cached by its name and version; the
 * initramfs is rebuilt each run (a second or so) from the cached modules, the host's busybox and e2fsck, so a
 * host upgrade of those is never masked by a stale cache.
 */
export function guestImage(): GuestImage {
  for (const tool of ['apt-get', 'apt-cache', 'dpkg-deb', 'ldd', 'busybox', 'e2fsck', 'qemu-system-x86_64']) requireTool(tool);
  const kernel = unpackedKernel(guestCacheDir());
  const plan = planModules(kernel.modulesDir, GUEST_MODULES);
  const busybox = '/bin/busybox';
  if (!existsSync(busybox) || !isStaticElf(busybox)) throw new Error(`${busybox} must be the static busybox (Debian package busybox-static)`);
  const entries: CpioEntry[] = [
    ...['/bin', '/dev', '/etc', '/lib', '/lib/modules', '/mnt', '/proc', '/sys', '/tmp'].map((path): CpioEntry => ({ kind: 'dir', path })),
    // The kernel opens /dev/console for /init's stdin, stdout and stderr before anything mounts devtmpfs.
    { kind: 'char', path: '/dev/console', major: 5, minor: 1 },
    { kind: 'file', path: '/bin/busybox', data: readFileSync(busybox), mode: 0o755 },
    { kind: 'symlink', path: '/bin/sh', target: 'busybox' },
    { kind: 'file', path: '/init', data: initScript(), mode: 0o755 },
    { kind: 'file', path: '/etc/modules.order', data: `${plan.names.join('\n')}\n` },
    ...plan.names.map((name, i): CpioEntry => ({ kind: 'file', path: `/lib/modules/${name}.ko`, data: readFileSync(plan.files[i] as string) })),
    ...hostBinaryEntries(['e2fsck']).filter((entry) => entry.kind !== 'dir' || !['/bin', '/lib'].includes(entry.path)),
  ];
  return { kernelKey: kernel.key, vmlinuz: kernel.vmlinuz, initramfs: gzipSync(cpioArchive(entries)), modules: plan.names };
}

/** Whether an ELF64 executable has no PT_INTERP program header: no dynamic loader, so it runs alone in the guest. */
function isStaticElf(path: string): boolean {
  const elf = readFileSync(path);
  const programHeaders = Number(elf.readBigUInt64LE(0x20));
  const size = elf.readUInt16LE(0x36);
  const count = elf.readUInt16LE(0x38);
  for (let i = 0; i < count; i++) if (elf.readUInt32LE(programHeaders + i * size) === 3) return false;
  return true;
}

/** The initramfs of one boot: the base archive, then an archive holding its /scenario.sh (the kernel unpacks both). */
export function bootInitramfs(guest: GuestImage, scenario: string, out: string): string {
  const extra = cpioArchive([{ kind: 'file', path: '/scenario.sh', data: scenario, mode: 0o755 }]);
  writeFileSync(out, Buffer.concat([guest.initramfs, gzipSync(extra)]));
  return out;
}
