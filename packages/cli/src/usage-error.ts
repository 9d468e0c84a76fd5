/** A mistake in how the command was called (bad flag, missing operand): reported with a hint, exit 1. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A command that ran and must end with a specific exit code and message (not a bug, not bad input). */
export class ExitError extends Error {
  override readonly name = 'ExitError';
  readonly exitCode: number;

  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}
