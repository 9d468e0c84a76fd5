import { mkdirSync } from 'node:fs';
import { expect } from 'vitest';
import { qcow, sha256File, type Scratch } from '@q/test-support';
import { makeExt4, writeBaseTree, type FileSums } from './ext4-files.js';

/** A qcow2 base holding an ext4 with known files, and what it must stay (the overlays above it take all writes). */
export interface BaseImage {
  path: string;
  files: FileSums;
  sha256: string;
}

/**
 * The disk every boot starts from, made the way a user would: a tree of files, `mke2fs -d` into a raw image on the
 * host, then `qcow convert -O qcow2` (so the guest reads clusters our writer laid out).
 */
export async function makeBaseImage(dir: Scratch): Promise<BaseImage> {
  const tree = dir.path('tree');
  mkdirSync(tree);
  const files = writeBaseTree(tree);
  makeExt4(tree, dir.path('base.raw'), 128);
  const path = dir.path('base.qcow2');
  const converted = qcow(['convert', '-O', 'qcow2', dir.path('base.raw'), path]);
  expect(converted.status, converted.stderr).toBe(0);
  return { path, files, sha256: await sha256File(path) };
}

/** `qcow create -f qcow2 -b BASE -F qcow2 TOP`: an empty overlay, the image the guest writes (any base: the benchmark's too). */
export function makeOverlay(base: Pick<BaseImage, 'path'>, top: string): string {
  const created = qcow(['create', '-q', '-f', 'qcow2', '-b', base.path, '-F', 'qcow2', top]);
  expect(created.status, created.stderr).toBe(0);
  return top;
}
