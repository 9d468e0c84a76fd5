import { afterEach } from 'vitest';

/**
 * Test files that drive child processes with spawnSync keep the worker's event loop busy from one test to the
 * next (awaiting a settled promise is a microtask), so vitest's worker-to-runner messages wait, and after 60 s
 * fail with "Timeout calling onTaskUpdate". One macrotask turn after each test lets them through.
 */
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));

/**
 * One macrotask turn, for a test whose own synchronous steps (spawnSync of qemu-img on a big image) add up to a
 * minute on a busy machine: await it between the steps.
 */
export function yieldTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}
