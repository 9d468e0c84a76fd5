// A scripted NBD server for the client's unit tests: each test plays the server's side byte by byte, so it can
// answer in any order, lie, or send garbage where a real server never would.
import { memoryTransportPair, type MemoryClientEnd } from './memory-transport.js';
import {
  IHAVEOPT,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT,
  NBD_MAGIC,
  NBD_REP_ACK,
  NBD_REP_INFO,
  OPTION_REPLY_MAGIC,
  SIMPLE_REPLY_MAGIC,
} from './protocol.js';
import type { NbdTransport } from './transport.js';
import { MessageBuilder, viewOf } from './wire.js';

export interface ScriptedRequest {
  flags: number;
  type: number;
  handle: Uint8Array;
  offset: number;
  length: number;
  payload: Uint8Array | undefined;
}

/** The server's end of an in-memory connection, with the messages a script needs. */
export class FakeServer {
  /** The client under test connects through this. */
  readonly transport: NbdTransport;
  private readonly peer: MemoryClientEnd;

  constructor() {
    // memoryTransportPair's "server" end is an NbdTransport, which is what the client takes; its "client" end is
    // the raw pipe the script speaks through.
    const pair = memoryTransportPair();
    this.transport = pair.server;
    this.peer = pair.client;
  }

  send(bytes: Uint8Array): void {
    this.peer.send(bytes);
  }

  /** Exactly `length` bytes from the client; throws when it hung up first. */
  async receive(length: number): Promise<Uint8Array> {
    const bytes = await this.peer.receive(length);
    if (bytes === undefined) throw new Error(`client closed while ${length} bytes were expected`);
    return bytes;
  }

  /** Resolves when the client closes the connection. */
  get closed(): Promise<void> {
    return this.peer.closed;
  }

  /** Hangs up (the client sees the end of its input). */
  hangUp(): void {
    this.peer.end();
  }

  /** Greeting with `flags` (default fixed newstyle + no zeroes); returns the client's flags. */
  async greet(flags = NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES): Promise<number> {
    this.send(new MessageBuilder().u64(NBD_MAGIC).u64(IHAVEOPT).u16(flags).finish());
    return viewOf(await this.receive(4)).getUint32(0);
  }

  async option(): Promise<{ option: number; data: Uint8Array }> {
    const header = viewOf(await this.receive(16));
    if (header.getBigUint64(0) !== IHAVEOPT) throw new Error('option without IHAVEOPT');
    const length = header.getUint32(12);
    return { option: header.getUint32(8), data: length === 0 ? new Uint8Array(0) : await this.receive(length) };
  }

  optionReply(option: number, type: number, data: Uint8Array = new Uint8Array(0)): void {
    this.send(new MessageBuilder().u64(OPTION_REPLY_MAGIC).u32(option).u32(type).u32(data.length).bytesOf(data).finish());
  }

  /** Answers a GO: NBD_INFO_EXPORT, NBD_INFO_BLOCK_SIZE when given, ACK. */
  acceptGo(option: number, size: number, flags: number, blockSizes?: [number, number, number]): void {
    this.optionReply(option, NBD_REP_INFO, new MessageBuilder().u16(NBD_INFO_EXPORT).u64(size).u16(flags).finish());
    if (blockSizes !== undefined) {
      const [minimum, preferred, maximum] = blockSizes;
      this.optionReply(option, NBD_REP_INFO, new MessageBuilder().u16(NBD_INFO_BLOCK_SIZE).u32(minimum).u32(preferred).u32(maximum).finish());
    }
    this.optionReply(option, NBD_REP_ACK);
  }

  /** Greeting and GO for an export of `size` bytes with transmission `flags`. */
  async handshake(size: number, flags: number, blockSizes?: [number, number, number]): Promise<void> {
    await this.greet();
    const { option } = await this.option();
    this.acceptGo(option, size, flags, blockSizes);
  }

  /** One request; a WRITE's payload is read with it. Undefined when the client hung up. */
  async request(): Promise<ScriptedRequest | undefined> {
    const bytes = await this.peer.receive(28);
    if (bytes === undefined) return undefined;
    const view = viewOf(bytes);
    const type = view.getUint16(6);
    const length = view.getUint32(24);
    return {
      flags: view.getUint16(4),
      type,
      handle: bytes.slice(8, 16),
      offset: Number(view.getBigUint64(16)),
      length,
      payload: type === 1 ? await this.receive(length) : undefined,
    };
  }

  simpleReply(handle: Uint8Array, error = 0, data?: Uint8Array): void {
    const header = new MessageBuilder().u32(SIMPLE_REPLY_MAGIC).u32(error).bytesOf(handle).finish();
    this.send(data === undefined ? header : new MessageBuilder().bytesOf(header).bytesOf(data).finish());
  }
}
