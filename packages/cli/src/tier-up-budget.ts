/**
 * V8 hands a function to its optimizing compiler once it has run about 66 KB of bytecode (`--interrupt-budget`).
 * A command that copies for half a second spent a third of its CPU compiling code on background threads that it
 * then barely ran: `qcow commit` of 256 MiB took user 0.56 s and 0.62 s wall with the default, 0.35 s and 0.50 s
 * with a budget of 500 KB. Code that runs for long is still optimized, a few milliseconds later (`qcow bench` over
 * 300k requests: the same time). The flag is process-wide (worker threads get it too) and applies to functions as
 * they next run out of budget, so it is set when such a command starts, before its code loads. Only the copying
 * commands set it: loading node:v8 costs 4-6 ms, more than `qcow info` could gain.
 */
export async function raiseTierUpBudget(): Promise<void> {
  const { setFlagsFromString } = await import('node:v8');
  setFlagsFromString('--interrupt-budget=500000');
  // V8 grows the young generation (up to 16 MiB per semi-space on 64-bit) when a program allocates fast, and never
  // gives it back. A copy's garbage is short-lived and small (extents, promises, views), so growing buys nothing:
  // convert -O raw of the 2 GiB zlib image peaked at heapTotal 31 MiB with growth, 17-18 without, same speed
  // (also for convert -O qcow2 -c and a plain convert, 3 runs each). Unlike --max-semi-space-size, this flag
  // still takes effect once the heap exists.
  setFlagsFromString('--semi-space-growth-factor=1');
}

/** `load`, after raising the tier-up budget: for the commands whose work is a long copy (see raiseTierUpBudget). */
export function copying<T>(load: () => Promise<T>): () => Promise<T> {
  return async () => {
    await raiseTierUpBudget();
    return load();
  };
}
