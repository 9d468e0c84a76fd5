import { describe, expect, it } from 'vitest';
import { MemoryBlockFile, RawDisk, RecordingBlockFile } from '@q/raw';
import { CACHE_MODES, isCacheMode, withCacheMode, type CacheMode } from './cache-mode-device.js';

/** A raw disk over a recorded memory file, seen through cache mode `mode`: the log shows what reached the file. */
async function recorded(mode: CacheMode): Promise<{ device: Awaited<ReturnType<typeof withCacheMode>>; file: RecordingBlockFile }> {
  const file = await RecordingBlockFile.wrap(new MemoryBlockFile(new Uint8Array(1 << 20)));
  return { device: withCacheMode(await RawDisk.open(file), mode), file };
}

/** The kinds of the recorded operations in order: 'write' and 'flush'. */
const kinds = (file: RecordingBlockFile): string[] => file.ops.map((op) => op.kind);

describe('withCacheMode', () => {
  it('writethrough and directsync: every write and write of zeroes is flushed before it resolves; discards are not', async () => {
    for (const mode of ['writethrough', 'directsync'] as const) {
      const { device, file } = await recorded(mode);
      await device.write(new Uint8Array(4096).fill(1), 0);
      // Durable already: the flush completed before write() resolved.
      expect(kinds(file)).toEqual(['write', 'flush']);
      expect(file.ops[0]).toMatchObject({ kind: 'write', durableAt: 1 });
      await device.writeZeroes(8192, 4096);
      expect(kinds(file).slice(2).at(-1)).toBe('flush');
      const before = file.opCount;
      await device.discard(0, 4096);
      expect(file.ops.slice(before).some((op) => op.kind === 'flush')).toBe(false);
    }
  });

  it('writeback and none: writes are not flushed until the client flushes', async () => {
    for (const mode of ['writeback', 'none'] as const) {
      const { device, file } = await recorded(mode);
      await device.write(new Uint8Array(4096).fill(1), 0);
      await device.write(new Uint8Array(4096).fill(2), 4096);
      expect(kinds(file)).toEqual(['write', 'write']);
      await device.flush();
      expect(kinds(file)).toEqual(['write', 'write', 'flush']);
    }
  });

  it('unsafe: flushes do nothing, writes still land', async () => {
    const { device, file } = await recorded('unsafe');
    await device.write(new Uint8Array(4096).fill(3), 0);
    await device.flush();
    await device.flush();
    expect(kinds(file)).toEqual(['write']);
    const back = new Uint8Array(4096);
    await device.read(back, 0);
    expect(back.every((b) => b === 3)).toBe(true);
  });

  it('keeps the device as it is otherwise: size, format, read-only, backing', async () => {
    const raw = await RawDisk.open(new MemoryBlockFile(new Uint8Array(8192), { writable: false }));
    for (const mode of CACHE_MODES) {
      const device = withCacheMode(raw, mode);
      expect({ size: device.size, format: device.format, readOnly: device.readOnly, backing: device.backing }).toEqual({
        size: 8192,
        format: 'raw',
        readOnly: true,
        backing: undefined,
      });
    }
  });

  it('isCacheMode takes exactly QEMU mode names', () => {
    expect(CACHE_MODES.every(isCacheMode)).toBe(true);
    expect(['WRITEBACK', '', 'directio', 'off'].some(isCacheMode)).toBe(false);
  });
});
