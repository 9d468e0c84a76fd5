import { describe, expect, it } from 'vitest';
import { isDiskError } from '@q/raw';
import { FakeServer } from './fake-nbd-server.js';
import { NbdClient } from './nbd-client.js';
import {
  NBD_CMD_DISC,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NBD_EINVAL,
  NBD_EPERM,
  NBD_ESHUTDOWN,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_SEND_FLUSH,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  OPTION_REPLY_MAGIC,
  STRUCTURED_REPLY_MAGIC,
} from './protocol.js';
import { MessageBuilder, decodeText, viewOf } from './wire.js';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (!isDiskError(error)) throw error;
    expect(error.message).not.toContain('\n');
    return `${error.code}: ${error.message}`;
  }
  throw new Error('expected a failure');
}

const FLAGS = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH;

describe('NbdClient handshake', () => {
  it('uses NBD_OPT_GO asking for the export and block sizes, and honours what comes back', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport, { exportName: 'disk', name: 'nbd://x/disk' });
    expect(await server.greet()).toBe(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    const { option, data } = await server.option();
    expect(option).toBe(NBD_OPT_GO);
    const view = viewOf(data);
    expect(decodeText(data.subarray(4, 4 + view.getUint32(0)))).toBe('disk');
    expect([...data.subarray(8)]).toEqual([0, 2, 0, 0, 0, 3]);
    server.acceptGo(option, 1 << 20, FLAGS, [512, 4096, 1 << 30]);
    const client = await connecting;
    expect(client.info).toMatchObject({ size: 1 << 20, canFlush: true, readOnly: false, minimumBlock: 512, preferredBlock: 4096 });
    // The server's 1 GiB maximum is capped at the client's 32 MiB.
    expect(client.info.maximumPayload).toBe(32 << 20);
  });

  it('falls back to NBD_OPT_EXPORT_NAME when the server does not know GO (and reads the 124 zeros)', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport, { exportName: 'old' });
    expect(await server.greet(1)).toBe(NBD_FLAG_C_FIXED_NEWSTYLE);
    const go = await server.option();
    server.optionReply(go.option, NBD_REP_ERR_UNSUP);
    const exportName = await server.option();
    expect(exportName.option).toBe(NBD_OPT_EXPORT_NAME);
    expect(decodeText(exportName.data)).toBe('old');
    server.send(new MessageBuilder().u64(4096).u16(FLAGS).zeros(124).finish());
    const client = await connecting;
    expect(client.info).toMatchObject({ size: 4096, canFlush: true, minimumBlock: 1 });
  });

  it('speaks plain newstyle: EXPORT_NAME at once, and a hang-up there is an unknown export', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport, { exportName: 'gone', name: 'nbd://h/gone' });
    expect(await server.greet(0)).toBe(0);
    expect((await server.option()).option).toBe(NBD_OPT_EXPORT_NAME);
    server.hangUp();
    expect(await codeOf(connecting)).toMatch(/^E_NOT_FOUND: Requested export not available/);
  });

  it('turns NBD_REP_ERR_UNKNOWN into E_NOT_FOUND with the server words, and aborts softly', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport, { exportName: 'bar' });
    await server.greet();
    const { option } = await server.option();
    server.optionReply(option, NBD_REP_ERR_UNKNOWN, new TextEncoder().encode("export 'bar' not present\n"));
    expect(await codeOf(connecting)).toBe("E_NOT_FOUND: Requested export not available: server reported: export 'bar' not present");
    expect((await server.option()).option).toBe(NBD_OPT_ABORT);
  });

  it('refuses a server that requires TLS as unsupported', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport);
    await server.greet();
    server.optionReply((await server.option()).option, NBD_REP_ERR_TLS_REQD);
    expect(await codeOf(connecting)).toMatch(/^E_UNSUPPORTED: the server requires TLS/);
  });

  it('fails on garbage, a lying length, an invalid block size or silence, and closes the connection', async () => {
    const garbage = new FakeServer();
    const first = NbdClient.connect(garbage.transport);
    garbage.send(new Uint8Array(18).fill(0x41));
    expect(await codeOf(first)).toMatch(/^E_IO: NBD protocol error: not an NBD server/);
    await garbage.closed;

    const liar = new FakeServer();
    const second = NbdClient.connect(liar.transport);
    await liar.greet();
    await liar.option();
    liar.send(new MessageBuilder().u64(OPTION_REPLY_MAGIC).u32(NBD_OPT_GO).u32(3).u32(0xfffffff0).finish());
    expect(await codeOf(second)).toMatch(/^E_IO: NBD protocol error: option reply of 4294967280 bytes/);

    const odd = new FakeServer();
    const third = NbdClient.connect(odd.transport);
    await odd.greet();
    odd.acceptGo((await odd.option()).option, 4096, FLAGS, [3, 4096, 65536]);
    expect(await codeOf(third)).toMatch(/^E_IO: NBD protocol error: invalid minimum block size 3/);

    const silent = new FakeServer();
    const started = Date.now();
    expect(await codeOf(NbdClient.connect(silent.transport, { handshakeTimeoutMs: 200 }))).toMatch(/^E_IO: .*within 200 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
    await silent.closed;
  });
});

