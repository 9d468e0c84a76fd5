import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { publishablePackages, readManifest, repoRoot, type WorkspacePackage } from './workspace-packages.js';

/**
 * The rules every package under packages/ keeps so that it publishes well, checked on the manifests in the tree:
 * a package added later (or an edit that drops a field) fails here by name, before anything is packed.
 */
const packages = publishablePackages();
const root = readManifest(join(repoRoot, 'package.json'));
const internal = new Set(packages.map(({ manifest }) => manifest.name));

/** Packages whose install scripts pnpm is told to run or to skip: the ones that build (or fetch) native code. */
const withInstallScripts = readFileSync(join(repoRoot, 'pnpm-workspace.yaml'), 'utf8')
  .split(/^(?=\S)/m)
  .filter((section) => /^(onlyBuiltDependencies|ignoredBuiltDependencies):/.test(section))
  .flatMap((section) => [...section.matchAll(/^\s+-\s+(\S+)/gm)].map((match) => match[1]!));

describe.each(packages.map((pkg): [string, WorkspacePackage] => [pkg.manifest.name, pkg]))('%s', (_, { directory, manifest }) => {
  it('exports every subpath with types and default conditions, and its package.json', () => {
    const exports = manifest.exports ?? {};
    expect(exports['./package.json']).toBe('./package.json');
    for (const [subpath, target] of Object.entries(exports)) {
      if (subpath === './package.json') continue;
      // `default` rather than `import`: ESM-only, and a require(esm) or a bundler without the import condition
      // still resolves; `types` first, as TypeScript reads conditions in order.
      expect(Object.keys(target as object), subpath).toEqual(['types', 'default']);
    }
  });

  it('says where it comes from, what it runs on and how it publishes', () => {
    expect(manifest.repository?.directory).toBe(directory);
    expect(manifest.repository?.url).toBe(root.repository?.url);
    expect(manifest.engines?.['node']).toBe('>=20.10');
    expect(manifest.publishConfig?.access).toBe('public');
    expect(manifest.license).toBe(root.license);
    expect(manifest.type).toBe('module');
    expect(manifest.sideEffects).toBe(false);
  });

  it('packs only its build (and its committed bin shims), and only after the build', () => {
    const binDirs = Object.values(typeof manifest.bin === 'string' ? { bin: manifest.bin } : (manifest.bin ?? {})).map(
      (bin) => bin.replace(/^\.\//, '').split('/')[0]!,
    );
    expect([...(manifest.files ?? [])].sort()).toEqual([...new Set(['dist', ...binDirs])].sort());
    expect(manifest.scripts?.['prepack']).toBe('node ../../tools/prepack-guard.mjs');
    for (const bin of binDirs.filter((dir) => dir !== 'dist')) expect(existsSync(join(repoRoot, directory, bin)), bin).toBe(true);
  });

  it('depends on other @q packages by caret range, so one install holds one copy of each', () => {
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies'] as const) {
      for (const [name, spec] of Object.entries(manifest[field] ?? {})) {
        if (internal.has(name)) expect(spec, `${field}.${name}`).toBe('workspace:^');
      }
    }
  });

  it('takes packages with install scripts only as optional dependencies or optional peers', () => {
    // Native helpers are optional capabilities (DESIGN.md): an install must succeed where they cannot build.
    for (const name of Object.keys(manifest.dependencies ?? {})) expect(withInstallScripts, `dependencies.${name}`).not.toContain(name);
    for (const name of Object.keys(manifest.peerDependencies ?? {})) {
      expect(manifest.peerDependenciesMeta?.[name]?.optional, `peer ${name}`).toBe(true);
    }
  });
});

describe('the workspace', () => {
  it('lists the packages with install scripts in pnpm-workspace.yaml (the rule above reads them there)', () => {
    expect(withInstallScripts.length).toBeGreaterThan(0);
  });

  it('depends on every package, so turbo builds them all before it packs them', () => {
    const own = readManifest(join(import.meta.dirname, '..', 'package.json'));
    expect(Object.keys(own.devDependencies ?? {}).filter((name) => internal.has(name)).sort()).toEqual([...internal].sort());
  });
});
