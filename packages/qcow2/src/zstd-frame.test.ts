import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { zstdFrameLength } from './zstd-frame.js';

function zstdCompress(data: Uint8Array, args: string[] = []): Uint8Array {
  return new Uint8Array(execFileSync('zstd', ['-q', '-c', ...args], { input: data }));
}

describe('zstdFrameLength', () => {
  const data = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7) ^ (i >> 9));

  it('measures frames written by the zstd tool, with and without checksums', () => {
    for (const args of [[], ['--no-check'], ['-19'], ['--no-check', '-1']]) {
      const frame = zstdCompress(data, args);
      const padded = new Uint8Array(frame.length + 300);
      padded.set(frame);
      padded.fill(0xaa, frame.length);
      expect(zstdFrameLength(padded)).toBe(frame.length);
    }
  });

  it('returns undefined for a truncated frame or a foreign magic', () => {
    const frame = zstdCompress(data);
    expect(zstdFrameLength(frame.subarray(0, frame.length - 1))).toBeUndefined();
    expect(zstdFrameLength(new Uint8Array([1, 2, 3, 4, 5, 6, 7]))).toBeUndefined();
  });
});
