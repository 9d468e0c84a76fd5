import { describe, expect, it } from 'vitest';
import { ByteReader } from './byte-reader.js';
import { NbdProtocolError } from './nbd-error.js';

async function* chunks(...parts: number[][]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield new Uint8Array(part);
}

describe('ByteReader.replaceSource (the STARTTLS switch)', () => {
  it('reads from the new source once the old one is read up to a message boundary', async () => {
    const reader = new ByteReader(chunks([1, 2, 3, 4]));
    expect([...(await reader.readExact(4))]).toEqual([1, 2, 3, 4]);
    expect(reader.bufferedLength).toBe(0);
    reader.replaceSource(chunks([5], [6, 7]));
    expect([...(await reader.readExact(3))]).toEqual([5, 6, 7]);
    expect(await reader.read(1)).toBeUndefined();
  });

  it('refuses to switch with bytes of the old source unread: they would be taken as the new stream', async () => {
    const reader = new ByteReader(chunks([1, 2, 3, 4, 5]));
    await reader.readExact(4);
    expect(reader.bufferedLength).toBe(1);
    expect(() => reader.replaceSource(chunks([9]))).toThrow(NbdProtocolError);
  });

  it('a stopped reader stays stopped after a switch', async () => {
    const reader = new ByteReader(chunks([1]));
    reader.stop();
    reader.replaceSource(chunks([2]));
    expect(await reader.read(1)).toBeUndefined();
  });
});

describe('ByteReader.readSome', () => {
  it('hands out views of the chunks as they came, up to the limit, then undefined at the end', async () => {
    const reader = new ByteReader(chunks([1, 2, 3], [4, 5]));
    expect([...(await reader.readExact(1))]).toEqual([1]);
    expect([...((await reader.readSome(10)) ?? [])]).toEqual([2, 3]);
    expect([...((await reader.readSome(1)) ?? [])]).toEqual([4]);
    expect([...((await reader.readSome(10)) ?? [])]).toEqual([5]);
    expect(await reader.readSome(10)).toBeUndefined();
  });
});

describe('ByteReader.readInto', () => {
  it('fills the given buffer across chunk boundaries and leaves the rest for the next read', async () => {
    const reader = new ByteReader(chunks([1, 2], [3, 4, 5], [6]));
    const dst = new Uint8Array(4);
    await reader.readInto(dst);
    expect([...dst]).toEqual([1, 2, 3, 4]);
    expect([...(await reader.readExact(2))]).toEqual([5, 6]);
  });

  it('is a protocol error when the stream ends before the buffer is full', async () => {
    const reader = new ByteReader(chunks([1, 2]));
    await expect(reader.readInto(new Uint8Array(3))).rejects.toThrow(NbdProtocolError);
  });
});
