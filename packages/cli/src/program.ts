import { main } from './main.js';

export { main };

/**
 * Runs the `qcow` command line `argv` (without node and the script) as the process: its exit code becomes the
 * process's. bin/qcow.cjs calls this; the code-cache build calls `main` itself.
 */
export function run(argv: string[]): void {
  onFirstStdoutUse((stdout) => {
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
      process.stderr.write(`qcow: internal error: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode = 1;
    },
  );
}

/**
 * Runs `use` with process.stdout when something first asks for it. Node makes the stream on first access (for a
 * pipe, a socket with the stream modules: 4-5 ms), and a command that prints nothing (`commit -q`, `convert`)
 * should not pay for it. Where Node's getter cannot be wrapped, the stream is made now.
 */
function onFirstStdoutUse(use: (stdout: NodeJS.WriteStream) => void): void {
  const descriptor = Object.getOwnPropertyDescriptor(process, 'stdout');
  const get = descriptor?.get;
  if (get === undefined || descriptor?.configurable !== true) {
    use(process.stdout);
    return;
  }
  Object.defineProperty(process, 'stdout', {
    configurable: true,
    enumerable: descriptor.enumerable ?? true,
    get() {
      const stdout = get.call(process) as NodeJS.WriteStream;
      Object.defineProperty(process, 'stdout', { configurable: true, enumerable: descriptor.enumerable ?? true, get });
      use(stdout);
      return stdout;
    },
  });
}
