import { DiskError } from '@q/raw';
import type { FeatureName } from './header-extensions.js';
import type { QcowHeader } from './header.js';
import { INCOMPAT_KNOWN } from './limits.js';

/**
 * Refuses images with incompatible feature bits we do not implement (spec: "an implementation must fail to open
 * an image if an unknown bit is set"), naming them from the image's own feature name table when it has one.
 */
export function checkIncompatibleFeatures(header: QcowHeader, featureNames: FeatureName[]): void {
  const unknown = header.incompatibleFeatures & ~INCOMPAT_KNOWN;
  if (unknown === 0n) return;
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if ((unknown & (1n << BigInt(bit))) === 0n) continue;
    const named = featureNames.find((f) => f.kind === 'incompatible' && f.bit === bit);
    names.push(named ? named.name : `Unknown incompatible feature: ${bit}`);
  }
  throw new DiskError('E_UNSUPPORTED', `Unsupported qcow2 feature(s): ${names.join(', ')}`);
}
