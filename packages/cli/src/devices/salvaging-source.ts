import type { BlockDevice, BlockStatus } from '@q/raw';
import { ForwardingDevice } from './forwarding-device.js';

/** Failed reads are retried in pieces this big, then sector by sector: what cannot be read is as small as it can be. */
const PIECE = 64 * 1024;
const SECTOR = 512;

/**
 * `qemu-img convert --salvage`: a source whose reads fail (a cut-short file, a broken table, a cluster that does
 * not decompress) still converts. Allocation that cannot be looked up is treated as data, and bytes that cannot
 * be read become zeros, with one warning per failed range (qemu-img warns per 512-byte sector; a range says the
 * same in fewer lines), in qemu-img's words.
 */
export class SalvagingSource extends ForwardingDevice {
  constructor(
    inner: BlockDevice,
    private readonly warn: (line: string) => void,
  ) {
    super(inner);
  }

  override async blockStatus(offset: number, length: number): Promise<BlockStatus[]> {
    try {
      return await this.inner.blockStatus(offset, length);
    } catch (error) {
      this.warn(`error while reading block status at offset ${offset}: ${reason(error)}`);
      // Read it all: what reads fine is kept, the rest becomes zeros below.
      return [{ offset, length: Math.min(length, this.size - offset), kind: 'data' }];
    }
  }

  override async read(dst: Uint8Array, offset: number): Promise<void> {
    try {
      await this.inner.read(dst, offset);
      return;
    } catch (error) {
      if (dst.length <= SECTOR) throw error;
    }
    let failedAt = -1;
    let failure: unknown;
    const report = (end: number): void => {
      if (failedAt < 0) return;
      this.warn(`error while reading offset ${failedAt} (${end - failedAt} bytes): ${reason(failure)}`);
      failedAt = -1;
    };
    const step = dst.length > PIECE ? PIECE : SECTOR;
    for (let at = 0; at < dst.length; at += step) {
      const part = dst.subarray(at, Math.min(dst.length, at + step));
      try {
        if (step === SECTOR) await this.inner.read(part, offset + at);
        else await this.read(part, offset + at);
        report(offset + at);
      } catch (error) {
        part.fill(0);
        if (failedAt < 0) failedAt = offset + at;
        failure = error;
      }
    }
    report(offset + dst.length);
  }
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
