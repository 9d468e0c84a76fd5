import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DiskError, isDiskError } from './errors.js';

type ErrorsModule = typeof import('./errors.js');

/**
 * A second copy of this module, as a consumer with two installed versions of @q/raw has: the query string makes
 * vitest load and evaluate the file again, so its DiskError is a different class.
 */
async function secondCopy(): Promise<ErrorsModule> {
  const specifier = './errors.ts?second-copy';
  return (await import(/* @vite-ignore */ specifier)) as ErrorsModule;
}

function expectAgree(made: ErrorsModule, judge: ErrorsModule): void {
  const error = new made.DiskError('E_CORRUPT', 'L2 table offset 0x200 is not cluster aligned', { file: 'a.qcow2', offset: 0x200 });
  expect(judge.isDiskError(error)).toBe(true);
  if (!judge.isDiskError(error)) return;
  // What a caller reads after the check survives the crossing: code, file, offset, message, reason, withFile.
  expect(error.code).toBe('E_CORRUPT');
  expect(error.file).toBe('a.qcow2');
  expect(error.offset).toBe(0x200);
  expect(error.message).toBe('L2 table offset 0x200 is not cluster aligned');
  const named = new made.DiskError('E_CORRUPT', 'bad stream', { reason: 'compressed-data' }).withFile('b.qcow2');
  expect(judge.isDiskError(named)).toBe(true);
  expect(named).toMatchObject({ file: 'b.qcow2', reason: 'compressed-data' });
}

describe('isDiskError', () => {
  it('recognises errors made by another copy of the module, both ways', async () => {
    const other = await secondCopy();
    const self: ErrorsModule = await import('./errors.js');
    // The scenario is real: two classes, and instanceof tells them apart.
    expect(other.DiskError).not.toBe(DiskError);
    expect(new other.DiskError('E_IO', 'x') instanceof DiskError).toBe(false);
    expectAgree(other, self);
    expectAgree(self, other);
  });

  describe('with a second installed copy of the built package', () => {
    const dir = mkdtempSync(join(tmpdir(), 'q-raw-copy-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('recognises errors across the copies, both ways', async () => {
      const dist = join(import.meta.dirname, '..', 'dist');
      if (!existsSync(join(dist, 'index.js'))) throw new Error(`${dist} is missing: build @q/raw first (pnpm build)`);
      const copy = join(dir, 'node_modules', '@q', 'raw');
      cpSync(dist, join(copy, 'dist'), { recursive: true });
      writeFileSync(join(copy, 'package.json'), JSON.stringify({ name: '@q/raw', type: 'module', exports: { '.': './dist/index.js' } }));
      const other = (await import(/* @vite-ignore */ pathToFileURL(join(copy, 'dist', 'index.js')).href)) as ErrorsModule;
      expect(other.DiskError).not.toBe(DiskError);
      const self: ErrorsModule = await import('./errors.js');
      expectAgree(other, self);
      expectAgree(self, other);
    });
  });

  it('wants the brand and a string code, not just the look of one', () => {
    expect(isDiskError(new DiskError('E_NO_SUCH', 'no snapshot'))).toBe(true);
    expect(isDiskError(Object.assign(new Error('x'), { name: 'DiskError', code: 'E_IO' }))).toBe(false);
    expect(isDiskError({ code: 'E_IO', message: 'x' })).toBe(false);
    const forged = { code: 42, [Symbol.for('@q/raw:DiskError')]: true };
    expect(isDiskError(forged)).toBe(false);
    expect(isDiskError(undefined)).toBe(false);
    expect(isDiskError('E_IO')).toBe(false);
  });

  it('keeps the brand out of spreads and JSON', () => {
    const error = new DiskError('E_IO', 'x', { file: 'f' });
    expect(Object.getOwnPropertySymbols({ ...error })).toEqual([]);
    expect(JSON.stringify(error)).not.toContain('raw');
  });
});
