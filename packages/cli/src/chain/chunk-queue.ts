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

/** Runs `work` over `items` with at most `parallel` in flight; the first failure stops new work and is thrown. */
export async function runQueue<T>(items: readonly T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(parallel, items.length) }, worker));
  const rejected = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (rejected !== undefined) throw rejected.reason;
}
