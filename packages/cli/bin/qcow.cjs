#!/usr/bin/env node
'use strict';
// The `qcow` bin. It runs the program, dist/qcow.cjs, through a V8 code cache that `pnpm build` made next to it
// (dist/cache/COMMAND.cache: the functions that command ran in the build; dist/qcow.cjs.cache, for a command
// without one: those a set of commands ran), so a command starts without parsing and compiling the program again.
// V8 rejects a cache made by another Node version or with other V8 flags, and the program then compiles as it
// goes, as without one. This file is committed, not built: pnpm links a workspace package's bins at install, before
// anything is built.
const { loadProgram } = require('./program.cjs');

const argv = process.argv.slice(2);
const loaded = loadProgram(process.env['QCOW_CODE_CACHE'] !== '0' && (argv[0] ?? true));
if (loaded === undefined) {
  // A published tarball always has dist/ (the prepack guard refuses to pack without it).
  process.stderr.write('qcow: @q/cli is not built yet (run `pnpm build` in the workspace)\n');
  process.exit(1);
}
loaded.exports.run(argv);
