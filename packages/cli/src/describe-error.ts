import { isDiskError } from '@q/raw';
import { UsageError, ExitError } from './usage-error.js';

/** qemu-img's "Could not open 'FILE': REASON" for a failed open (a lock conflict names the file only once). */
export function openFailure(error: unknown, file: string): string {
  const reason = describeError(error, file);
  return reason.startsWith('Could not open ') ? reason : `Could not open '${file}': ${reason}`;
}

/** One line for any failure: the file when known, then what is wrong. Never a stack trace. */
export function describeError(error: unknown, fallbackFile?: string): string {
  if (isDiskError(error)) {
    const file = error.file ?? fallbackFile;
    // qemu-img's words for a lock conflict, which scripts look for: "Could not open 'X': Failed to get ... lock".
    if (error.code === 'E_LOCKED' && file !== undefined) return `Could not open '${file}': ${error.message}`;
    return file === undefined ? error.message : `'${file}': ${error.message}`;
  }
  if (error instanceof UsageError || error instanceof ExitError) return error.message;
  if (error instanceof Error) return `internal error: ${error.message}`;
  return `internal error: ${String(error)}`;
}
