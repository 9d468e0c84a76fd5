import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run, runOk } from '@q/test-support';

/** An unpacked Debian kernel package: the kernel image and its modules directory. */
export interface Kernel {
  /** The package and version, e.g. linux-image-6.1.0-57-amd64_6.1.192-3: the guest cache's key. */
  key: string;
  vmlinuz: string;
  modulesDir: string;
  release: string;
}

/**
 * The versioned kernel package the `linux-image-amd64` metapackage points at (apt's candidate), so the guest
 * follows the host's Debian release and its security updates; QCOW_VM_KERNEL_PACKAGE names another.
 */
export function kernelPackage(): { name: string; version: string } {
  const name = process.env['QCOW_VM_KERNEL_PACKAGE'] ?? metapackageTarget();
  const policy = runOk('apt-cache', ['policy', name]);
  const version = /Candidate:\s*(\S+)/.exec(policy)?.[1];
  if (version === undefined || version === '(none)') throw new Error(`apt knows no candidate for ${name}:\n${policy}`);
  return { name, version };
}

function metapackageTarget(): string {
  const depends = runOk('apt-cache', ['depends', 'linux-image-amd64']);
  const name = /Depends:\s*(linux-image-6\.1\.0-\d+-amd64)\b/.exec(depends)?.[1];
  if (name === undefined) throw new Error(`no linux-image-6.1.0-*-amd64 behind linux-image-amd64:\n${depends}`);
  return name;
}

/**
 * The kernel unpacked under `cacheDir/KEY/`, downloaded with `apt-get download` (apt's own mirrors and
 * signatures) and unpacked with `dpkg-deb -x` the first time. apt's package lists may be missing or stale (a
 * fresh container, a mirror that dropped the version): then `apt-get update` and one more try, never before.
 * Unpacked into a temporary directory renamed at the end, so a run killed halfway leaves nothing that looks done.
 */
export function unpackedKernel(cacheDir: string): Kernel {
  let updated = false;
  const update = (): void => {
    const result = run('apt-get', ['update', '-q'], { timeoutMs: 300_000 });
    if (result.status !== 0) throw new Error(`apt-get update failed: ${result.stderr}`);
    updated = true;
  };
  let target: { name: string; version: string };
  try {
    target = kernelPackage();
  } catch {
    update();
    target = kernelPackage();
  }
  for (;;) {
    const { name, version } = target;
    const key = `${name}_${version.replaceAll(':', '%3a')}`;
    const root = join(cacheDir, key);
    if (existsSync(join(root, 'complete'))) return kernelIn(root, key, name);
    const work = join(cacheDir, `${key}.partial-${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    const got = run('apt-get', ['download', '-q', `${name}=${version}`], { cwd: work, timeoutMs: 300_000 });
    if (got.status !== 0) {
      rmSync(work, { recursive: true, force: true });
      if (updated) throw new Error(`apt-get download ${name}=${version} failed after apt-get update: ${got.stderr}`);
      update();
      target = kernelPackage();
      continue;
    }
    const deb = readdirSync(work).find((file) => file.endsWith('.deb'));
    if (deb === undefined) throw new Error(`apt-get download ${name}=${version} left no .deb in ${work}`);
    runOk('dpkg-deb', ['-x', join(work, deb), join(work, 'root')]);
    rmSync(join(work, deb));
    writeFileSync(join(work, 'complete'), `${name} ${version}\n`);
    try {
      renameSync(work, root);
    } catch (error) {
      // Another run (a second CI job on the same cache) finished first: use its copy.
      rmSync(work, { recursive: true, force: true });
      if (!existsSync(join(root, 'complete'))) throw error;
    }
    return kernelIn(root, key, name);
  }
}

function kernelIn(root: string, key: string, name: string): Kernel {
  const release = name.replace(/^linux-image-/, '');
  const kernel = { key, vmlinuz: join(root, 'root', 'boot', `vmlinuz-${release}`), modulesDir: join(root, 'root', 'lib', 'modules', release), release };
  if (!existsSync(kernel.vmlinuz) || !existsSync(kernel.modulesDir)) throw new Error(`${root}: no vmlinuz-${release} or modules in the package`);
  return kernel;
}
