import { DiskError } from '@q/raw';
import { ByteReader } from './byte-reader.js';
import { asDiskError, protocolFailure, requestError } from './client-errors.js';
import { negotiateAsClient } from './client-handshake.js';
import { DEFAULT_MAX_PAYLOAD, type NbdExportInfo } from './export-info.js';
import {
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_ESHUTDOWN,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
} from './protocol.js';
import { encodeRequestHeader } from './request.js';
import type { NbdTransport } from './transport.js';
import { viewOf } from './wire.js';

export interface NbdClientOptions {
  /** The export to use; default "" (the server's default export). */
  exportName?: string;
  /** How errors name the export (its URI); default `nbd export '<name>'`. */
  name?: string;
  /** Give up on a server that has not finished the handshake after this many ms (default 30000; 0: wait forever). */
  handshakeTimeoutMs?: number;
  /** Largest READ/WRITE payload to send, below the server's own maximum (default 32 MiB). */
  maxPayload?: number;
}

interface PendingRequest {
  what: string;
  offset: number;
  /** Where a READ's payload goes; its length is the request's. */
  dst: Uint8Array | undefined;
  resolve(): void;
  reject(error: DiskError): void;
}

const HANDSHAKE_TIMEOUT_MS = 30_000;

/**
 * One NBD connection in the transmission phase, speaking simple replies (proto.md "Simple reply message"). Requests
 * are pipelined: each gets its own handle and the replies, in whatever order they come, are matched back by it.
 * Anything the server sends that cannot be a reply to a pending request (a wrong magic, a structured reply we did
 * not negotiate, an unknown handle) ends the connection and fails every pending request with E_IO: with simple
 * replies the stream cannot be resynchronised. Memory stays bounded by the requests' own sizes: a reply's payload
 * length is the one we asked for, never a number the server sends. The caller keeps requests within the export and
 * its block size constraints (NbdBlockFile does).
 */
export class NbdClient {
  private readonly pending = new Map<number, PendingRequest>();
  private nextHandle = 1;
  private failure: DiskError | undefined;
  private closing: Promise<void> | undefined;
  /** Woken when the last pending request settles (close waits for them). */
  private idleWaiters: (() => void)[] = [];

  private constructor(
    private readonly transport: NbdTransport,
    private readonly reader: ByteReader,
    readonly info: NbdExportInfo,
    readonly name: string,
  ) {
    void this.receive();
  }

  /** Runs the handshake over `transport` (closing it when the handshake fails) and starts reading replies. */
  static async connect(transport: NbdTransport, options: NbdClientOptions = {}): Promise<NbdClient> {
    const reader = new ByteReader(transport.incoming);
    try {
      const { info, name } = await handshake(reader, transport, options, false);
      return new NbdClient(transport, reader, info, name);
    } catch (error) {
      reader.stop();
      transport.close();
      throw error;
    }
  }

  /**
   * What the server says about an export, without using it: NBD_OPT_INFO then NBD_OPT_ABORT (or, with a server
   * that knows no INFO, NBD_OPT_EXPORT_NAME then NBD_CMD_DISC). Closes `transport` either way.
   */
  static async probe(transport: NbdTransport, options: NbdClientOptions = {}): Promise<NbdExportInfo> {
    const reader = new ByteReader(transport.incoming);
    try {
      const { info, transmission } = await handshake(reader, transport, options, true);
      if (transmission) await transport.write([encodeRequestHeader(NBD_CMD_DISC, 0, 0, 0, 0)]).catch(() => {});
      return info;
    } finally {
      reader.stop();
      transport.close();
    }
  }

  /** Fills `dst` from `offset` (one NBD_CMD_READ: at most `info.maximumPayload` bytes, inside the export). */
  read(offset: number, dst: Uint8Array): Promise<void> {
    return this.request(NBD_CMD_READ, 0, offset, dst.length, 'read', undefined, dst);
  }

