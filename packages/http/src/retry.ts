import { DiskError } from '@q/raw';
import { closedError, TransientFailure } from './http-errors.js';
import type { ResolvedHttpOptions } from './http-options.js';
import { sleep } from './request-signal.js';

/**
 * Runs `attempt` until it succeeds, fails for good, or has failed transiently `1 + options.retries` times. Waits
 * grow exponentially with jitter (so many clients do not retry in step), capped, and never less than the server's
 * Retry-After up to the cap. A close during a wait ends the loop at once. The error reported is the last one,
 * saying how many tries were made.
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  options: ResolvedHttpOptions,
  closing: AbortSignal,
  name: string,
): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof TransientFailure)) throw error;
      if (tries > options.retries) throw gaveUp(error.error, tries);
      await sleep(backoff(tries, options, error.retryAfterMs), closing, () => closedError(name));
    }
  }
}

/** The wait before try `tries + 1`. */
export function backoff(tries: number, options: ResolvedHttpOptions, retryAfterMs: number | undefined): number {
  const exponential = options.retryDelayMs * 2 ** (tries - 1);
  const jittered = exponential * (0.5 + Math.random() / 2);
  return Math.min(options.maxRetryDelayMs, Math.max(jittered, retryAfterMs ?? 0));
}

function gaveUp(error: DiskError, tries: number): DiskError {
  if (tries === 1) return error;
  return new DiskError(error.code, `${error.message} (gave up after ${tries} tries)`, { file: error.file, offset: error.offset, cause: error.cause });
}
