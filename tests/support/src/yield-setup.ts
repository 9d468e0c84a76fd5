import { afterEach } from 'vitest';

/**
 * Test files that drive child processes with spawnSync keep the worker's event loop busy from one test to the
 * next (awaiting a settled promise is a microtask), so vitest's worker-to-runner messages wait, and after 60 s
 * fail with "Timeout calling onTaskUpdate". One macrotask turn after each test lets them through.
 */
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
