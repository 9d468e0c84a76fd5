#!/usr/bin/env node
'use strict';
// The `qcow` bin. It runs the program, dist/qcow.cjs, through V8's code cache that `pnpm build` made next to it
// (dist/qcow.cjs.cache: the program's functions compiled while it ran a set of commands), so a command starts
// without parsing and compiling the program again. V8 rejects a cache made by another Node version or with other
// V8 flags, and the program then compiles as it goes, as without one. This file is committed, not built: pnpm
// links a workspace package's bins at install, before anything is built.
const { loadProgram } = require('./program.cjs');

const loaded = loadProgram(process.env['QCOW_CODE_CACHE'] !== '0');
if (loaded === undefined) {
  // A published tarball always has dist/ (the prepack guard refuses to pack without it).
  process.stderr.write('qcow: @q/cli is not built yet (run `pnpm build` in the workspace)\n');
  process.exit(1);
}
loaded.exports.run(process.argv.slice(2));
