import type { BlockFile } from './block-file.js';
import { readPadded } from './block-file.js';
import { DiskError } from './errors.js';
import { checkRange, checkWritable, type BlockDevice, type BlockStatus, type WriteZeroesOptions } from './block-device.js';
import { splitAtHostHoles } from './host-holes.js';
import { imageFormatOfFirstSector } from './image-signatures.js';

const SECTOR = 512;

function roundUpToSector(length: number): number {
  return Math.ceil(length / SECTOR) * SECTOR;
}

/**
 * The raw backend: guest offset = file offset, nothing in between. It stays the default for anything without a
 * qcow2 magic, and stays as fast as the file itself (one read per request, no copies). Where the file can punch
 * holes, discards and zero writes that may unmap give the space back, as QEMU's raw driver does, and block status
 * tells holes from data.
 */
export class RawDisk implements BlockDevice {
  readonly format = 'raw';
  readonly backing: BlockDevice | undefined = undefined;
  readonly name: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly file: BlockFile;
  /** The format was guessed, not given: writes may not make the first sector look like another format's header. */
  readonly probed: boolean;

  private constructor(file: BlockFile, size: number, name: string, probed: boolean) {
    this.file = file;
    this.size = size;
    this.name = name;
    this.probed = probed;
    this.readOnly = !file.capabilities.writable;
  }

  /**
   * Opens a raw device over `file`. Its size is the file's length rounded up to a 512-byte sector, as QEMU's block
   * layer counts it (qemu-img info, convert and qemu-nbd all see 1442304 bytes in a 1441859-byte file): the tail
   * past the end of the file reads as zeros and is a hole in block status, and a write there extends the file only
   * as far as it reaches, as QEMU's does. `probed`: the format was guessed (see `write`).
   */
  static async open(file: BlockFile, options: { name?: string; probed?: boolean } = {}): Promise<RawDisk> {
    return new RawDisk(file, roundUpToSector(await file.size()), options.name ?? file.name, options.probed === true);
  }

  async read(dst: Uint8Array, offset: number): Promise<void> {
    checkRange(this, offset, dst.length);
    // The file may have shrunk under us; what is gone reads as zeros, as it would through QEMU.
    await readPadded(this.file, dst, offset);
  }

  async blockStatus(offset: number, length: number): Promise<BlockStatus[]> {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return [];
    const whole: BlockStatus = { offset, length: end - offset, kind: 'data', hostOffset: offset, hostFile: this.file.name };
    // A hole reads as zeros and is not stored: qemu-img map shows it as zero, not data, with its offset.
    return splitAtHostHoles(this.file, [whole], (part) => ({ ...part, kind: 'zero', hole: true }));
  }

  /**
   * On a disk whose format was probed, a write that would give the first sector another format's header is refused
   * (E_NOT_PERMITTED, EPERM), as QEMU's raw driver refuses it: the next probe would open the file as that format
   * (imageFormatOfFirstSector). Zero writes and discards cannot create a header and are not checked.
   */
  async write(src: Uint8Array, offset: number): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, src.length);
    if (this.probed && offset < SECTOR && src.length > 0) await this.checkFirstSector(src, offset);
    await this.file.write(src, offset);
  }

  private async checkFirstSector(src: Uint8Array, offset: number): Promise<void> {
    const sector = new Uint8Array(SECTOR);
    await readPadded(this.file, sector, 0);
    sector.set(src.subarray(0, SECTOR - offset), offset);
    const format = imageFormatOfFirstSector(sector);
    if (format !== undefined) {
      throw new DiskError('E_NOT_PERMITTED', `Operation not permitted: the write would make the first sector a ${format} header (the format was probed; give -f raw to allow it)`, { file: this.name, offset });
    }
  }

  /**
   * With `unmap` (QEMU's MAY_UNMAP, NBD without NO_HOLE) a punched hole is the zeroing, and costs no writes (so it
   * is also `fast`). Without it the space must stay allocated: zeros are written, as QEMU does where it has no
   * ZERO_RANGE, and a `fast` request is refused.
   */
  async writeZeroes(offset: number, length: number, options: WriteZeroesOptions = {}): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, length);
    if (length === 0) return;
    if (options.unmap === true && (await this.deallocate(offset, length))) return;
    if (options.fast === true) throw new DiskError('E_UNSUPPORTED', 'a raw file cannot zero faster than it writes', { file: this.name });
    const zeros = new Uint8Array(Math.min(length, 1 << 20));
    for (let at = 0; at < length; at += zeros.length) {
      await this.file.write(zeros.subarray(0, Math.min(zeros.length, length - at)), offset + at);
    }
  }

  /**
   * Punches a hole where the file can (the range then reads as zeros, as after QEMU's discard on a raw file);
   * elsewhere discard is advisory and the bytes stay as they are.
   */
  async discard(offset: number, length: number): Promise<void> {
    checkWritable(this);
    checkRange(this, offset, length);
    if (length > 0) await this.deallocate(offset, length);
  }

  /** Gives `[offset, offset + length)` back to the file system; false when the file cannot. */
  private async deallocate(offset: number, length: number): Promise<boolean> {
    if (this.file.capabilities.deallocate !== true || this.file.deallocate === undefined) return false;
    return this.file.deallocate(offset, length);
  }

  async flush(): Promise<void> {
    if (!this.readOnly) await this.file.flush();
  }

  async close(): Promise<void> {
    if (!this.readOnly) await this.file.flush();
    await this.file.close();
  }
}
