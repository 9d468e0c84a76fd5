import { isDiskError } from '@q/raw';

/** A decoder slower than this on one input has an unbounded loop somewhere. */
export const SLOW_MS = 250;

/**
 * Runs one decoder on fuzzed bytes: returns its value, or undefined when it threw a DiskError. Anything else (a
 * TypeError or RangeError means a missing bound check) or a slow run fails the property.
 */
export function valueOrDiskError<T>(what: string, run: () => T): T | undefined {
  const started = performance.now();
  let value: T | undefined;
  try {
    value = run();
  } catch (error) {
    if (!isDiskError(error)) {
      throw new Error(`${what} threw ${(error as Error)?.name ?? typeof error} (not a DiskError): ${(error as Error)?.message ?? String(error)}`, {
        cause: error,
      });
    }
    value = undefined;
  }
  const elapsed = performance.now() - started;
  if (elapsed > SLOW_MS) throw new Error(`${what} took ${elapsed.toFixed(0)} ms`);
  return value;
}
