import { describe, expect, it } from 'vitest';
import { KeyedClaims } from './async-lock.js';

const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await null;
};

describe('KeyedClaims ranges', () => {
  it('a range waits for keys held inside it, and keys inside a held range wait for it', async () => {
    const claims = new KeyedClaims();
    const releaseKey = claims.tryClaim(5)!;
    let rangeTaken = false;
    const range = claims.claimRange(0, 10).then((release) => ((rangeTaken = true), release));
    await settle();
    expect(rangeTaken).toBe(false);
    // Keys outside the range are not held up by it.
    expect(claims.tryClaim(10)).toBeDefined();
    releaseKey();
    const releaseRange = await range;
    expect(rangeTaken).toBe(true);
    expect(claims.tryClaim(0)).toBeUndefined();
    expect(claims.tryClaim(9)).toBeUndefined();
    expect(claims.has(3)).toBe(true);
    let keyTaken = false;
    const key = claims.claim(3).then((release) => ((keyTaken = true), release));
    await settle();
    expect(keyTaken).toBe(false);
    releaseRange();
    (await key)();
    expect(keyTaken).toBe(true);
    expect(claims.has(3)).toBe(false);
  });

  it('overlapping ranges take turns; disjoint ones do not wait', async () => {
    const claims = new KeyedClaims();
    const first = await claims.claimRange(0, 100);
    const disjoint = await claims.claimRange(100, 200);
    let overlapTaken = false;
    const overlap = claims.claimRange(50, 150).then((release) => ((overlapTaken = true), release));
    first();
    await settle();
    expect(overlapTaken).toBe(false);
    disjoint();
    (await overlap)();
    expect(overlapTaken).toBe(true);
  });
});
