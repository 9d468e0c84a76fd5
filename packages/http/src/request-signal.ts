/**
 * The abort signal of one try of a request: aborted when the file closes (its parent signal) or when the try runs
 * past its time limit. Which of the two happened decides the error: a close is final, a timeout is retried.
 * Linked by hand rather than with AbortSignal.any/timeout, which older browsers and Node 20.0-20.2 lack.
 */
export interface TrySignal {
  readonly signal: AbortSignal;
  timedOut(): boolean;
  /** Stops the timer and unlinks from the parent; call when the body has been read or dropped. */
  dispose(): void;
}

export function trySignal(parent: AbortSignal, timeoutMs: number): TrySignal {
  const controller = new AbortController();
  let expired = false;
  const onParentAbort = (): void => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener('abort', onParentAbort, { once: true });
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  return {
    signal: controller.signal,
    timedOut: () => expired,
    dispose: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onParentAbort);
    },
  };
}

/** Waits `ms`, or rejects with `onAbort()` as soon as `signal` aborts (a file closed while retrying). */
export function sleep(ms: number, signal: AbortSignal, onAbort: () => Error): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(onAbort());
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = (): void => {
      clearTimeout(timer);
      reject(onAbort());
    };
    signal.addEventListener('abort', abort, { once: true });
  });
}
