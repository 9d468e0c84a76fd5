'use strict';
// Loads the `qcow` program, dist/qcow.cjs, as a vm.Script: what bin/qcow.cjs runs, and what the code-cache build
// (scripts/build-code-cache.mjs) trains and serializes. Both must compile the same text for V8 to accept the cache.
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { join } = require('node:path');
const { Script } = require('node:vm');

const dist = join(__dirname, '..', 'dist');
const program = join(dist, 'qcow.cjs');
const cacheFile = `${program}.cache`;

/**
 * Compiles and evaluates the program (with the code cache when `useCache` and the file is there) and returns its
 * exports (`run`, `main`) and the script, or undefined when the package is not built.
 */
function loadProgram(useCache) {
  let source;
  try {
    source = readFileSync(program, 'utf8');
  } catch {
    return undefined;
  }
  let cachedData;
  if (useCache) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // No cache (a build without one): compile as Node would.
    }
  }
  // CommonJS's own wrapper, on the first line so that line numbers in stack traces stay the file's.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: program, cachedData });
  const programModule = { exports: {} };
  script.runInThisContext()(programModule.exports, createRequire(program), programModule, program, dist);
  return { script, exports: programModule.exports };
}

module.exports = { loadProgram, cacheFile };