  /** One NBD_CMD_WRITE; `fua` asks the server to make it durable before replying (only with NBD_FLAG_SEND_FUA). */
  write(offset: number, src: Uint8Array, options: { fua?: boolean } = {}): Promise<void> {
    if (this.info.readOnly) return Promise.reject(this.readOnlyError(offset));
    const flags = options.fua === true && this.info.canFua ? NBD_CMD_FLAG_FUA : 0;
    return this.request(NBD_CMD_WRITE, flags, offset, src.length, 'write', src);
  }

  /** NBD_CMD_FLUSH: every write replied to before it is durable (proto.md "Ordering of messages and writes"). */
  flush(): Promise<void> {
    if (!this.info.canFlush) return Promise.reject(this.unsupported('flush', 'NBD_FLAG_SEND_FLUSH'));
    return this.request(NBD_CMD_FLUSH, 0, 0, 0, 'flush');
  }

  /** NBD_CMD_TRIM: a hint that the range is no longer needed; it may read back as anything afterwards. */
  trim(offset: number, length: number): Promise<void> {
    if (this.info.readOnly) return Promise.reject(this.readOnlyError(offset));
    if (!this.info.canTrim) return Promise.reject(this.unsupported('trim', 'NBD_FLAG_SEND_TRIM'));
    return this.request(NBD_CMD_TRIM, 0, offset, length, 'trim');
  }

