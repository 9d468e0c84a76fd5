import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { flock, flockAvailable } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'q-flock-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('flock', () => {
  it('is built here (Linux, node-gyp at install)', () => {
    expect(flockAvailable()).toBe(true);
  });

  it('gives one exclusive holder per file, shared holders together, and frees the lock at close', () => {
    const path = join(dir, 'image');
    writeFileSync(path, 'x');
    const a = openSync(path, 'r+');
    const b = openSync(path, 'r');
    const c = openSync(path, 'r');
    expect(flock(a, 'exclusive')).toBe(true);
    expect(flock(b, 'shared')).toBe(false);
    expect(flock(b, 'exclusive')).toBe(false);
    closeSync(a);
    expect(flock(b, 'shared')).toBe(true);
    expect(flock(c, 'shared')).toBe(true);
    expect(flock(c, 'exclusive')).toBe(false);
    expect(flock(b, 'unlock')).toBe(true);
    expect(flock(c, 'exclusive')).toBe(true);
    closeSync(b);
    closeSync(c);
  });

  it('throws for a descriptor that is not open', () => {
    expect(() => flock(987654, 'exclusive')).toThrow(/errno 9/);
  });
});
