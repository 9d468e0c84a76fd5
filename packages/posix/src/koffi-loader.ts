import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

type Koffi = typeof import('koffi');

/** The glibc builds koffi ships per Linux architecture, inside its platform package (@koromix/koffi-linux-ARCH). */
const GLIBC_BUILDS: Partial<Record<string, string>> = { x64: 'linux_x64/koffi.node', arm64: 'linux_arm64/koffi.node' };
const MUSL_LOADERS: Partial<Record<string, string>> = { x64: '/lib/ld-musl-x86_64.so.1', arm64: '/lib/ld-musl-aarch64.so.1' };

/**
 * koffi, loaded the short way where it can be. koffi's entry looks for its native module among its platform
 * packages, reads the ELF header of the Node binary to tell glibc from musl and wraps deprecated calls: 12-15 ms of
 * a `qcow info` whose whole start is compared with qemu-img's 20 ms, against 4-5 ms to load the native module
 * itself. On glibc Linux (no musl loader on the machine) the native module is loaded straight from the platform
 * package koffi's own dependencies resolve to (the same version, as the package manager installed it), and is
 * koffi's API (func, load, struct, errno) without the wrappers of calls this package does not use. Anything else,
 * or any failure on the way, takes koffi's entry.
 */
export function loadKoffi(): Koffi {
  const require = createRequire(import.meta.url);
  const build = process.platform === 'linux' ? GLIBC_BUILDS[process.arch] : undefined;
  const musl = MUSL_LOADERS[process.arch];
  if (build !== undefined && musl !== undefined && !existsSync(musl)) {
    try {
      const fromKoffi = createRequire(require.resolve('koffi'));
      const native = fromKoffi(`@koromix/koffi-linux-${process.arch}/${build}`) as Partial<Koffi>;
      if (typeof native.load === 'function' && typeof native.struct === 'function' && typeof native.errno === 'function') return native as Koffi;
    } catch {
      // fall through to koffi's own entry
    }
  }
  return require('koffi') as Koffi;
}
