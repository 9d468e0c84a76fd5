import { describe, expect, it } from 'vitest';
import { MetadataRegions } from './metadata-regions.js';

const CLUSTER = 0x10000;

describe('MetadataRegions.overlap', () => {
  const regions = new MetadataRegions(CLUSTER);
  regions.add(0, CLUSTER, 'header');
  regions.add(5 * CLUSTER, 2 * CLUSTER, 'refcount table');
  regions.add(9 * CLUSTER, CLUSTER, 'active L2 table');

  it('answers a short range cluster by cluster', () => {
    expect(regions.overlap(CLUSTER, 3 * CLUSTER)).toBeUndefined();
    expect(regions.overlap(6 * CLUSTER + 1, 10)).toBe('refcount table');
    expect(regions.overlap(9 * CLUSTER, CLUSTER, 'active L2 table')).toBeUndefined();
  });

  it('answers a range longer than the metadata it knows with the lowest overlap', () => {
    // 4 known clusters: ranges of more clusters than that scan the known ones instead.
    expect(regions.overlap(CLUSTER, 4 * CLUSTER)).toBeUndefined();
    expect(regions.overlap(CLUSTER, 100 * CLUSTER)).toBe('refcount table');
    expect(regions.overlap(7 * CLUSTER, 100 * CLUSTER)).toBe('active L2 table');
    expect(regions.overlap(7 * CLUSTER, 100 * CLUSTER, 'active L2 table')).toBeUndefined();
    expect(regions.overlap(10 * CLUSTER, 1 << 40)).toBeUndefined();
  });

  it('forgets what was removed', () => {
    const copy = new MetadataRegions(CLUSTER);
    copy.add(5 * CLUSTER, 2 * CLUSTER, 'refcount table');
    copy.remove(5 * CLUSTER, CLUSTER);
    expect(copy.overlap(0, 100 * CLUSTER)).toBe('refcount table');
    expect(copy.overlap(0, 6 * CLUSTER)).toBeUndefined();
  });
});
