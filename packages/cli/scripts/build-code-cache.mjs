// Makes dist/qcow.cjs.cache, the V8 code cache bin/qcow.cjs starts the program with: the program runs a set of
// everyday commands on a small scratch image in this process, then V8 serializes the bytecode of every function
// compiled by then. Part of `pnpm build` (after tsup). A command outside the set still starts faster (the program's
// top level and the engine are in the cache) and compiles the rest as it goes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const { loadProgram, cacheFile } = require('../bin/program.cjs');

// The copying commands raise V8's tier-up budget (src/tier-up-budget.ts), and V8 rejects a cache made under other
// flags than a start's: here the flag is left alone.
require('node:v8').setFlagsFromString = () => {};

const loaded = loadProgram(false);
if (loaded === undefined) throw new Error('dist/qcow.cjs is missing: run tsup first');
const { script, exports: program } = loaded;

const scratch = mkdtempSync(join(tmpdir(), 'qcow-code-cache-'));
const image = join(scratch, 'a.qcow2');
const overlay = join(scratch, 'b.qcow2');
const raw = join(scratch, 'a.raw');
const commands = [
  ['create', '-q', '-f', 'qcow2', image, '64M'],
  ['io', '-c', 'write -P 0x5a 0 1M', '-c', 'write -z 2M 64k', '-c', 'read -P 0x5a 0 64k', image],
  ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'qcow2', overlay],
  ['io', '-c', 'write -P 0x33 512k 1M', overlay],
  ['info', overlay],
  ['info', '--output=json', '--backing-chain', overlay],
  ['map', overlay],
  ['map', '--output=json', overlay],
  ['check', overlay],
  ['check', '--output=json', image],
  ['snapshot', '-c', 's1', image],
  ['snapshot', '-l', image],
  ['measure', '-O', 'qcow2', image],
  ['create', '-q', '-f', 'raw', raw, '1M'],
  ['info', raw],
  ['resize', '-q', image, '+1M'],
  ['convert', '-O', 'raw', overlay, raw],
  ['convert', '-O', 'qcow2', overlay, join(scratch, 'd.qcow2')],
  ['compare', '-q', overlay, join(scratch, 'd.qcow2')],
  ['rebase', '-b', '', '-q', overlay],
  ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'qcow2', overlay],
  ['io', '-c', 'write -P 0x44 0 256k', overlay],
  ['commit', '-q', overlay],
];
const failed = [];
const write = process.stdout.write;
const writeError = process.stderr.write;
try {
  // The commands' output is not wanted; errors are (a command that fails trains less, but the build goes on).
  process.stdout.write = () => true;
  process.stderr.write = () => true;
  for (const argv of commands) {
    const code = await program.main(argv);
    if (code !== 0) failed.push(argv[0]);
  }
} finally {
  process.stdout.write = write;
  process.stderr.write = writeError;
  rmSync(scratch, { recursive: true, force: true });
}
const cache = script.createCachedData();
writeFileSync(cacheFile, cache);
if (failed.length > 0) console.warn(`code cache: these training commands failed: ${failed.join(', ')}`);
console.log(`dist/qcow.cjs.cache: ${(cache.length / 1024).toFixed(0)} KiB`);
