/** `[start, end)` cut at multiples of `chunk` (aligned, so a chunk never straddles a cluster two chunks write). */
export function splitRange(start: number, end: number, chunk: number): Array<[number, number]> {
  const parts: Array<[number, number]> = [];
  for (let at = start; at < end; ) {
    const next = Math.min(end, (Math.floor(at / chunk) + 1) * chunk);
    parts.push([at, next]);
    at = next;
  }
  return parts;
}

/**
 * Runs `work` over `items` with at most `parallel` in flight; the first failure stops new work and is thrown. The
 * workers draw from `items` as they go: work starts on the first items while the rest are still being found.
 */
export async function runQueue<T>(items: AsyncIterable<T>, parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  const source = items[Symbol.asyncIterator]();
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed) {
      // An async generator answers overlapping next() calls in turn: each item goes to one worker.
      const next = await source.next();
      if (next.done === true) return;
      try {
        await work(next.value);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: parallel }, worker));
  const rejected = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (rejected !== undefined) throw rejected.reason;
}
