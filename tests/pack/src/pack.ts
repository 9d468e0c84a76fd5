import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execOk } from './exec.js';
import { repoRoot, type Manifest } from './workspace-packages.js';

export interface Tarball {
  path: string;
  /** The manifest as published: pnpm has replaced `workspace:^` with real ranges. */
  manifest: Manifest;
  /** Paths inside the tarball, without the leading `package/`. */
  files: string[];
}

/**
 * Packs every package under packages/ with pnpm (as `changeset publish` will: the prepack guard runs, workspace
 * ranges are rewritten, the root LICENSE is added) into `destination`, and reads back what each tarball holds.
 */
export async function packAll(destination: string): Promise<Map<string, Tarball>> {
  await execOk('pnpm', ['--recursive', '--filter', './packages/*', 'pack', '--pack-destination', destination], { cwd: repoRoot });
  const tarballs = new Map<string, Tarball>();
  for (const name of readdirSync(destination).filter((file) => file.endsWith('.tgz'))) {
    const path = join(destination, name);
    const manifest = JSON.parse(await execOk('tar', ['-xzOf', path, 'package/package.json'], { cwd: destination })) as Manifest;
    const listing = await execOk('tar', ['-tzf', path], { cwd: destination });
    const files = listing.split('\n').filter((line) => line !== '').map((line) => line.replace(/^package\//, ''));
    tarballs.set(manifest.name, { path, manifest, files });
  }
  return tarballs;
}
