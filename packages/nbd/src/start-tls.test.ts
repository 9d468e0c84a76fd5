import { describe, expect, it } from 'vitest';
import { memoryTransportPair } from './memory-transport.js';
import {
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
  NBD_REP_ERR_TLS_REQD,
} from './protocol.js';
import { TestClient, memoryServer, withFakeTls } from './test-client.js';
import { MessageBuilder } from './wire.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const goDefault = (): Uint8Array => new MessageBuilder().u32(0).u16(0).finish();
const metaQuery = new MessageBuilder().u32(4).text('disk').u32(1).u32(15).text('base:allocation').finish();

describe('NBD_OPT_STARTTLS (FORCEDTLS)', () => {
  it('refuses every option but STARTTLS and ABORT before TLS, and tells nothing about the export', async () => {
    const { client } = await memoryServer(1 << 20, { name: 'disk', description: 'secret disk', tls: {}, fakeTls: {} });
    await client.greet();
    const before = [NBD_OPT_LIST, NBD_OPT_STRUCTURED_REPLY, NBD_OPT_INFO, NBD_OPT_GO, NBD_OPT_LIST_META_CONTEXT, NBD_OPT_SET_META_CONTEXT, 4242];
    for (const option of before) {
      const data = option === NBD_OPT_GO || option === NBD_OPT_INFO ? new MessageBuilder().u32(4).text('disk').u16(0).finish() : option >= 9 && option <= 10 ? metaQuery : new Uint8Array(0);
      client.sendOption(option, data);
      const replies = await client.optionReplies();
      expect(replies.map((r) => [r.option, r.type])).toEqual([[option, NBD_REP_ERR_TLS_REQD]]);
      const said = new TextDecoder().decode(replies[0]!.data);
      expect(said).not.toMatch(/disk|secret|1048576/);
    }
    client.sendOption(NBD_OPT_ABORT);
    expect((await client.optionReply()).type).toBe(NBD_REP_ACK);
    await client.end.closed;
  });

  it('hangs up on NBD_OPT_EXPORT_NAME before TLS without a byte of export information', async () => {
    const { client, served } = await memoryServer(4096, { tls: {}, fakeTls: {} });
    await client.greet();
    client.sendOption(NBD_OPT_EXPORT_NAME);
    await served;
    expect(await client.end.receive(1)).toBeUndefined();
  });

  it('upgrades once on STARTTLS, then haggles and serves as usual; a second STARTTLS is invalid', async () => {
    const pair = memoryTransportPair();
    const transport = withFakeTls(pair.server, { identity: 'CN=client1' });
    const { server } = await memoryServer(8192, { tls: {} });
    void server.serve(transport);
    const client = new TestClient(pair.client);
    await client.greet();
    client.sendOption(NBD_OPT_STARTTLS, text('x'));
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_INVALID);
    expect(transport.upgrades).toBe(0);
    client.sendOption(NBD_OPT_STARTTLS);
    expect((await client.optionReply()).type).toBe(NBD_REP_ACK);
    expect(transport.upgrades).toBe(1);
    client.sendOption(NBD_OPT_STARTTLS);
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_INVALID);
    expect(transport.upgrades).toBe(1);
    client.sendOption(NBD_OPT_STRUCTURED_REPLY);
    expect((await client.optionReply()).type).toBe(NBD_REP_ACK);
    client.sendOption(NBD_OPT_GO, goDefault());
    expect((await client.optionReplies()).at(-1)?.type).toBe(NBD_REP_ACK);
    client.sendRequest(3, 9n, 0, 0);
    expect(await client.reply()).toMatchObject({ handle: 9n, error: 0 });
  });

  it('drops a client that pipelines bytes after STARTTLS, before answering it', async () => {
    const pair = memoryTransportPair();
    const transport = withFakeTls(pair.server, {});
    const { server } = await memoryServer(4096, { tls: {} });
    const served = server.serve(transport);
    const client = new TestClient(pair.client);
    await client.greet();
    const starttls = new MessageBuilder().u64(0x49484156454f5054n).u32(NBD_OPT_STARTTLS).u32(0).finish();
    const go = new MessageBuilder().u64(0x49484156454f5054n).u32(NBD_OPT_GO).u32(6).bytesOf(goDefault()).finish();
    pair.client.send(new MessageBuilder().bytesOf(starttls).bytesOf(go).finish());
    await served;
    expect(await pair.client.receive(1)).toBeUndefined();
    expect(transport.upgrades).toBe(0);
  });

  it('ends the connection when the TLS handshake fails, and keeps serving others', async () => {
    const logged: string[] = [];
    const { client, served, connect } = await memoryServer(4096, { tls: {}, fakeTls: { fail: true }, log: (line) => logged.push(line) });
    await client.greet();
    client.sendOption(NBD_OPT_STARTTLS);
    expect((await client.optionReply()).type).toBe(NBD_REP_ACK);
    await served;
    await client.end.closed;
    expect(logged).toEqual(['memory: TLS: fake handshake failure']);
    const next = connect();
    await next.greet();
    next.sendOption(NBD_OPT_LIST);
    expect((await next.optionReply()).type).toBe(NBD_REP_ERR_TLS_REQD);
  });

  it('serves only the allowed identities', async () => {
    for (const [identity, allowed] of [
      ['CN=client1', true],
      ['CN=intruder', false],
      [undefined, false],
    ] as const) {
      const logged: string[] = [];
      const { client, served } = await memoryServer(4096, {
        tls: { allowedIdentities: ['CN=client1', 'alice'] },
        fakeTls: identity === undefined ? {} : { identity },
        log: (line) => logged.push(line),
      });
      await client.greet();
      client.sendOption(NBD_OPT_STARTTLS);
      expect((await client.optionReply()).type).toBe(NBD_REP_ACK);
      if (allowed) {
        client.sendOption(NBD_OPT_GO, goDefault());
        expect((await client.optionReplies()).at(-1)?.type).toBe(NBD_REP_ACK);
      } else {
        await served;
        expect(await client.end.receive(1)).toBeUndefined();
        expect(logged.join('\n')).toMatch(/TLS: TLS identity .* is not authorised/);
      }
    }
  });

  it('never serves in plaintext when TLS is required but the transport cannot upgrade', async () => {
    const { client } = await memoryServer(4096, { tls: {} });
    await client.greet();
    client.sendOption(NBD_OPT_STARTTLS);
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_POLICY);
    client.sendOption(NBD_OPT_GO, goDefault());
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_TLS_REQD);
  });

  it('requires TLS of a transport that can upgrade even when the server was not told to', async () => {
    const { client } = await memoryServer(4096, { fakeTls: {} });
    await client.greet();
    client.sendOption(NBD_OPT_LIST);
    expect((await client.optionReply()).type).toBe(NBD_REP_ERR_TLS_REQD);
    client.sendOption(NBD_OPT_STARTTLS);
    expect((await client.optionReply()).type).toBe(NBD_REP_ACK);
    client.sendOption(NBD_OPT_LIST);
    expect((await client.optionReplies()).at(-1)?.type).toBe(NBD_REP_ACK);
  });

  it('shutdown aborts a TLS handshake that never completes', async () => {
    const { client, server, served } = await memoryServer(4096, { tls: {}, fakeTls: { stall: true } });
    await client.greet();
    client.sendOption(NBD_OPT_STARTTLS);
    expect((await client.optionReply()).type).toBe(NBD_REP_ACK);
    await server.shutdown();
    await served;
    await client.end.closed;
  });
});