  /**
   * NBD_CMD_WRITE_ZEROES: the range reads as zeros afterwards. Without `noHole` the server may punch a hole for it
   * (the WRITE_ZEROES extension: NBD_CMD_FLAG_NO_HOLE asks it to keep the space allocated).
   */
  writeZeroes(offset: number, length: number, options: { noHole?: boolean } = {}): Promise<void> {
    if (this.info.readOnly) return Promise.reject(this.readOnlyError(offset));
    if (!this.info.canWriteZeroes) return Promise.reject(this.unsupported('write zeroes', 'NBD_FLAG_SEND_WRITE_ZEROES'));
    return this.request(NBD_CMD_WRITE_ZEROES, options.noHole === true ? NBD_CMD_FLAG_NO_HOLE : 0, offset, length, 'write zeroes');
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * A soft disconnect (proto.md "Terminating the transmission phase"): waits for the requests in flight, sends
   * NBD_CMD_DISC and closes. Requests made afterwards fail with E_IO.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // proto.md: the client SHOULD wait for the replies in flight before NBD_CMD_DISC.
      while (this.pending.size > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      if (this.failure === undefined) await this.transport.write([encodeRequestHeader(NBD_CMD_DISC, 0, 0, 0, 0)]).catch(() => {});
      this.failure ??= new DiskError('E_IO', 'the NBD connection is closed', { file: this.name });
      this.reader.stop();
      this.transport.close();
    })();
    return this.closing;
  }

  private request(type: number, flags: number, offset: number, length: number, what: string, payload?: Uint8Array, dst?: Uint8Array): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closing !== undefined) return Promise.reject(new DiskError('E_IO', 'the NBD connection is closing', { file: this.name }));
    const handle = this.allocateHandle();
    return new Promise<void>((resolve, reject) => {
      this.pending.set(handle, { what, offset, dst, resolve, reject });
      const header = encodeRequestHeader(type, flags, handle, offset, length);
      this.transport.write(payload === undefined ? [header] : [header, payload]).catch((error: unknown) => this.fail(asDiskError(error, this.name)));
    });
  }

  /** Handles are ours to choose (proto.md "Transmission"); a 32-bit counter never reused while in flight. */
  private allocateHandle(): number {
    for (;;) {
      const handle = this.nextHandle;
      this.nextHandle = handle === 0xffffffff ? 1 : handle + 1;
      if (!this.pending.has(handle)) return handle;
    }
  }

  /** Reads replies until the connection ends; anything that is not a reply to a pending request ends it. */
  private async receive(): Promise<void> {
    try {
      for (;;) {
        const header = await this.reader.read(16);
        if (header === undefined) {
          if (this.closing !== undefined && this.pending.size === 0) return;
          throw new DiskError('E_IO', 'the NBD server closed the connection', { file: this.name });
        }
        const view = viewOf(header);
        const magic = view.getUint32(0);
        if (magic === STRUCTURED_REPLY_MAGIC) throw protocolFailure('a structured reply, which was never negotiated', this.name);
        if (magic !== SIMPLE_REPLY_MAGIC) throw protocolFailure(`bad reply magic 0x${magic.toString(16)}`, this.name);
        const error = view.getUint32(4);
        const high = view.getUint32(8);
        const low = view.getUint32(12);
        const request = high === 0 ? this.pending.get(low) : undefined;
        if (request === undefined) throw protocolFailure(`reply for unknown handle 0x${high === 0 ? '' : high.toString(16)}${low.toString(16).padStart(high === 0 ? 0 : 8, '0')}`, this.name);
        if (error !== 0) {
          this.settle(low);
          request.reject(requestError(error, request.what, request.offset, this.name));
          // proto.md "Terminating the transmission phase": ESHUTDOWN obliges the client to a soft disconnect.
          if (error === NBD_ESHUTDOWN) void this.close();
          continue;
        }
        // Still pending while its payload arrives: a connection lost in the middle must fail this request too.
        if (request.dst !== undefined) await this.receivePayload(request.dst);
        this.settle(low);
        request.resolve();
      }
    } catch (error) {
      this.fail(asDiskError(error, this.name));
    }
  }

  /**
   * A READ's payload straight into its destination, chunk by chunk as the socket delivered it: assembling it first
   * (ByteReader.read) would take a second buffer as large as the request, and fresh memory costs a page fault per
   * 4 KiB on first touch.
   */
  private async receivePayload(dst: Uint8Array): Promise<void> {
    for (let filled = 0; filled < dst.length; ) {
      const piece = await this.reader.readSome(dst.length - filled);
      if (piece === undefined) throw protocolFailure(`the server closed the connection ${dst.length - filled} bytes before the end of a read`, this.name);
      dst.set(piece, filled);
      filled += piece.length;
    }
  }

  /** The connection is beyond use: every pending and later request fails with `error`. */
  private fail(error: DiskError): void {
    if (this.failure !== undefined && this.pending.size === 0) return;
    this.failure ??= error;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const request of pending) request.reject(this.failure);
    this.wakeIfIdle();
    this.reader.stop();
    this.transport.close();
  }

  private settle(handle: number): void {
    this.pending.delete(handle);
    this.wakeIfIdle();
  }

  private wakeIfIdle(): void {
    if (this.pending.size !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private readOnlyError(offset: number): DiskError {
    return new DiskError('E_READ_ONLY', 'the NBD export is read-only', { file: this.name, offset });
  }

  private unsupported(what: string, flag: string): DiskError {
    return new DiskError('E_UNSUPPORTED', `the NBD server does not offer ${what} (no ${flag})`, { file: this.name });
  }
}

/** The handshake under the deadline, every failure a DiskError naming the export. */
async function handshake(
  reader: ByteReader,
  transport: NbdTransport,
  options: NbdClientOptions,
  probe: boolean,
): Promise<{ info: NbdExportInfo; transmission: boolean; name: string }> {
  const name = options.name ?? `nbd export '${options.exportName ?? ''}'`;
  const negotiation = negotiateAsClient(reader, transport, {
    exportName: options.exportName ?? '',
    file: name,
    maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    probe,
  });
  try {
    return { ...(await withDeadline(negotiation, options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS, name)), name };
  } catch (error) {
    throw asDiskError(error, name);
  }
}

/** `work`, or E_IO once `ms` have passed without it settling (a server that accepts and then says nothing). */
function withDeadline<T>(work: Promise<T>, ms: number, file: string): Promise<T> {
  if (!(ms > 0)) return work;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DiskError('E_IO', `the NBD server did not finish the handshake within ${ms} ms`, { file })), ms);
    work.then(
      (value) => (clearTimeout(timer), resolve(value)),
      (error: unknown) => (clearTimeout(timer), reject(error)),
    );
  });
}
