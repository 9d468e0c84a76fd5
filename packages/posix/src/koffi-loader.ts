import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Koffi = typeof import('koffi');

const require = createRequire(import.meta.url);

/** The glibc builds koffi ships per Linux architecture, inside its platform package (@koromix/koffi-linux-ARCH). */
const GLIBC_BUILDS: Partial<Record<string, string>> = { x64: 'linux_x64/koffi.node', arm64: 'linux_arm64/koffi.node' };
const MUSL_LOADERS: Partial<Record<string, string>> = { x64: '/lib/ld-musl-x86_64.so.1', arm64: '/lib/ld-musl-aarch64.so.1' };

/**
 * koffi, loaded the short way where it can be. koffi's entry looks for its native module among its platform
 * packages, reads the ELF header of the Node binary to tell glibc from musl and wraps deprecated calls, and
 * resolving `koffi` through Node's resolver (package exports, realpaths) costs 5-10 ms more: together 15-20 ms of a
 * `qcow info` whose whole run is compared with qemu-img's 20 ms, where loading the native module itself takes 4-5
 * ms. On glibc Linux (no musl loader on the machine), the native module is taken from the platform package next to
 * koffi's real directory (where npm's flat layout and pnpm's both put koffi's dependencies, at the version koffi
 * asked for) and is koffi's API (func, load, struct, errno) without the wrappers of calls this package does not
 * use. Anything else, or any failure on the way, takes koffi's entry.
 */
export function loadKoffi(): Koffi {
  const native = loadNative();
  if (native !== undefined) return native;
  return require('koffi') as Koffi;
}

function loadNative(): Koffi | undefined {
  const build = process.platform === 'linux' ? GLIBC_BUILDS[process.arch] : undefined;
  const musl = MUSL_LOADERS[process.arch];
  if (build === undefined || musl === undefined || existsSync(musl)) return undefined;
  try {
    const koffi = findKoffi(dirname(fileURLToPath(import.meta.url)));
    if (koffi === undefined) return undefined;
    const file = join(dirname(realpathSync.native(koffi)), '@koromix', `koffi-linux-${process.arch}`, build);
    if (!existsSync(file)) return undefined;
    // process.dlopen, what require() ends in for a .node file, without require's resolution of an absolute path
    // (package scope lookups, realpaths: ~1.2 ms of a `qcow info`). The module stays out of require's cache: this
    // package loads koffi once per thread (libc.ts), and its entry only where this way fails.
    const module = { exports: {} as Partial<Koffi> };
    process.dlopen(module, file);
    const native = module.exports;
    return typeof native.load === 'function' && typeof native.struct === 'function' && typeof native.errno === 'function' ? (native as Koffi) : undefined;
  } catch {
    return undefined;
  }
}

/** node_modules/koffi in `from` or the nearest directory above it: where Node's resolver would look first. */
function findKoffi(from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', 'koffi');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}
