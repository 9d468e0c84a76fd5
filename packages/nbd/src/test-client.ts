// A minimal NBD client for the unit tests: just enough to speak the handshake and read replies byte-exactly.
import { MemoryBlockFile, RawDisk, type BlockStatus } from '@q/raw';
import { memoryTransportPair, type MemoryClientEnd } from './memory-transport.js';
import { NbdTlsError } from './nbd-error.js';
import { NbdServer, type NbdServerOptions } from './nbd-server.js';
import {
  IHAVEOPT,
  NBD_REPLY_FLAG_DONE,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  REQUEST_MAGIC,
  SIMPLE_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
} from './protocol.js';
import type { NbdTransport } from './transport.js';
import { MessageBuilder, viewOf } from './wire.js';

/** How the stand-in for TLS behaves: the identity the "handshake" proves, or a failing handshake. */
export interface FakeTls {
  identity?: string;
  fail?: boolean;
  /** The handshake never completes: it only ends (failing) when the server aborts it. */
  stall?: boolean;
}

/**
 * `transport` with a startTls that encrypts nothing: the "upgraded" transport is the same pipe, carrying
 * `tlsIdentity`. It lets the handshake's TLS rules (what is refused before, what changes after) be driven byte by
 * byte; real TLS is tested over sockets in node-tls.test.ts. `upgrades` counts the calls.
 */
export function withFakeTls(transport: NbdTransport, tls: FakeTls): NbdTransport & { upgrades: number } {
  const fake = {
    ...transport,
    upgrades: 0,
    startTls: async (signal: AbortSignal): Promise<NbdTransport> => {
      fake.upgrades++;
      if (tls.stall === true) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      if (tls.fail === true || tls.stall === true) throw new NbdTlsError('E_NBD_TLS_HANDSHAKE', 'fake handshake failure');
      const { startTls: _, ...plain } = transport;
      return { ...plain, ...(tls.identity === undefined ? {} : { tlsIdentity: tls.identity }) };
    },
  };
  return fake;
}

export interface OptionReplyMessage {
  option: number;
  type: number;
  data: Uint8Array;
}

export interface ReplyChunk {
  /** 'simple' replies have no flags/type; `error` is their error field. */
  kind: 'simple' | 'structured';
  handle: bigint;
  error: number;
  flags: number;
  type: number;
  payload: Uint8Array;
}

export class TestClient {
  constructor(readonly end: MemoryClientEnd) {}

  async need(length: number): Promise<Uint8Array> {
    const bytes = await this.end.receive(length);
    if (bytes === undefined) throw new Error(`server closed while ${length} bytes were expected`);
    return bytes;
  }

  /** Reads the greeting and sends the client flags; returns the handshake flags. */
  async greet(clientFlags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES): Promise<number> {
    const greeting = viewOf(await this.need(18));
    if (greeting.getBigUint64(8) !== IHAVEOPT) throw new Error('no IHAVEOPT in the greeting');
    this.end.send(new MessageBuilder().u32(clientFlags).finish());
    return greeting.getUint16(16);
  }

  sendOption(option: number, data: Uint8Array = new Uint8Array(0)): void {
    this.end.send(new MessageBuilder().u64(IHAVEOPT).u32(option).u32(data.length).bytesOf(data).finish());
  }

  async optionReply(): Promise<OptionReplyMessage> {
    const header = viewOf(await this.need(20));
    const length = header.getUint32(16);
    return { option: header.getUint32(8), type: header.getUint32(12), data: length === 0 ? new Uint8Array(0) : await this.need(length) };
  }

  /** Option replies up to and including the final one (ACK or an error). */
  async optionReplies(): Promise<OptionReplyMessage[]> {
    const replies: OptionReplyMessage[] = [];
    for (;;) {
      const reply = await this.optionReply();
      replies.push(reply);
      if (reply.type === 1 || reply.type >= 0x80000000) return replies;
    }
  }

