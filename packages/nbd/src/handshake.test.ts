import { describe, expect, it } from 'vitest';
import {
  IHAVEOPT,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_NO_ZEROES,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
} from './protocol.js';
import { memoryServer } from './test-client.js';
import { MessageBuilder, viewOf } from './wire.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const infoRequest = (name: string, types: number[]): Uint8Array => {
  const builder = new MessageBuilder().u32(text(name).length).text(name).u16(types.length);
  for (const type of types) builder.u16(type);
  return builder.finish();
};
const metaRequest = (name: string, queries: string[]): Uint8Array => {
  const builder = new MessageBuilder().u32(text(name).length).text(name).u32(queries.length);
  for (const query of queries) builder.u32(text(query).length).text(query);
  return builder.finish();
};

describe('handshake', () => {
  it('greets with NBDMAGIC, IHAVEOPT and FIXED_NEWSTYLE|NO_ZEROES', async () => {
    const { client } = await memoryServer();
    const greeting = viewOf(await client.need(18));
    expect(greeting.getBigUint64(0)).toBe(0x4e42444d41474943n);
    expect(greeting.getBigUint64(8)).toBe(IHAVEOPT);
    expect(greeting.getUint16(16)).toBe(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
  });

  it('drops a client that sets unknown client flags', async () => {
    const { client } = await memoryServer();
    await client.greet(0x80);
    await client.end.closed;
    expect(await client.end.receive(1)).toBeUndefined();
  });

  it('answers NBD_OPT_GO with NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE, then ACK', async () => {
    const { client } = await memoryServer(1 << 20, { name: 'disk', description: 'a test disk' });
    await client.greet();
    client.sendOption(NBD_OPT_GO, infoRequest('disk', [NBD_INFO_NAME, NBD_INFO_DESCRIPTION]));
    const replies = await client.optionReplies();
    expect(replies.at(-1)?.type).toBe(NBD_REP_ACK);
    const infos = new Map(replies.filter((r) => r.type === NBD_REP_INFO).map((r) => [viewOf(r.data).getUint16(0), r.data]));
    const exportInfo = viewOf(infos.get(NBD_INFO_EXPORT)!);
    expect(Number(exportInfo.getBigUint64(2))).toBe(1 << 20);
    const flags = exportInfo.getUint16(10);
    expect(flags & NBD_FLAG_HAS_FLAGS).toBeTruthy();
    expect(flags & NBD_FLAG_CAN_MULTI_CONN).toBeTruthy();
    expect(flags & NBD_FLAG_READ_ONLY).toBe(0);
    const blockSize = viewOf(infos.get(NBD_INFO_BLOCK_SIZE)!);
    expect([blockSize.getUint32(2), blockSize.getUint32(6), blockSize.getUint32(10)]).toEqual([1, 4096, 32 << 20]);
    expect(decode(infos.get(NBD_INFO_NAME)!.subarray(2))).toBe('disk');
    expect(decode(infos.get(NBD_INFO_DESCRIPTION)!.subarray(2))).toBe('a test disk');
  });

  it('refuses an unknown export name with NBD_REP_ERR_UNKNOWN and lets the client retry', async () => {
    const { client } = await memoryServer(4096, { name: 'disk' });
    await client.greet();
    client.sendOption(NBD_OPT_INFO, infoRequest('other', []));
    expect((await client.optionReplies()).at(-1)?.type).toBe(NBD_REP_ERR_UNKNOWN);
    client.sendOption(NBD_OPT_INFO, infoRequest('', []));
    expect((await client.optionReplies()).at(-1)?.type).toBe(NBD_REP_ACK);
  });

  it('marks a read-only device read-only and hides write features', async () => {
    const { client } = await memoryServer(4096, { writable: false });
    const { flags } = await client.connect({ structured: true });
    expect(flags & NBD_FLAG_READ_ONLY).toBeTruthy();
    expect(flags & (NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES)).toBe(0);
    expect(flags & NBD_FLAG_SEND_DF).toBeTruthy();
  });

  it('honours readOnly on a writable device', async () => {
    const { client } = await memoryServer(4096, { readOnly: true });
    expect((await client.connect()).flags & NBD_FLAG_READ_ONLY).toBeTruthy();
  });

  it('answers NBD_OPT_EXPORT_NAME with size and flags and no zero padding under NO_ZEROES', async () => {
    const { client } = await memoryServer(8192);
    await client.greet();
    client.sendOption(NBD_OPT_EXPORT_NAME);
    const answer = viewOf(await client.need(10));
    expect(Number(answer.getBigUint64(0))).toBe(8192);
    expect(answer.getUint16(8) & NBD_FLAG_HAS_FLAGS).toBeTruthy();
    client.sendRequest(3, 7n, 0, 0); // flush: the next bytes are its reply, not padding
    expect((await client.reply()).handle).toBe(7n);
  });

  it('sends the 124 zero bytes when the client did not ask for NO_ZEROES', async () => {
    const { client } = await memoryServer(8192);
    await client.greet(1);
    client.sendOption(NBD_OPT_EXPORT_NAME);
    const answer = await client.need(134);
    expect(answer.subarray(10).every((b) => b === 0)).toBe(true);
  });

  it('closes the connection for an unknown name in NBD_OPT_EXPORT_NAME', async () => {
    const { client } = await memoryServer(4096, { name: 'disk' });
    await client.greet();
    client.sendOption(NBD_OPT_EXPORT_NAME, text('nope'));
    await client.end.closed;
  });

  it('lists the export', async () => {
    const { client } = await memoryServer(4096, { name: 'disk' });
    await client.greet();
    client.sendOption(NBD_OPT_LIST);
    const replies = await client.optionReplies();
    expect(replies.map((r) => r.type)).toEqual([NBD_REP_SERVER, NBD_REP_ACK]);
    const server = replies[0]!.data;
    expect(decode(server.subarray(4, 4 + viewOf(server).getUint32(0)))).toBe('disk');
    client.sendOption(NBD_OPT_LIST, text('x'));
    expect((await client.optionReplies()).at(-1)?.type).toBe(NBD_REP_ERR_INVALID);
  });

  it('refuses unknown options with NBD_REP_ERR_UNSUP, and STARTTLS without TLS as qemu-nbd does', async () => {
    const { client } = await memoryServer();
    await client.greet();
    client.sendOption(NBD_OPT_STARTTLS);
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_POLICY);
    client.sendOption(NBD_OPT_STARTTLS, text('x'));
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_INVALID);
    client.sendOption(4242, text('whatever data'));
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_UNSUP);
    client.sendOption(NBD_OPT_STRUCTURED_REPLY);
    expect((await client.optionReply()).type).toBe(NBD_REP_ACK);
  });

  it('answers malformed option data with NBD_REP_ERR_INVALID', async () => {
    const { client } = await memoryServer();
    await client.greet();
    client.sendOption(NBD_OPT_GO, new Uint8Array([0, 0, 0, 9, 0, 0]));
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_INVALID);
    client.sendOption(NBD_OPT_STRUCTURED_REPLY, new Uint8Array(1));
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_INVALID);
    client.sendOption(NBD_OPT_STRUCTURED_REPLY);
    expect((await client.optionReply()).type).toBe(NBD_REP_ACK);
    client.sendOption(NBD_OPT_SET_META_CONTEXT, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 5]));
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_INVALID);
  });

  it('closes the connection for an option longer than 64 KiB', async () => {
    const { client } = await memoryServer();
    await client.greet();
    client.end.send(new MessageBuilder().u64(IHAVEOPT).u32(NBD_OPT_GO).u32(64 * 1024 + 1).finish());
    await client.end.closed;
  });

  it('needs structured replies before meta contexts, and knows only base:allocation', async () => {
    const { client } = await memoryServer();
    await client.greet();
    client.sendOption(NBD_OPT_LIST_META_CONTEXT, metaRequest('', []));
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_INVALID);
    client.sendOption(NBD_OPT_STRUCTURED_REPLY);
    await client.optionReplies();
    client.sendOption(NBD_OPT_LIST_META_CONTEXT, metaRequest('', []));
    let replies = await client.optionReplies();
    expect(replies.map((r) => r.type)).toEqual([NBD_REP_META_CONTEXT, NBD_REP_ACK]);
    expect(decode(replies[0]!.data.subarray(4))).toBe('base:allocation');
    client.sendOption(NBD_OPT_LIST_META_CONTEXT, metaRequest('', ['qemu:dirty-bitmap:x']));
    expect((await client.optionReplies()).map((r) => r.type)).toEqual([NBD_REP_ACK]);
    client.sendOption(NBD_OPT_SET_META_CONTEXT, metaRequest('', ['x-foo:bar', 'base:allocation']));
    replies = await client.optionReplies();
    expect(replies.map((r) => r.type)).toEqual([NBD_REP_META_CONTEXT, NBD_REP_ACK]);
    expect(viewOf(replies[0]!.data).getUint32(0)).not.toBe(0);
  });

  it('acknowledges NBD_OPT_ABORT and closes', async () => {
    const { client, served } = await memoryServer();
    await client.greet();
    client.sendOption(NBD_OPT_ABORT);
    expect((await client.optionReply()).type).toBe(NBD_REP_ACK);
    await served;
    await client.end.closed;
  });
});
