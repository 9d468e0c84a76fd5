import { DiskError, type BlockFile, type BlockFileCapabilities } from '@q/raw';
import { alignDown, alignUp } from './export-info.js';
import { NbdClient, type NbdClientOptions } from './nbd-client.js';
import { RangeLock } from './range-lock.js';
import { requestPieces, type RequestPiece } from './request-pieces.js';
import type { NbdTransport } from './transport.js';

export interface NbdFileOptions extends NbdClientOptions {
  /** Open for writing; an export the server marks read-only then fails with E_READ_ONLY. Default read-only. */
  writable?: boolean;
  /**
   * Connections to spread requests over, used only when the server sets NBD_FLAG_CAN_MULTI_CONN (proto.md: without
   * it a client SHOULD NOT multiplex over several connections, as their caches need not agree). Default 1.
   */
  connections?: number;
}

/**
 * WRITE_ZEROES carries no payload, so it is not bound by the maximum payload; a 32-bit length still is, and some
 * servers zero synchronously, so a very large range goes in pieces this big (a multiple of any minimum block).
 */
const ZERO_PIECE = 1 << 30;

/**
 * A BlockFile over an NBD export: a fixed-size device seen as a file. Requests are cut to the server's block size
 * constraints (a partial block at either end of a write is read, patched and written back under a lock; of a read,
 * fetched whole and copied out), spread over several connections when the server allows it. The export never
 * grows or shrinks, so writing past its end and truncating to another size are E_UNSUPPORTED.
 */
export class NbdBlockFile implements BlockFile {
  readonly capabilities: BlockFileCapabilities;
  private readonly exportSize: number;
  private readonly writeLock = new RangeLock();
  private closed: Promise<void> | undefined;

  private constructor(
    private readonly clients: readonly NbdClient[],
    readonly name: string,
    writable: boolean,
  ) {
    const info = clients[0]!.info;
    this.exportSize = info.size;
    this.capabilities = { writable, sparse: false, deallocate: writable && info.canWriteZeroes };
  }

  /**
   * Connects to an export through `openTransport` (called once per connection) and runs the handshake. A writable
   * open of an export the server marks read-only is refused with E_READ_ONLY, as qemu-img refuses it.
   */
  static async connect(openTransport: () => Promise<NbdTransport>, options: NbdFileOptions = {}): Promise<NbdBlockFile> {
    const first = await NbdClient.connect(await openTransport(), options);
    const clients = [first];
    try {
      if (options.writable === true && first.info.readOnly) {
        throw new DiskError('E_READ_ONLY', 'the NBD export is read-only', { file: first.name });
      }
      const wanted = first.info.canMultiConn ? Math.max(1, Math.floor(options.connections ?? 1)) : 1;
      while (clients.length < wanted) clients.push(await NbdClient.connect(await openTransport(), options));
    } catch (error) {
      await Promise.allSettled(clients.map((client) => client.close()));
      throw error;
    }
    return new NbdBlockFile(clients, first.name, options.writable === true);
  }

  /** What the handshake said about the export (size, flags, block size constraints). */
  get info(): NbdClient['info'] {
    return this.clients[0]!.info;
  }

  /** Connections in use: more than one only with NBD_FLAG_CAN_MULTI_CONN and `connections` above 1. */
  get connectionCount(): number {
    return this.clients.length;
  }

  async read(dst: Uint8Array, offset: number): Promise<number> {
    this.checkOpen(offset);
    if (offset >= this.exportSize) return 0;
    const length = Math.min(dst.length, this.exportSize - offset);
    const { minimumBlock, maximumPayload } = this.info;
    await Promise.all(
      requestPieces(offset, length, minimumBlock, maximumPayload, this.exportSize).map(async (piece) => {
        const into = dst.subarray(piece.offset - offset, piece.offset - offset + piece.length);
        if (piece.block === undefined) return this.client().read(piece.offset, into);
        const block = new Uint8Array(piece.block.length);
        await this.client().read(piece.block.offset, block);
        into.set(block.subarray(piece.offset - piece.block.offset, piece.offset - piece.block.offset + piece.length));
      }),
    );
    return length;
  }

  async write(src: Uint8Array, offset: number): Promise<void> {
    this.checkWritable(offset);
    this.checkInside(offset, src.length, 'write');
    const { minimumBlock, maximumPayload } = this.info;
    await this.underLock(offset, src.length, () =>
      Promise.all(
        requestPieces(offset, src.length, minimumBlock, maximumPayload, this.exportSize).map((piece) =>
          this.writePiece(piece, src.subarray(piece.offset - offset, piece.offset - offset + piece.length)),
        ),
      ),
    );
  }