  /**
   * Structured replies + base:allocation (when asked) + GO; returns the transmission flags and size. `greet: false`
   * when the greeting is done already (haggling resumed after STARTTLS).
   */
  async connect(options: { structured?: boolean; meta?: boolean; greet?: boolean } = {}): Promise<{ size: number; flags: number }> {
    if (options.greet !== false) await this.greet();
    if (options.structured === true || options.meta === true) {
      this.sendOption(NBD_OPT_STRUCTURED_REPLY);
      await this.optionReplies();
    }
    if (options.meta === true) {
      const query = new TextEncoder().encode('base:allocation');
      this.sendOption(NBD_OPT_SET_META_CONTEXT, new MessageBuilder().u32(0).u32(1).u32(query.length).bytesOf(query).finish());
      await this.optionReplies();
    }
    this.sendOption(NBD_OPT_GO, new MessageBuilder().u32(0).u16(0).finish());
    let size = -1;
    let flags = -1;
    for (const reply of await this.optionReplies()) {
      if (reply.type !== 3) continue;
      const view = viewOf(reply.data);
      if (view.getUint16(0) === 0) {
        size = Number(view.getBigUint64(2));
        flags = view.getUint16(10);
      }
    }
    return { size, flags };
  }

  sendRequest(type: number, handle: bigint, offset: number | bigint, length: number, options: { flags?: number; payload?: Uint8Array } = {}): void {
    const message = new MessageBuilder(28 + (options.payload?.length ?? 0))
      .u32(REQUEST_MAGIC)
      .u16(options.flags ?? 0)
      .u16(type)
      .u64(handle)
      .u64(offset)
      .u32(length);
    if (options.payload !== undefined) message.bytesOf(options.payload);
    this.end.send(message.finish());
  }

  /** One reply message: a simple reply (its data is read only when `readLength` is given) or a structured chunk. */
  async reply(readLength = 0): Promise<ReplyChunk> {
    const magic = viewOf(await this.need(4)).getUint32(0);
    if (magic === SIMPLE_REPLY_MAGIC) {
      const rest = viewOf(await this.need(12));
      const error = rest.getUint32(0);
      const payload = error === 0 && readLength > 0 ? await this.need(readLength) : new Uint8Array(0);
      return { kind: 'simple', handle: rest.getBigUint64(4), error, flags: 0, type: 0, payload };
    }
    if (magic !== STRUCTURED_REPLY_MAGIC) throw new Error(`bad reply magic 0x${magic.toString(16)}`);
    const rest = viewOf(await this.need(16));
    const length = rest.getUint32(12);
    const payload = length === 0 ? new Uint8Array(0) : await this.need(length);
    const type = rest.getUint16(2);
    const error = type >= 0x8000 ? viewOf(payload).getUint32(0) : 0;
    return { kind: 'structured', handle: rest.getBigUint64(4), error, flags: rest.getUint16(0), type, payload };
  }

  /** Structured chunks up to and including the one flagged NBD_REPLY_FLAG_DONE (one request in flight). */
  async replyChunks(): Promise<ReplyChunk[]> {
    const chunks: ReplyChunk[] = [];
    for (;;) {
      const chunk = await this.reply();
      chunks.push(chunk);
      if (chunk.kind === 'simple' || (chunk.flags & NBD_REPLY_FLAG_DONE) !== 0) return chunks;
    }
  }
}

/** The part of `statuses` inside `[offset, offset + length)`, cut at its ends, as a device's blockStatus returns it. */
export function clipStatuses(statuses: readonly BlockStatus[], offset: number, length: number): BlockStatus[] {
  return statuses
    .filter((s) => s.offset < offset + length && s.offset + s.length > offset)
    .map((s) => {
      const start = Math.max(s.offset, offset);
      const end = Math.min(s.offset + s.length, offset + length);
      return { ...s, offset: start, length: end - start, ...(s.hostOffset === undefined ? {} : { hostOffset: s.hostOffset + start - s.offset }) };
    });
}

/** A server over a fresh in-memory raw disk of `size` bytes, and a connected test client. */
export async function memoryServer(
  size = 1 << 20,
  options: Partial<NbdServerOptions> & { writable?: boolean; fill?: (bytes: Uint8Array) => void; fakeTls?: FakeTls } = {},
): Promise<{ server: NbdServer; client: TestClient; file: MemoryBlockFile; served: Promise<void>; connect: () => TestClient }> {
  const bytes = new Uint8Array(size);
  options.fill?.(bytes);
  const file = new MemoryBlockFile(bytes, { writable: options.writable ?? true });
  const device = await RawDisk.open(file);
  const server = new NbdServer({ ...options, device });
  const transport = (end: NbdTransport): NbdTransport => (options.fakeTls === undefined ? end : withFakeTls(end, options.fakeTls));
  const connect = (): TestClient => {
    const pair = memoryTransportPair();
    void server.serve(transport(pair.server));
    return new TestClient(pair.client);
  };
  const pair = memoryTransportPair();
  const served = server.serve(transport(pair.server));
  return { server, client: new TestClient(pair.client), file, served, connect };
}
