import { describe, expect, it } from 'vitest';
import { MessageBuilder, viewOf } from './wire.js';

describe('MessageBuilder', () => {
  it('keeps every field when it grows past its capacity', () => {
    const name = new Uint8Array(100).fill(0x61);
    const message = new MessageBuilder(4).u32(name.length).bytesOf(name).u16(2).u64(2 ** 40 + 5).u32(7).finish();
    const view = viewOf(message);
    expect(message.length).toBe(4 + 100 + 2 + 8 + 4);
    expect(view.getUint32(0)).toBe(100);
    expect(message.subarray(4, 104).every((b) => b === 0x61)).toBe(true);
    expect(view.getUint16(104)).toBe(2);
    expect(view.getBigUint64(106)).toBe(2n ** 40n + 5n);
    expect(view.getUint32(114)).toBe(7);
  });
});
