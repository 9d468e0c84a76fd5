import { describe, expect, it } from 'vitest';
import type { BlockDevice } from '@q/raw';
import { runBench, type BenchPlan } from './bench.js';

/** A device that records requests and flushes, each request taking a few event-loop turns. */
function recordingDevice(size: number) {
  const log: Array<{ kind: 'write' | 'read' | 'flush'; offset?: number; inFlight: number }> = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const slow = async (kind: 'write' | 'read', offset: number): Promise<void> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    log.push({ kind, offset, inFlight });
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    inFlight--;
  };
  const device = {
    name: 'test',
    format: 'raw',
    size,
    readOnly: false,
    backing: undefined,
    read: (_dst: Uint8Array, offset: number) => slow('read', offset),
    write: (_src: Uint8Array, offset: number) => slow('write', offset),
    flush: async () => void log.push({ kind: 'flush', inFlight }),
  } as unknown as BlockDevice;
  return { device, log, maxInFlight: () => maxInFlight };
}

const plan = (overrides: Partial<BenchPlan>): BenchPlan => ({
  count: 100,
  depth: 16,
  size: 4096,
  step: 4096,
  offset: 0,
  write: true,
  pattern: 0,
  flushInterval: 0,
  drain: true,
  ...overrides,
});

describe('runBench', () => {
  it('sends count requests, depth at a time, at offset + i * step', async () => {
    const { device, log, maxInFlight } = recordingDevice(1 << 30);
    await runBench(device, plan({ count: 100, offset: 8192, step: 12288 }));
    expect(log).toHaveLength(100);
    expect(maxInFlight()).toBe(16);
    expect(log.map((e) => e.offset).sort((a, b) => a! - b!)).toEqual(Array.from({ length: 100 }, (_, i) => 8192 + i * 12288));
  });

  it('wraps at the end of the device', async () => {
    const { device, log } = recordingDevice(10 * 4096);
    await runBench(device, plan({ count: 25, depth: 1 }));
    expect(log.map((e) => e.offset! / 4096)).toEqual([...Array(10).keys(), ...Array(10).keys(), 0, 1, 2, 3, 4]);
  });

  it('flushes every N requests once the requests in flight have drained', async () => {
    const { device, log } = recordingDevice(1 << 30);
    await runBench(device, plan({ count: 100, flushInterval: 10 }));
    const flushes = log.filter((e) => e.kind === 'flush');
    expect(flushes).toHaveLength(9);
    for (const flush of flushes) expect(flush.inFlight).toBe(0);
  });

  it('without drain, flushes alongside the requests', async () => {
    const { device, log } = recordingDevice(1 << 30);
    await runBench(device, plan({ count: 100, flushInterval: 10, drain: false }));
    const flushes = log.filter((e) => e.kind === 'flush');
    expect(flushes).toHaveLength(9);
    expect(flushes.some((f) => f.inFlight > 0)).toBe(true);
  });
});
