import { isDiskError } from '@q/raw';
import { UsageError, ExitError } from './usage-error.js';

/** One line for any failure: the file when known, then what is wrong. Never a stack trace. */
export function describeError(error: unknown, fallbackFile?: string): string {
  if (isDiskError(error)) {
    const file = error.file ?? fallbackFile;
    return file === undefined ? error.message : `'${file}': ${error.message}`;
  }
  if (error instanceof UsageError || error instanceof ExitError) return error.message;
  if (error instanceof Error) return `internal error: ${error.message}`;
  return `internal error: ${String(error)}`;
}
