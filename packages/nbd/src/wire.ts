/**
 * Big-endian encoding for NBD messages (proto.md "Conventions": every number is in network byte order).
 * Messages are small and built once, so a growable builder beats precomputing every layout by hand.
 */
export class MessageBuilder {
  // Every write takes its position from reserve() before touching `bytes` or `view`: reserve may replace both, and
  // `this.view.setUint32(this.reserve(4), ...)` would write into the old buffer (the receiver is evaluated first).
  private bytes: Uint8Array;
  private view: DataView;
  private length = 0;

  constructor(capacity = 64) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

  u16(value: number): this {
    const at = this.reserve(2);
    this.view.setUint16(at, value);
    return this;
  }

  u32(value: number): this {
    const at = this.reserve(4);
    this.view.setUint32(at, value >>> 0);
    return this;
  }

  u64(value: number | bigint): this {
    const at = this.reserve(8);
    this.view.setBigUint64(at, typeof value === 'bigint' ? value : BigInt(value));
    return this;
  }

  bytesOf(value: Uint8Array): this {
    const at = this.reserve(value.length);
    this.bytes.set(value, at);
    return this;
  }

  /** A UTF-8 string with no length prefix (the protocol puts the length elsewhere). */
  text(value: string): this {
    return this.bytesOf(encodeText(value));
  }

  zeros(count: number): this {
    this.reserve(count);
    return this;
  }

  finish(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }

  private reserve(count: number): number {
    const at = this.length;
    if (at + count > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, at + count));
      grown.set(this.bytes.subarray(0, at));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length = at + count;
    return at;
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeText(value: string): Uint8Array {
  return encoder.encode(value);
}

/** Decodes a protocol string; undefined when it is not valid UTF-8 or holds a NUL (proto.md "Conventions"). */
export function decodeText(bytes: Uint8Array): string | undefined {
  try {
    const text = decoder.decode(bytes);
    return text.includes('\0') ? undefined : text;
  } catch {
    return undefined;
  }
}

/** A DataView over exactly `bytes` (which may be a view into a larger buffer). */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * A 64-bit offset as a number, or undefined past 2^53: no device here is that large, so such an offset is simply
 * out of range, and keeping it a number everywhere else is worth that one check.
 */
export function readOffset(view: DataView, at: number): number | undefined {
  const value = view.getBigUint64(at);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(value);
}
