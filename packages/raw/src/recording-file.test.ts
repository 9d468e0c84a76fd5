import { describe, expect, it } from 'vitest';
import type { BlockFile, BlockFileCapabilities } from './block-file.js';
import { describeBlockFileConformance, expectSameBytes } from './conformance.js';
import { DiskError } from './errors.js';
import { MemoryBlockFile } from './memory-file.js';
import { RecordingBlockFile, type CrashPolicy } from './recording-file.js';

describeBlockFileConformance('RecordingBlockFile', {
  create: async () => RecordingBlockFile.wrap(new MemoryBlockFile()),
  readOnly: async (bytes) => RecordingBlockFile.wrap(new MemoryBlockFile(bytes.slice(), { writable: false })),
});

describeBlockFileConformance('RecordingBlockFile (deallocating)', {
  create: async () => RecordingBlockFile.wrap(new MemoryBlockFile(new Uint8Array(0), { deallocate: true })),
  readOnly: async (bytes) => RecordingBlockFile.wrap(new MemoryBlockFile(bytes.slice(), { writable: false, deallocate: true })),
});

const fill = (length: number, value: number): Uint8Array => new Uint8Array(length).fill(value);
const text = (bytes: Uint8Array): string => String.fromCharCode(...bytes);
const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe('RecordingBlockFile', () => {
  it('records writes, truncates and flushes over a copy of the base', async () => {
    const inner = new MemoryBlockFile(ascii('base....'));
    const file = await RecordingBlockFile.wrap(inner);
    await file.write(ascii('AB'), 0);
    await file.flush();
    await file.truncate(12);
    await file.write(ascii('Z'), 11);
    expect(file.ops.map((op) => op.kind)).toEqual(['write', 'flush', 'truncate', 'write']);
    expect(file.opCount).toBe(4);
    expect(file.flushIndexes()).toEqual([1]);
    expect(text(file.base)).toBe('base....');
    expect(file.ops[0]).toMatchObject({ kind: 'write', offset: 0, durableAt: 1 });
    expect(file.ops[2]).toMatchObject({ kind: 'truncate', size: 12, previousSize: 8, durableAt: undefined });
    // The inner file saw everything.
    expect(text(inner.contents())).toBe('ABse....\0\0\0Z');
  });

  it('keeps its own copy of written bytes', async () => {
    const file = await RecordingBlockFile.wrap(new MemoryBlockFile());
    const src = ascii('abc');
    await file.write(src, 0);
    src.fill(0);
    expect(text(file.materialize(1, { kind: 'keep-all' }))).toBe('abc');
  });

  it('materialises every crash point: durable prefix, then what the policy keeps', async () => {
    const file = await RecordingBlockFile.wrap(new MemoryBlockFile(ascii('00000000')));
    await file.write(ascii('1'), 0); // 0
    await file.write(ascii('2'), 1); // 1
    await file.flush(); // 2
    await file.write(ascii('3'), 2); // 3
    await file.write(ascii('4'), 3); // 4
    const keepAll = (cut: number): string => text(file.materialize(cut, { kind: 'keep-all' }));
    const dropAll = (cut: number): string => text(file.materialize(cut, { kind: 'drop-all' }));
    expect([0, 1, 2, 3, 4, 5].map(keepAll)).toEqual(['00000000', '10000000', '12000000', '12000000', '12300000', '12340000']);
    // Before the flush completed nothing is durable; after it, its writes are.
    expect([0, 1, 2, 3, 4, 5].map(dropAll)).toEqual(['00000000', '00000000', '00000000', '12000000', '12000000', '12000000']);
    const crash = file.crash(5, { kind: 'explicit', order: [4] });
    expect(text(crash.bytes)).toBe('12040000');
    expect(crash).toMatchObject({ cut: 5, lastFlush: 2, durable: [0, 1], pending: [3, 4], applied: [4] });
  });

  it('applies reordered overlapping writes in the chosen order', async () => {
    const file = await RecordingBlockFile.wrap(new MemoryBlockFile());
    await file.write(ascii('old!'), 0);
    await file.write(ascii('new!'), 0);
    expect(text(file.materialize(2, { kind: 'keep-all' }))).toBe('new!');
    expect(text(file.materialize(2, { kind: 'explicit', order: [1, 0] }))).toBe('old!');
    expect(text(file.materialize(2, { kind: 'reorder', seed: 1, keep: 1 }))).toBe('old!');
  });

  it('random policies are deterministic per seed and stay within the pending writes', async () => {
    const file = await RecordingBlockFile.wrap(new MemoryBlockFile(fill(64, 0x2e)));
    await file.write(fill(8, 0x41), 0);
    await file.flush();
    for (let i = 0; i < 20; i++) await file.write(fill(4, 0x61 + i), 8 + i * 2);
    const cut = file.opCount;
    const policies: CrashPolicy[] = [
      { kind: 'subset', seed: 7 },
      { kind: 'reorder', seed: 7 },
      { kind: 'subset', seed: 8, keep: 0.2 },
      { kind: 'reorder', seed: 9, keep: 0.9 },
    ];
    for (const policy of policies) {
      const a = file.crash(cut, policy);
      const b = file.crash(cut, policy);
      expect(a.applied).toEqual(b.applied);
      expectSameBytes(a.bytes, b.bytes, `crash image (${policy.kind})`);
      expect(a.durable).toEqual([0]);
      for (const index of a.applied) expect(a.pending).toContain(index);
      expect(new Set(a.applied).size).toBe(a.applied.length);
      if (policy.kind === 'subset') expect([...a.applied].sort((x, y) => x - y)).toEqual(a.applied);
      if (policy.kind === 'reorder' && a.applied.length > 1) expect([...a.applied].sort((x, y) => x - y)).not.toEqual(a.applied);
      // The durable write is always there.
      expect(a.bytes.subarray(0, 8)).toEqual(fill(8, 0x41));
    }
    const kept = file.crash(cut, { kind: 'subset', seed: 7 }).applied.length;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(20);
  });

  it('does not count a write still in flight when a flush is issued as covered by it', async () => {
    const inner = new GatedFile();
    const file = await RecordingBlockFile.wrap(inner);
    const write = file.write(ascii('slow'), 0); // op 0, held
    await file.flush(); // op 1: issued while op 0 was in flight
    inner.release();
    await write;
    expect(file.ops[0]).toMatchObject({ durableAt: undefined });
    expect(text(file.materialize(2, { kind: 'drop-all' }))).toBe('');
    await file.flush(); // op 2 covers it
    expect(file.ops[0]).toMatchObject({ durableAt: 2 });
    expect(text(file.materialize(3, { kind: 'drop-all' }))).toBe('slow');
    expect(text(file.materialize(2, { kind: 'drop-all' }))).toBe('');
  });

  it('treats a write that failed as never durable, and does not log what the file refused', async () => {
    const inner = new GatedFile();
    inner.release();
    const file = await RecordingBlockFile.wrap(inner);
    inner.failNext = true;
    await expect(file.write(ascii('bad'), 0)).rejects.toThrow(/injected/);
    await file.flush();
    expect(file.classify(2)).toEqual({ durable: [], pending: [0], lastFlush: 1 });
    await expect(file.write(ascii('x'), -1)).rejects.toThrow();
    expect(file.opCount).toBe(2);
    const readOnly = await RecordingBlockFile.wrap(new MemoryBlockFile(ascii('ro'), { writable: false }));
    await expect(readOnly.write(ascii('x'), 0)).rejects.toThrow();
    expect(readOnly.opCount).toBe(0);
  });

  it('keeps a lost extension from cutting off a write that persisted', async () => {
    const file = await RecordingBlockFile.wrap(new MemoryBlockFile(ascii('ab')));
    await file.truncate(4); // 0
    await file.write(ascii('XY'), 6); // 1
    expect(text(file.materialize(2, { kind: 'keep-all' }))).toBe('ab\0\0\0\0XY');
    expect(text(file.materialize(2, { kind: 'explicit', order: [1, 0] }))).toBe('ab\0\0\0\0XY');
    expect(text(file.materialize(2, { kind: 'explicit', order: [0] }))).toBe('ab\0\0');
    await file.flush(); // 2
    await file.truncate(1); // 3: shrinking applies as it is
    expect(text(file.materialize(4, { kind: 'keep-all' }))).toBe('a');
    expect(text(file.materialize(4, { kind: 'drop-all' }))).toBe('ab\0\0\0\0XY');
  });

  it('records deallocations as zeros over the range, inside the length, pending until a flush covers them', async () => {
    const inner = new MemoryBlockFile(ascii('abcdefgh'), { deallocate: true });
    const file = await RecordingBlockFile.wrap(inner);
    expect(await file.deallocate(2, 3)).toBe(true); // 0
    expect(text(inner.contents())).toBe('ab\0\0\0fgh');
    await file.write(ascii('XY'), 3); // 1: a later write over the hole
    await file.flush(); // 2
    expect(await file.deallocate(6, 100)).toBe(true); // 3: past the end: the length stays
    expect(file.ops[0]).toMatchObject({ kind: 'deallocate', offset: 2, length: 3, durableAt: 2 });
    expect(file.ops[3]).toMatchObject({ kind: 'deallocate', offset: 6, length: 100, durableAt: undefined });
    expect(text(file.materialize(1, { kind: 'keep-all' }))).toBe('ab\0\0\0fgh');
    expect(text(file.materialize(2, { kind: 'explicit', order: [1, 0] }))).toBe('ab\0\0\0fgh');
    expect(text(file.materialize(3, { kind: 'drop-all' }))).toBe('ab\0XYfgh');
    expect(text(file.materialize(4, { kind: 'drop-all' }))).toBe('ab\0XYfgh');
    expect(text(file.materialize(4, { kind: 'keep-all' }))).toBe('ab\0XYf\0\0');
    expect(await file.size()).toBe(8);
  });

  it('logs nothing to zero when the file cannot deallocate', async () => {
    const file = await RecordingBlockFile.wrap(new MemoryBlockFile(ascii('abcd')));
    expect(file.capabilities.deallocate).toBe(false);
    expect(await file.deallocate(0, 2)).toBe(false);
    expect(file.opCount).toBe(0);
    const refusing = await RecordingBlockFile.wrap(new RefusingFile(ascii('abcd')));
    expect(await refusing.deallocate(0, 2)).toBe(false);
    expect(text(refusing.materialize(refusing.opCount, { kind: 'keep-all' }))).toBe('abcd');
  });

  it('refuses crash points outside the log and explicit orders naming durable ops', async () => {
    const file = await RecordingBlockFile.wrap(new MemoryBlockFile());
    await file.write(ascii('a'), 0);
    await file.flush();
    expect(() => file.materialize(3, { kind: 'keep-all' })).toThrow(DiskError);
    expect(() => file.materialize(-1, { kind: 'keep-all' })).toThrow(DiskError);
    expect(() => file.materialize(2, { kind: 'explicit', order: [0] })).toThrow(/not pending/);
  });
});

/** Says it can deallocate, then cannot (a file system without holes behind a capable adapter). */
class RefusingFile extends MemoryBlockFile {
  constructor(bytes: Uint8Array) {
    super(bytes, { deallocate: true });
  }

  override async deallocate(): Promise<boolean> {
    return false;
  }
}

/** A memory file whose writes wait for `release()` (to hold one in flight) or fail once on demand. */
class GatedFile implements BlockFile {
  readonly name = 'gated';
  readonly capabilities: BlockFileCapabilities = { writable: true, sparse: false };
  failNext = false;
  private readonly memory = new MemoryBlockFile();
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;

  constructor() {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
  }

  read(dst: Uint8Array, offset: number): Promise<number> {
    return this.memory.read(dst, offset);
  }

  async write(src: Uint8Array, offset: number): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new DiskError('E_IO', 'injected failure');
    }
    const copy = src.slice();
    if (this.gate !== undefined) await this.gate;
    await this.memory.write(copy, offset);
  }

  flush(): Promise<void> {
    return this.memory.flush();
  }

  size(): Promise<number> {
    return this.memory.size();
  }

  truncate(size: number): Promise<void> {
    return this.memory.truncate(size);
  }

  close(): Promise<void> {
    return this.memory.close();
  }
}
