import type { BlockDevice, BlockStatus, WriteZeroesOptions } from '@q/raw';

/**
 * A BlockDevice that passes every call to the device it wraps: the base of the decorators that change one aspect
 * of a device (when writes become durable, what a trim or a write of zeros turns into) and leave the rest alone.
 * `backing` is the wrapped device's, so a walk down the chain (NBD block status) sees the real layers below.
 */
export class ForwardingDevice implements BlockDevice {
  protected readonly inner: BlockDevice;

  constructor(inner: BlockDevice) {
    this.inner = inner;
  }

  get name(): string {
    return this.inner.name;
  }

  get format(): string {
    return this.inner.format;
  }

  get size(): number {
    return this.inner.size;
  }

  get readOnly(): boolean {
    return this.inner.readOnly;
  }

  get backing(): BlockDevice | undefined {
    return this.inner.backing;
  }

  read(dst: Uint8Array, offset: number): Promise<void> {
    return this.inner.read(dst, offset);
  }

  blockStatus(offset: number, length: number): Promise<BlockStatus[]> {
    return this.inner.blockStatus(offset, length);
  }

  write(src: Uint8Array, offset: number): Promise<void> {
    return this.inner.write(src, offset);
  }

  writeZeroes(offset: number, length: number, options?: WriteZeroesOptions): Promise<void> {
    return this.inner.writeZeroes(offset, length, options);
  }

  discard(offset: number, length: number): Promise<void> {
    return this.inner.discard(offset, length);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
