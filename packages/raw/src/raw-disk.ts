import type { BlockFile } from './block-file.js';
import { readPadded } from './block-file.js';
import { DiskError } from './errors.js';
import { checkRange, checkWritable, type BlockDevice, type BlockStatus, type WriteZeroesOptions } from './block-device.js';

/**
 * The raw backend: guest offset = file offset, nothing in between. It stays the default for anything without a
 * qcow2 magic, and stays as fast as the file itself (one read per request, no copies).
 */
export class RawDisk implements BlockDevice {
  readonly format = 'raw';
  readonly backing: BlockDevice | undefined = undefined;
  readonly name: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly file: BlockFile;

  private constructor(file: BlockFile, size: number, name: string) {
    this.file = file;
    this.size = size;
    this.name = name;
    this.readOnly = !file.capabilities.writable;
  }

  /** Opens a raw device over `file`; its size is the file's size. */
  static async open(file: BlockFile, options: { name?: string } = {}): Promise<RawDisk> {
    return new RawDisk(file, await file.size(), options.name ?? file.name);
  }

  async read(dst: Uint8Array, offset: number): Promise<void> {
    checkRange(this, offset, dst.length);
    // The file may have shrunk under us; what is gone reads as zeros, as it would through QEMU.
    await readPadded(this.file, dst, offset);
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus[]> {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return [];
    // Node exposes no SEEK_DATA/SEEK_HOLE, so holes cannot be told from data: everything is reported as data.
    return [{ offset, length: end - offset, kind: 'data', hostOffset: offset, hostFile: this.file.name }];
  }

  async write(src: Uint8Array, offset: number): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, src.length);
    await this.file.write(src, offset);
  }

  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions = {}): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, length);
    // No hole punching in the port: zeros are always written.
    if (options.fast === true && length > 0) throw new DiskError('E_UNSUPPORTED', 'a raw file cannot zero faster than it writes', { file: this.name });
    const zeros = new Uint8Array(Math.min(length, 1 << 20));
    for (let at = 0; at < length; at += zeros.length) {
      await this.file.write(zeros.subarray(0, Math.min(zeros.length, length - at)), offset + at);
    }
  }

  /** Discard is advisory and the port has no hole punching: the bytes stay as they are. */
  async discard(offset: number, length: number): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, length);
  }

  async flush(): Promise<void> {
    if (!this.readOnly) await this.file.flush();
  }

  async close(): Promise<void> {
    if (!this.readOnly) await this.file.flush();
    await this.file.close();
  }
}