describe('NbdClient transmission', () => {
  it('pipelines requests and matches replies that come back in any order', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport);
    await server.handshake(1 << 20, FLAGS);
    const client = await connecting;
    const buffers = [new Uint8Array(100), new Uint8Array(200), new Uint8Array(300)];
    const reads = buffers.map((dst, i) => client.read(i * 1000, dst));
    const written = client.write(5000, new Uint8Array(10).fill(9));
    const requests = [await server.request(), await server.request(), await server.request(), await server.request()];
    expect(requests.map((r) => r?.type)).toEqual([NBD_CMD_READ, NBD_CMD_READ, NBD_CMD_READ, NBD_CMD_WRITE]);
    expect(requests[3]?.payload).toEqual(new Uint8Array(10).fill(9));
    expect(client.inFlight).toBe(4);
    for (const i of [3, 2, 0, 1]) {
      const request = requests[i]!;
      server.simpleReply(request.handle, 0, request.type === NBD_CMD_READ ? new Uint8Array(request.length).fill(i + 1) : undefined);
    }
    await Promise.all([...reads, written]);
    buffers.forEach((dst, i) => expect(dst.every((b) => b === i + 1)).toBe(true));
    expect(client.inFlight).toBe(0);
  });

  it('sends offsets beyond 4 GiB whole (two 32-bit halves, no truncation)', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport);
    await server.handshake(2 ** 33, FLAGS);
    const client = await connecting;
    const read = client.read(5 * 2 ** 30 + 512, new Uint8Array(3));
    const request = (await server.request())!;
    expect([request.type, request.offset, request.length]).toEqual([NBD_CMD_READ, 5 * 2 ** 30 + 512, 3]);
    server.simpleReply(request.handle, 0, new Uint8Array([1, 2, 3]));
    await read;
  });

  it('turns error replies into typed errors and carries on', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport, { name: 'nbd://h/' });
    await server.handshake(1 << 20, FLAGS);
    const client = await connecting;
    const denied = client.write(0, new Uint8Array(1));
    const invalid = client.read(0, new Uint8Array(1));
    server.simpleReply((await server.request())!.handle, NBD_EPERM);
    server.simpleReply((await server.request())!.handle, NBD_EINVAL);
    expect(await codeOf(denied)).toBe('E_READ_ONLY: write at offset 0 failed: Operation not permitted');
    expect(await codeOf(invalid)).toBe('E_INVALID: read at offset 0 failed: Invalid argument');
    const ok = client.read(8, new Uint8Array(2));
    server.simpleReply((await server.request())!.handle, 0, new Uint8Array([1, 2]));
    await ok;
  });

  it('fails every pending request on a reply for an unknown handle, and every later one too', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport);
    await server.handshake(1 << 20, FLAGS);
    const client = await connecting;
    const reads = [client.read(0, new Uint8Array(8)), client.read(8, new Uint8Array(8)), client.flush()];
    for (let i = 0; i < 3; i++) await server.request();
    server.simpleReply(new Uint8Array([0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]));
    const outcomes = await Promise.all(reads.map(codeOf));
    for (const outcome of outcomes) expect(outcome).toBe('E_IO: NBD protocol error: reply for unknown handle 0xdeadbeef');
    expect(await codeOf(client.read(0, new Uint8Array(1)))).toMatch(/unknown handle/);
    await server.closed;
  });

  it('fails pending requests on a structured reply, a bad magic, or a hang-up', async () => {
    for (const [bytes, expected] of [
      [new MessageBuilder().u32(STRUCTURED_REPLY_MAGIC).zeros(16).finish(), /structured reply, which was never negotiated/],
      [new Uint8Array(16).fill(0x5a), /bad reply magic 0x5a5a5a5a/],
      [undefined, /the NBD server closed the connection/],
    ] as const) {
      const server = new FakeServer();
      const connecting = NbdClient.connect(server.transport);
      await server.handshake(1 << 20, FLAGS);
      const client = await connecting;
      const read = client.read(0, new Uint8Array(4096));
      await server.request();
      if (bytes === undefined) server.hangUp();
      else server.send(bytes);
      expect(await codeOf(read)).toMatch(expected);
    }
  });

  it('waits for requests in flight, then sends NBD_CMD_DISC on close', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport);
    await server.handshake(1 << 20, FLAGS);
    const client = await connecting;
    const read = client.read(0, new Uint8Array(4));
    const closing = client.close();
    const request = (await server.request())!;
    expect(await codeOf(client.read(0, new Uint8Array(1)))).toMatch(/^E_IO: the NBD connection is closing/);
    server.simpleReply(request.handle, 0, new Uint8Array(4).fill(7));
    await read;
    expect((await server.request())?.type).toBe(NBD_CMD_DISC);
    await closing;
    await server.closed;
    expect(await codeOf(client.read(0, new Uint8Array(1)))).toMatch(/^E_IO: the NBD connection is closed/);
  });

  it('disconnects softly when the server answers ESHUTDOWN', async () => {
    const server = new FakeServer();
    const connecting = NbdClient.connect(server.transport);
    await server.handshake(1 << 20, FLAGS);
    const client = await connecting;
    const read = client.read(0, new Uint8Array(4));
    server.simpleReply((await server.request())!.handle, NBD_ESHUTDOWN);
    expect(await codeOf(read)).toMatch(/^E_IO: read at offset 0 failed: Server is shutting down/);
    expect((await server.request())?.type).toBe(NBD_CMD_DISC);
    await server.closed;
  });
});
