// A hand-written NBD client over node:net, written from the protocol text and independent of @q/nbd's own test
// client: it lets tests send what no real client would (unknown commands, lying lengths, half messages) to a
// running `qcow serve`, and look at reply chunks byte by byte.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_REPLY_FLAG_DONE = 1;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_ERROR = 0x8001;
export const NBD_EINVAL = 22;

const IHAVEOPT = 0x49484156454f5054n;
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_ERR_POLICY = 0x80000002;
export const NBD_REP_ERR_INVALID = 0x80000003;
export const NBD_REP_ERR_TLS_REQD = 0x80000005;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** One reply chunk (a simple reply is one chunk with type 0 and the DONE flag). */
export interface Chunk {
  handle: bigint;
  flags: number;
  type: number;
  /** The error value of an error chunk or a simple reply; 0 otherwise. */
  error: number;
  payload: Buffer;
}

/** An option reply: its type and data (an error reply's data is a message for people). */
export interface OptionReply {
  option: number;
  type: number;
  data: Buffer;
}

export class RawNbdClient {
  private buffered = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;
  /** What is read and written now: the TCP or Unix socket, or the TLS stream over it after startTls. */
  private current: Socket;
  /** Resolves when the server has closed the connection. */
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.current = socket;
    this.listen(socket);
    // A reset counts as a close: tests look at whether the server hung up, not how.
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.wake?.();
        resolve();
      }),
    );
  }

  get socket(): Socket {
    return this.current;
  }

  private listen(socket: Socket): void {
    socket.on('data', (data: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, data]);
      this.wake?.();
    });
  }

  static async open(address: { port: number } | { path: string }): Promise<RawNbdClient> {
    const socket = 'path' in address ? connect(address.path) : connect(address.port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawNbdClient(socket);
  }

  /** Exactly `length` bytes; throws when the server closes first. */
  async need(length: number): Promise<Buffer> {
    while (this.buffered.length < length) {
      if (this.ended) throw new Error(`server closed with ${this.buffered.length} of ${length} bytes`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
    const bytes = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(length);
    return bytes;
  }

  /** Reads the greeting and answers with FIXED_NEWSTYLE | NO_ZEROES. */
  async greet(): Promise<void> {
    const greeting = await this.need(18);
    if (greeting.toString('latin1', 0, 8) !== 'NBDMAGIC' || greeting.readBigUInt64BE(8) !== IHAVEOPT) throw new Error('not an NBD server');
    this.socket.write(u32(3));
  }

  /** Sends one option and collects its replies up to the final one (ACK or an error). */
  async option(option: number, data: Buffer = Buffer.alloc(0)): Promise<OptionReply[]> {
    this.sendOption(option, data);
    const replies: OptionReply[] = [];
    for (;;) {
      const reply = await this.optionReply();
      replies.push(reply);
      if (reply.type === NBD_REP_ACK || reply.type >= 0x80000000) return replies;
    }
  }

  /**
   * After NBD_OPT_STARTTLS was acknowledged: the client side of the TLS handshake over the same socket, after which
   * everything goes through TLS. Rejects when the server refuses the handshake or hangs up during it.
   */
  async startTls(options: ConnectionOptions): Promise<TLSSocket> {
    if (this.buffered.length !== 0) throw new Error('bytes left over before TLS');
    const plain = this.current;
    plain.removeAllListeners('data');
    const secure = tlsConnect({ socket: plain, ...options });
    secure.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('closed during the TLS handshake')));
    });
    this.current = secure;
    this.listen(secure);
    return secure;
  }

  /** Fixed newstyle handshake with NO_ZEROES, structured replies when asked, then NBD_OPT_GO; returns the size. */
  async handshake(options: { structured: boolean; greet?: boolean }): Promise<number> {
    if (options.greet !== false) await this.greet();
    if (options.structured) {
      this.sendOption(NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0));
      if ((await this.optionReply()).type !== NBD_REP_ACK) throw new Error('structured replies refused');
    }
    // Default export name (length 0), no information requests.
    this.sendOption(NBD_OPT_GO, Buffer.concat([u32(0), u16(0)]));
    let size = -1;
    for (;;) {
      const reply = await this.optionReply();
      if (reply.type === NBD_REP_INFO) {
        // NBD_INFO_EXPORT (type 0) carries the size; other information is not needed here.
        if (reply.data.readUInt16BE(0) === 0) size = Number(reply.data.readBigUInt64BE(2));
      } else if (reply.type === NBD_REP_ACK) return size;
      else throw new Error(`NBD_OPT_GO answered with 0x${reply.type.toString(16)}`);
    }
  }

  /** A request header, and the payload when given (which may differ from `length`: that is the point). */
  send(type: number, handle: bigint, offset: bigint | number, length: number, options: { flags?: number; payload?: Buffer } = {}): void {
    const header = Buffer.alloc(28);
    header.writeUInt32BE(REQUEST_MAGIC, 0);
    header.writeUInt16BE(options.flags ?? 0, 4);
    header.writeUInt16BE(type, 6);
    header.writeBigUInt64BE(handle, 8);
    header.writeBigUInt64BE(BigInt(offset), 16);
    header.writeUInt32BE(length, 24);
    this.socket.write(header);
    if (options.payload !== undefined) this.socket.write(options.payload);
  }

  /** One reply chunk; a simple reply's data is read only when `readLength` is given and it succeeded. */
  async chunk(readLength = 0): Promise<Chunk> {
    const magic = (await this.need(4)).readUInt32BE(0);
    if (magic === SIMPLE_REPLY_MAGIC) {
      const rest = await this.need(12);
      const error = rest.readUInt32BE(0);
      const payload = error === 0 && readLength > 0 ? await this.need(readLength) : Buffer.alloc(0);
      return { handle: rest.readBigUInt64BE(4), flags: NBD_REPLY_FLAG_DONE, type: 0, error, payload };
    }
    if (magic !== STRUCTURED_REPLY_MAGIC) throw new Error(`bad reply magic 0x${magic.toString(16)}`);
    const rest = await this.need(16);
    const type = rest.readUInt16BE(2);
    const payload = Buffer.from(await this.need(rest.readUInt32BE(12)));
    return { handle: rest.readBigUInt64BE(4), flags: rest.readUInt16BE(0), type, error: type >= 0x8000 ? payload.readUInt32BE(0) : 0, payload };
  }

  /** Every chunk of one structured reply, up to the one flagged DONE. */
  async reply(): Promise<Chunk[]> {
    const chunks: Chunk[] = [];
    for (;;) {
      const next = await this.chunk();
      chunks.push(next);
      if ((next.flags & NBD_REPLY_FLAG_DONE) !== 0) return chunks;
    }
  }

  /** A structured READ reply put back together: the bytes (holes as zeros) and the chunk types in order. */
  async readData(offset: number, length: number): Promise<{ bytes: Buffer; types: number[] }> {
    const bytes = Buffer.alloc(length);
    const types: number[] = [];
    for (const part of await this.reply()) {
      if (part.error !== 0) throw new Error(`read failed with error ${part.error}`);
      types.push(part.type);
      const at = Number(part.payload.readBigUInt64BE(0)) - offset;
      if (part.type === NBD_REPLY_TYPE_OFFSET_DATA) part.payload.copy(bytes, at, 8);
    }
    return { bytes, types };
  }

  /** Resolves when the server hangs up; rejects when it has not within `ms` (so a hang fails fast). */
  async expectClosed(ms = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`server kept the connection open for ${ms} ms`)), ms);
    });
    try {
      await Promise.race([this.closed, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  sendOption(option: number, data: Buffer): void {
    const header = Buffer.alloc(16);
    header.writeBigUInt64BE(IHAVEOPT, 0);
    header.writeUInt32BE(option, 8);
    header.writeUInt32BE(data.length, 12);
    this.socket.write(Buffer.concat([header, data]));
  }

  private async optionReply(): Promise<OptionReply> {
    const header = await this.need(20);
    const length = header.readUInt32BE(16);
    return { option: header.readUInt32BE(8), type: header.readUInt32BE(12), data: Buffer.from(await this.need(length)) };
  }
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
}

function u16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16BE(value);
  return bytes;
}
