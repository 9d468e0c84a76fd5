import { describe, expect, it } from 'vitest';
import { boundJobs } from './harness.js';

describe('boundJobs', () => {
  const jobs = Array.from({ length: 100 }, (_, cut) => ({ cut }));

  it('keeps everything under the bound', () => {
    expect(boundJobs(jobs, new Set(), 100)).toBe(jobs);
  });

  it('keeps the structural crash points first and spreads the rest over the whole log', () => {
    const kept = boundJobs(jobs, new Set([3, 50, 97]), 10);
    expect(kept).toHaveLength(10);
    expect(kept.map((job) => job.cut)).toEqual(expect.arrayContaining([3, 50, 97]));
    expect(kept[0]!.cut).toBeLessThan(15);
    expect(kept[kept.length - 1]!.cut).toBeGreaterThan(85);
    expect(kept.map((job) => job.cut)).toEqual([...kept.map((job) => job.cut)].sort((a, b) => a - b));
  });

  it('samples the structural points themselves when they alone exceed the bound', () => {
    const kept = boundJobs(jobs, new Set(jobs.map((job) => job.cut)), 7);
    expect(kept).toHaveLength(7);
  });
});
