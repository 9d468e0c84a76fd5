import { mkdirSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { dropHeaderExtension, HeaderExtensionType, qemuImg, qemuIo, type Scratch } from '@q/test-support';
import { KiB } from './oracle.js';

/** One layer of a backing chain, bottom first. Raw layers can only be the bottom. */
export interface Layer {
  format: 'raw' | 'qcow2';
  size: number;
  /** qcow2 creation options (cluster_size, compat, extended_l2, ...). */
  opts?: string;
  /** Sub-directory of the scratch dir holding the file. */
  dir?: string;
  /** How this layer names its backing file: relative to its own directory (default) or absolute. */
  backingName?: 'relative' | 'absolute';
  /** Record the backing file without a format (the backing format header extension is removed). */
  noBackingFormat?: boolean;
  /** qemu-io commands; defaults to `layerWrites`. */
  writes?: string[];
}

/**
 * Writes that let upper layers shadow lower ones: a pattern range that moves up with the layer index, a few bytes
 * near the layer's end, and (qcow2 v3 overlays) a zeroed range that hides what lies below.
 */
export function layerWrites(index: number, layer: Layer): string[] {
  const pattern = 0x10 * (index + 1);
  const list = [`write -P ${pattern} ${index * 192 * KiB} ${256 * KiB}`, `write -P ${pattern + 1} ${layer.size - 64 * KiB * (index + 1)} 4096`];
  const v2 = (layer.opts ?? '').includes('compat=0.10');
  if (layer.format === 'qcow2' && index > 0 && !v2) list.push(`write -z ${(index - 1) * 192 * KiB + 64 * KiB} ${64 * KiB}`);
  return list;
}

/** Creates the chain under the scratch dir; returns the layer paths, bottom first. */
export function buildChain(s: Scratch, tag: string, layers: readonly Layer[]): string[] {
  const paths: string[] = [];
  layers.forEach((layer, i) => {
    const dir = layer.dir ? s.path(layer.dir) : s.dir;
    mkdirSync(dir, { recursive: true });
    const path = `${dir}/${tag}-${i}.${layer.format}`;
    const args = ['create', '-q', '-f', layer.format];
    if (layer.opts) args.push('-o', layer.opts);
    if (i > 0) {
      if (layer.format !== 'qcow2') throw new Error('only the bottom layer of a chain can be raw');
      const below = paths[i - 1]!;
      const name = layer.backingName === 'absolute' ? below : relative(dirname(path), below);
      args.push('-b', name, '-F', layers[i - 1]!.format);
    }
    args.push(path, String(layer.size));
    // Relative backing names are resolved against the overlay's directory; run from elsewhere to prove it.
    qemuImg(args, { cwd: '/' });
    if (layer.noBackingFormat) dropHeaderExtension(path, HeaderExtensionType.backingFormat);
    const writes = layer.writes ?? layerWrites(i, layer);
    if (writes.length > 0) qemuIo(path, writes, { format: layer.format });
    paths.push(path);
  });
  return paths;
}
