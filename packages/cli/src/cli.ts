import { setFlagsFromString } from 'node:v8';
import { main } from './main.js';

// V8 hands a function to its optimizing compiler once it has run about 66 KB of bytecode (--interrupt-budget). A
// command that lives half a second spent a third of its CPU compiling code on background threads that it then
// barely ran (commit of 256 MiB: user 0.56 -> 0.35 s, wall 0.62 -> 0.50 s with a budget of 500 KB); code that runs
// for long is still optimized, a few milliseconds later (qcow bench over 300k requests: same time). Set before any
// command is loaded; it is process-wide, so worker threads get it too.
setFlagsFromString('--interrupt-budget=500000');

// Writing to a closed pipe (`qcow convert x - | head`) is the reader's choice, not an error worth a trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`qcow: internal error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
