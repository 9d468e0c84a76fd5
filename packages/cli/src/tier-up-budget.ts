/**
 * V8 hands a function to its optimizing compiler once it has run about 66 KB of bytecode (`--interrupt-budget`).
 * A command that copies for half a second spent a third of its CPU compiling code on background threads that it
 * then barely ran: `qcow commit` of 256 MiB took user 0.56 s and 0.62 s wall with the default, 0.35 s and 0.50 s
 * with a budget of 500 KB. Code that runs for long is still optimized, a few milliseconds later (`qcow bench` over
 * 300k requests: the same time). The flag is process-wide (worker threads get it too) and applies to functions as
 * they next run out of budget, so it is set when such a command starts, before its code loads. Only the copying
 * commands set it (with HOLD_YOUNG_GENERATION): loading node:v8 costs 4-6 ms, more than `qcow info` could gain.
 */
export async function setCopyingFlags(): Promise<void> {
  const { setFlagsFromString } = await import('node:v8');
  setFlagsFromString(`--interrupt-budget=500000 ${HOLD_YOUNG_GENERATION}`);
}

/**
 * Keeps V8's young generation at its first size: V8 grows it (up to 16 MiB per semi-space on 64-bit) when a program
 * allocates fast, and never gives it back. Every page it grows into is a fresh page, and a fresh page costs ~10 us to
 * fault in on this kind of VM: more than the extra scavenges cost. `qcow commit` of 256 MiB: 39 scavenges instead of
 * 18, page faults 5635 -> 4300, peak RSS 62 -> 57 MiB, wall 252 -> 230 ms; rebase of the 1 GiB chain 340 -> 321 ms
 * (medians of 9, alternating, 2026-12-04; in-process GC time alone had said the opposite: 17 ms against 9). For
 * convert -O raw, whose peak memory has a target: of the 2 GiB zlib image, heapTotal at the peak 31 -> 17-18 MiB.
 * Unlike --max-semi-space-size, this flag takes effect once the heap exists.
 */
const HOLD_YOUNG_GENERATION = '--semi-space-growth-factor=1';

/**
 * `load`, after raising the tier-up budget and holding the young generation: for the commands whose work is a long
 * copy (see setCopyingFlags, HOLD_YOUNG_GENERATION).
 */
export function copying<T>(load: () => Promise<T>): () => Promise<T> {
  return async () => {
    await setCopyingFlags();
    return load();
  };
}
