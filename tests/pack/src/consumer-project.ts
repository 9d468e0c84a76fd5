import { copyFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execOk } from './exec.js';
import type { Tarball } from './pack.js';
import { readManifest, repoRoot } from './workspace-packages.js';

const template = join(import.meta.dirname, '..', 'consumer');

/**
 * The environment of a shell outside any workspace: pnpm hands the scripts it runs `npm_config_*` and
 * `npm_package_*` variables, which npm would take as its own configuration.
 */
export function strangerEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)));
}

/**
 * Makes a project in `dir` (outside the workspace) that depends on the `direct` packages only, each from its
 * tarball, and npm-installs it. Their own @q/* dependencies must come from the tarballs as well, not the registry,
 * hence an npm override for every packed package (npm demands the same spec for a direct dependency). Third-party
 * packages, TypeScript and Node's types come from the registry, at the versions the workspace pins.
 */
export async function installConsumer(dir: string, tarballs: Map<string, Tarball>, direct: readonly string[]): Promise<string> {
  const spec = (name: string): string => {
    const tarball = tarballs.get(name);
    if (tarball === undefined) throw new Error(`${name} was not packed`);
    return `file:${tarball.path}`;
  };
  const pinned = readManifest(join(repoRoot, 'package.json')).devDependencies ?? {};
  const devTool = (name: string): string => {
    const version = pinned[name];
    if (version === undefined) throw new Error(`the workspace root does not pin ${name}`);
    return version;
  };
  const manifest = {
    name: 'stranger',
    private: true,
    type: 'module',
    dependencies: Object.fromEntries(direct.map((name) => [name, spec(name)])),
    devDependencies: { typescript: devTool('typescript'), '@types/node': devTool('@types/node') },
    overrides: Object.fromEntries([...tarballs.keys()].map((name) => [name, spec(name)])),
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  for (const file of readdirSync(template)) copyFileSync(join(template, file), join(dir, file));
  // --prefer-offline: a warm npm cache answers without a round trip per package; the tree is the same.
  return execOk('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: dir, env: strangerEnv() });
}
