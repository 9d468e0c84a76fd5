import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const repoRoot = join(import.meta.dirname, '..', '..', '..');

/** The fields of package.json that publishing depends on. */
export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  type?: string;
  sideEffects?: boolean | string[];
  engines?: Record<string, string>;
  repository?: { type?: string; url?: string; directory?: string };
  publishConfig?: { access?: string };
  files?: string[];
  bin?: string | Record<string, string>;
  exports?: Record<string, unknown>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

export interface WorkspacePackage {
  /** Path from the repository root, as `repository.directory` must say: `packages/raw`. */
  directory: string;
  manifest: Manifest;
}

export function readManifest(path: string): Manifest {
  return JSON.parse(readFileSync(path, 'utf8')) as Manifest;
}

/** Every package under packages/ that is meant for the registry (not private), read fresh from disk. */
export function publishablePackages(): WorkspacePackage[] {
  return readdirSync(join(repoRoot, 'packages'))
    .map((name) => `packages/${name}`)
    .filter((directory) => existsSync(join(repoRoot, directory, 'package.json')))
    .map((directory) => ({ directory, manifest: readManifest(join(repoRoot, directory, 'package.json')) }))
    .filter(({ manifest }) => manifest.private !== true);
}
