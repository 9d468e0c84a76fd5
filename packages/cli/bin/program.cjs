'use strict';
// Loads the `qcow` program, dist/qcow.cjs, as a vm.Script: what bin/qcow.cjs runs, and what the code-cache build
// (scripts/build-code-cache.mjs) trains and serializes. Both must compile the same text for V8 to accept a cache.
const { readFileSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const { Script } = require('node:vm');

const dist = join(__dirname, '..', 'dist');
const program = join(dist, 'qcow.cjs');
/** The cache of every command the build trains: what a command without a cache of its own starts with. */
const cacheFile = `${program}.cache`;
/** Where a command's own cache lives (`dist/cache/info.cache`): only the functions that command ran. */
const commandCacheDir = join(dist, 'cache');

/**
 * The cache a start of `command` deserializes: its own when the build made one (V8 deserializes every function in
 * a cache before the program runs, so a cache of what `info` runs starts `info` ~7 ms sooner than one of every
 * command), the whole program's otherwise.
 */
function cacheFileFor(command) {
  return typeof command === 'string' && /^[a-z]+$/.test(command) ? join(commandCacheDir, `${command}.cache`) : undefined;
}

/**
 * CommonJS's own wrapper, which the build writes around the program in the file (wrapProgramFile): compiling the
 * text as read saves V8 a flat copy of 360 KiB (a source joined from pieces is copied whole before it is compiled
 * or looked up: ~1 ms of every start). On the first line, so that line numbers in stack traces stay the file's.
 */
const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname) {';
const WRAPPER_TAIL = '\n})';

/** The program's text inside the wrapper: as read when the build put it there, else joined here. */
function wrapped(source) {
  return source.startsWith(WRAPPER_HEAD) ? source : `${WRAPPER_HEAD}${source}${WRAPPER_TAIL}`;
}

/**
 * Puts the wrapper around the program in dist/qcow.cjs, once (the build's step after tsup). The file is then an
 * expression, which only loadProgram runs. A program built without the step (tsup alone) still loads: the
 * wrapper is added to the text in memory.
 */
function wrapProgramFile() {
  const source = readFileSync(program, 'utf8');
  const text = wrapped(source);
  if (text !== source) writeFileSync(program, text);
}

function readOptional(file) {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/**
 * Compiles and evaluates the program and returns its exports (`run`, `main`) and the script, or undefined when the
 * package is not built. `cache`: false for none, true for the whole program's, or the command about to run (its
 * own cache when there is one, else the whole program's).
 */
function loadProgram(cache) {
  let source;
  try {
    source = readFileSync(program, 'utf8');
  } catch {
    return undefined;
  }
  let cachedData;
  if (cache !== false) {
    const own = cache === true ? undefined : cacheFileFor(cache);
    // No cache at all (a build without one): compile as Node would.
    cachedData = (own === undefined ? undefined : readOptional(own)) ?? readOptional(cacheFile);
  }
  const script = new Script(wrapped(source), { filename: program, cachedData });
  const programModule = { exports: {} };
  script.runInThisContext()(programModule.exports, createRequire(program), programModule, program, dist);
  return { script, exports: programModule.exports };
}

module.exports = { loadProgram, wrapProgramFile, cacheFile, commandCacheDir };
