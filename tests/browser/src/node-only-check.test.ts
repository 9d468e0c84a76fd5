import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Metafile } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { scratch } from '@q/test-support';
import { nodeOnlyFindings } from './node-only-check.js';

/**
 * The guard itself, on made-up metafiles: the real bundle is clean, so only these show that each kind of Node
 * leftover is caught (and that third-party code testing for `process` is let be).
 */
const dir = scratch('q-node-only-');
afterAll(() => dir.cleanup());

let made = 0;
const RAW = '../../packages/raw/dist/index.js';
const FFLATE = '../../node_modules/.pnpm/fflate@0.8.3/node_modules/fflate/esm/browser.js';

function findings(inputs: Record<string, Metafile['inputs'][string]['imports']>, output = ''): string[] {
  const work = join(dir.dir, String(made++));
  mkdirSync(join(work, 'out'), { recursive: true });
  writeFileSync(join(work, 'out', 'entry.js'), output);
  const metafile: Metafile = {
    inputs: Object.fromEntries(Object.entries(inputs).map(([path, imports]) => [path, { bytes: 1, imports }])),
    outputs: { 'out/entry.js': { bytes: output.length, inputs: {}, imports: [], exports: [] } },
  };
  return nodeOnlyFindings({ outdir: join(work, 'out'), workingDir: work, metafile });
}

describe('nodeOnlyFindings', () => {
  it('passes a bundle of browser packages', () => {
    expect(findings({ [RAW]: [], [FFLATE]: [] }, `// ${RAW}\nvar a = new Uint8Array(1);\n// ${FFLATE}\nvar b = 2;\n`)).toEqual([]);
  });

  it('names an import of a Node built-in, with or without node:, and one left external', () => {
    expect(findings({ [RAW]: [{ path: 'node:fs', kind: 'import-statement' }] })).toEqual([`${RAW} imports node:fs`]);
    expect(findings({ [RAW]: [{ path: 'os', kind: 'import-statement' }] })).toEqual([`${RAW} imports os`]);
    expect(findings({ [RAW]: [{ path: 'koffi', kind: 'import-statement', external: true }] })).toEqual([`${RAW} imports koffi (left external)`]);
  });

  it('names a Node-only entry and a package that is not for browsers', () => {
    expect(findings({ '../../packages/raw/dist/node.js': [] })).toEqual(['../../packages/raw/dist/node.js: a Node-only entry of @q/raw']);
    expect(findings({ '../../packages/vkd/dist/index.js': [] })).toEqual(['../../packages/vkd/dist/index.js: @q/vkd is not a browser package']);
  });

  it('reads our sections of the text for require(, process. and Buffer, not third-party ones', () => {
    const text = `// ${FFLATE}\nif (typeof process !== 'undefined' && process.env.X) {}\n// ${RAW}\nconst b = Buffer.from([1]);\nprocess.exit(1);\n`;
    expect(findings({ [RAW]: [], [FFLATE]: [] }, text)).toEqual([
      `out/entry.js (from ${RAW}) uses \\bprocess\\.: process.exit(1);`,
      `out/entry.js (from ${RAW}) uses \\bBuffer\\b: const b = Buffer.from([1]);`,
    ]);
    // esbuild's runtime is there only for some input's require call.
    expect(findings({ [FFLATE]: [] }, `var __require = (x) => require(x);\n// ${FFLATE}\n`)).toHaveLength(1);
  });
});
