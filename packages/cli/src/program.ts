import { main } from './main.js';
import { writeDirectly, writeErr } from './process-output.js';

export { main };

/**
 * Runs the `qcow` command line `argv` (without node and the script) as the process: its exit code becomes the
 * process's. bin/qcow.cjs calls this; the code-cache build calls `main` itself.
 */
export function run(argv: string[]): void {
  writeDirectly((stdout) => {
    // Writing to a closed pipe (`qcow convert x - | head`) is the reader's choice, not an error worth a trace.
    stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
  });
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      writeErr(`qcow: internal error: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
