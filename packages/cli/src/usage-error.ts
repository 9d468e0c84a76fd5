/** A mistake in how the command was called (bad flag, missing operand): reported with a hint, exit 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * A command that must end with a message in qemu-img's words and no usage line (not a bug): with `exitCode`, or
 * without one the command's own exit code for errors (1; compare's is 2).
 */
export class ExitError extends Error {
  override readonly name = 'ExitError';
  readonly exitCode: number | undefined;

  constructor(message: string, exitCode?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

/**
 * `--help`, or `-h` where a command gives -h no value: thrown by getopt so that every command (and every command a
 * later change adds) answers help the same way, before it opens anything. main prints the command's help, exit 0.
 */
export class HelpRequest extends Error {
  override readonly name = 'HelpRequest';

  constructor() {
    super('help requested');
  }
}