  /** NBD_CMD_FLUSH when the server offers it; without NBD_FLAG_SEND_FLUSH it has no cache to flush and this is a no-op. */
  async flush(): Promise<void> {
    this.checkOpen(0);
    // With several connections CAN_MULTI_CONN holds: one flush covers the writes replied to on all of them.
    if (this.info.canFlush) await this.clients[0]!.flush();
  }

  async size(): Promise<number> {
    this.checkOpen(0);
    return this.exportSize;
  }

  async truncate(size: number): Promise<void> {
    this.checkWritable(size);
    if (size === this.exportSize) return;
    throw new DiskError('E_UNSUPPORTED', `cannot resize to ${size} bytes: an NBD export has a fixed size (${this.exportSize} bytes)`, { file: this.name });
  }

  /**
   * NBD_CMD_WRITE_ZEROES without NBD_CMD_FLAG_NO_HOLE: the range reads as zeros and the server may give the space
   * back (TRIM would free it too, but proto.md lets trimmed bytes read back as anything). False without
   * NBD_FLAG_SEND_WRITE_ZEROES. Partial blocks at the ends are written as zeros.
   */
  async deallocate(offset: number, length: number): Promise<boolean> {
    this.checkWritable(offset);
    if (!this.info.canWriteZeroes) return false;
    const end = Math.min(offset + length, this.exportSize);
    if (end <= offset) return true;
    const { minimumBlock } = this.info;
    await this.underLock(offset, end - offset, () =>
      Promise.all(
        requestPieces(offset, end - offset, minimumBlock, alignDown(ZERO_PIECE, minimumBlock), this.exportSize).map((piece) =>
          piece.block === undefined ? this.client().writeZeroes(piece.offset, piece.length) : this.writePiece(piece, new Uint8Array(piece.length)),
        ),
      ),
    );
    return true;
  }

  /** Sends NBD_CMD_DISC on every connection once its requests have been answered. */
  close(): Promise<void> {
    this.closed ??= Promise.all(this.clients.map((client) => client.close())).then(() => undefined);
    return this.closed;
  }

  /** One piece of a write: straight out, or (a partial block) read, patched and written back whole. */
  private async writePiece(piece: RequestPiece, data: Uint8Array): Promise<void> {
    if (piece.block === undefined) return this.client().write(piece.offset, data);
    const block = new Uint8Array(piece.block.length);
    await this.client().read(piece.block.offset, block);
    block.set(data, piece.offset - piece.block.offset);
    await this.client().write(piece.block.offset, block);
  }

  /**
   * Runs a write under the lock of the blocks it touches when the server has a minimum block size: only then can a
   * read-modify-write of a shared block lose another write. With byte granularity nothing waits.
   */
  private async underLock(offset: number, length: number, work: () => Promise<unknown>): Promise<void> {
    const { minimumBlock } = this.info;
    if (minimumBlock === 1) return void (await work());
    const release = await this.writeLock.acquire(alignDown(offset, minimumBlock), alignUp(offset + length, minimumBlock));
    try {
      await work();
    } finally {
      release();
    }
  }

  /** The connection with the fewest requests in flight. */
  private client(): NbdClient {
    let best = this.clients[0]!;
    for (const client of this.clients) if (client.inFlight < best.inFlight) best = client;
    return best;
  }

  private checkOpen(offset: number): void {
    if (this.closed !== undefined) throw new DiskError('E_IO', 'file is closed', { file: this.name });
    if (!Number.isSafeInteger(offset) || offset < 0) throw new DiskError('E_INVALID', `bad offset ${offset}`, { file: this.name });
  }

  private checkWritable(offset: number): void {
    this.checkOpen(offset);
    if (!this.capabilities.writable) throw new DiskError('E_READ_ONLY', 'file is read-only', { file: this.name, offset });
  }

  private checkInside(offset: number, length: number, what: string): void {
    if (offset + length <= this.exportSize) return;
    throw new DiskError(
      'E_UNSUPPORTED',
      `cannot ${what} ${length} bytes at offset ${offset}: an NBD export has a fixed size (${this.exportSize} bytes)`,
      { file: this.name, offset },
    );
  }
}
