// Makes the V8 code caches bin/qcow.cjs starts the program with. dist/qcow.cjs.cache: the program runs a set of
// everyday commands on a small scratch image in this process, then V8 serializes the bytecode of every function
// compiled by then. dist/cache/COMMAND.cache, for each command of that set: a fresh process runs only that
// command, so its cache holds only what it runs (V8 deserializes a whole cache at every start: `qcow info` with its
// own 0.3 MiB cache starts ~7 ms sooner than with the 0.6 MiB one of every command). Part of `pnpm build` (after
// tsup). A command outside the set still starts faster (the program's top level and the engine are in the whole
// program's cache) and compiles the rest as it goes.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { loadProgram, wrapProgramFile, cacheFile, commandCacheDir } = require('../bin/program.cjs');

// The copying commands raise V8's tier-up budget (src/tier-up-budget.ts), and V8 rejects a cache made under other
// flags than a start's: here the flag is left alone.
require('node:v8').setFlagsFromString = () => {};

/** Scratch images: a qcow2 image with data, an overlay over it, a raw file. */
function fixtures(dir) {
  return { dir, image: join(dir, 'a.qcow2'), overlay: join(dir, 'b.qcow2'), raw: join(dir, 'a.raw') };
}

/** The commands that make `fixtures(dir)`. */
function setup(f) {
  return [
    ['create', '-q', '-f', 'qcow2', f.image, '64M'],
    ['io', '-c', 'write -P 0x5a 0 1M', '-c', 'write -z 2M 64k', '-c', 'read -P 0x5a 0 64k', f.image],
    ['create', '-q', '-f', 'qcow2', '-b', f.image, '-F', 'qcow2', f.overlay],
    ['io', '-c', 'write -P 0x33 512k 1M', f.overlay],
    ['create', '-q', '-f', 'raw', f.raw, '1M'],
  ];
}

/**
 * The commands with a cache of their own, and what each is trained on after `setup`: each in a fresh process of its
 * own, and all of them, in this order, in the process that makes the whole program's cache (the order works on one
 * set of fixtures: commit empties the overlay before rebase takes its backing file away). The other commands (amend,
 * bitmap, dd, bench, serve) start with the whole program's cache.
 */
const COMMANDS = {
  info: (f) => [['info', f.overlay], ['info', '--output=json', '--backing-chain', f.overlay], ['info', f.raw]],
  map: (f) => [['map', f.overlay], ['map', '--output=json', f.overlay]],
  check: (f) => [['check', f.overlay], ['check', '--output=json', f.image]],
  convert: (f) => [
    ['convert', '-O', 'raw', f.overlay, join(f.dir, 'c.raw')],
    ['convert', '-O', 'qcow2', f.overlay, join(f.dir, 'c.qcow2')],
  ],
  create: (f) => [
    ['create', '-q', '-f', 'qcow2', join(f.dir, 'e.qcow2'), '64M'],
    ['create', '-q', '-f', 'qcow2', '-b', f.image, '-F', 'qcow2', join(f.dir, 'f.qcow2')],
    ['create', '-q', '-f', 'raw', join(f.dir, 'e.raw'), '1M'],
  ],
  io: (f) => [['io', '-c', 'write -P 0x44 0 256k', '-c', 'read -P 0x44 0 64k', f.overlay]],
  snapshot: (f) => [['snapshot', '-c', 's1', f.image], ['snapshot', '-l', f.image]],
  measure: (f) => [['measure', '-O', 'qcow2', f.image], ['measure', '--size', '1G', '-O', 'qcow2']],
  resize: (f) => [['resize', '-q', f.image, '+1M']],
  compare: (f) => [['compare', '-q', f.overlay, f.overlay]],
  commit: (f) => [['commit', '-q', f.overlay]],
  rebase: (f) => [
    ['rebase', '-q', '-b', f.image, '-F', 'qcow2', f.overlay],
    ['rebase', '-q', '-b', '', f.overlay],
  ],
};

/** Runs `commands` through the program's `main` with their output dropped; returns the ones that failed. */
async function runQuietly(program, commands) {
  const failed = [];
  const write = process.stdout.write;
  const writeError = process.stderr.write;
  try {
    // The commands' output is not wanted; errors are (a command that fails trains less, but the build goes on).
    process.stdout.write = () => true;
    process.stderr.write = () => true;
    for (const argv of commands) if ((await program.main(argv)) !== 0) failed.push(argv[0]);
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeError;
  }
  return failed;
}

function loadUncached() {
  const loaded = loadProgram(false);
  if (loaded === undefined) throw new Error('dist/qcow.cjs is missing: run tsup first');
  return loaded;
}

function save(file, script, failed) {
  const cache = script.createCachedData();
  writeFileSync(file, cache);
  if (failed.length > 0) console.warn(`code cache: these training commands failed: ${failed.join(', ')}`);
  console.log(`${file.slice(file.indexOf('dist'))}: ${(cache.length / 1024).toFixed(0)} KiB`);
}

if (process.argv[2] === '--command') {
  // A child of the build: trains one command's cache on fixtures its parent made.
  const [name, dir] = process.argv.slice(3);
  const { script, exports: program } = loadUncached();
  save(join(commandCacheDir, `${name}.cache`), script, await runQuietly(program, COMMANDS[name](fixtures(dir))));
} else {
  // First the wrapper into the file, so that the caches are made for the text every start compiles.
  wrapProgramFile();
  const { script, exports: program } = loadUncached();
  const scratch = mkdtempSync(join(tmpdir(), 'qcow-code-cache-'));
  try {
    const f = fixtures(scratch);
    const everyday = Object.values(COMMANDS).flatMap((train) => train(f));
    save(cacheFile, script, await runQuietly(program, [...setup(f), ...everyday]));
    rmSync(commandCacheDir, { recursive: true, force: true });
    mkdirSync(commandCacheDir);
    for (const name of Object.keys(COMMANDS)) {
      const dir = mkdtempSync(join(scratch, `${name}-`));
      const failed = await runQuietly(program, setup(fixtures(dir)));
      if (failed.length > 0) throw new Error(`code cache: the fixtures of '${name}' could not be made (${failed.join(', ')})`);
      const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--command', name, dir], { stdio: 'inherit' });
      if (child.status !== 0) throw new Error(`code cache: training '${name}' failed`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
