import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface LockEntry {
  name?: string;
  hasInstallScript?: boolean;
}

export interface NativeAddonReport {
  /** Packages that would compile or fetch a native addon while installing: each one is a failure. */
  buildSteps: string[];
  /** Packages with an install script that builds nothing here (koffi picks a prebuilt binary), for the record. */
  installScripts: string[];
}

/**
 * What an install of `projectDir` built or would build natively, read from npm's package-lock.json and the
 * installed files. A package builds at install when it carries a node-gyp `binding.gyp`, or when it has an install
 * script and a compiled addon (`*.node`) inside it, which only that script can have put there. Addons shipped inside
 * a package without scripts (koffi's `@koromix/koffi-<platform>` packages) are prebuilt in the registry and fine.
 */
export function nativeAddonReport(projectDir: string): NativeAddonReport {
  const lock = JSON.parse(readFileSync(join(projectDir, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const report: NativeAddonReport = { buildSteps: [], installScripts: [] };
  for (const [path, entry] of Object.entries(lock.packages)) {
    const dir = join(projectDir, path);
    // The root entry is the project itself; optional packages for other platforms are listed but not installed.
    if (path === '' || !existsSync(dir)) continue;
    const name = entry.name ?? path.replace(/^.*node_modules\//, '');
    if (existsSync(join(dir, 'binding.gyp'))) report.buildSteps.push(`${name} (${path}) compiles with node-gyp: it has a binding.gyp`);
    if (entry.hasInstallScript !== true) continue;
    const addons = compiledAddons(dir);
    if (addons.length > 0) report.buildSteps.push(`${name} (${path}) has an install script and built ${addons.join(', ')}`);
    else report.installScripts.push(name);
  }
  return report;
}

/** `*.node` files below `dir`, not descending into the package's own dependencies. */
function compiledAddons(dir: string, prefix = ''): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory() && entry.name !== 'node_modules') found.push(...compiledAddons(dir, relative));
    else if (entry.isFile() && entry.name.endsWith('.node')) found.push(relative);
  }
  return found;
}
