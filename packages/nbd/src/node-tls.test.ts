import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBlockFile, RawDisk } from '@q/raw';
import { ByteReader } from './byte-reader.js';
import type { MemoryClientEnd } from './memory-transport.js';
import { NbdServer, type NbdServerOptions } from './nbd-server.js';
import { listenNbd, type NbdListener } from './node-listener.js';
import { loadPskCredentials } from './node-tls-credentials.js';
import {
  IHAVEOPT,
  NBD_CMD_READ,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_STARTTLS,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_TLS_REQD,
} from './protocol.js';
import { socketChunks } from './socket-chunks.js';
import { TestClient } from './test-client.js';
import { MessageBuilder } from './wire.js';

// Real TLS over real sockets, with node's own TLS client on the other side. PSK needs no certificate files, so
// these run anywhere; certificates, and GnuTLS clients (qemu, libnbd), are tested in tests/nbd/src/tls.test.ts.

const ALICE_KEY = '95f667e87a191ce4f65d081131e556f10a594256235a42c295b5eb57ffd54a0a';
const BOB_KEY = 'f0d3a54d1adc99872f588f2892123284e8f381a6b643e20b6f419eac27fcf951';
const hexBytes = (hex: string): Buffer => Buffer.from(hex, 'hex');

/** A byte-level client over a socket that can switch to TLS halfway, as an NBD client does after STARTTLS. */
class UpgradingClient {
  readonly client: TestClient;
  private reader: ByteReader;
  private sink: Socket;
  private readonly closedBy: Promise<void>;

  constructor(private readonly raw: Socket) {
    const chunks = socketChunks(raw);
    this.reader = new ByteReader(chunks);
    this.sink = raw;
    raw.on('error', () => {});
    this.closedBy = new Promise((resolve) => raw.once('close', () => resolve()));
    const end: MemoryClientEnd = {
      send: (bytes) => void this.sink.write(bytes),
      end: () => void this.sink.end(),
      receive: async (length) => this.reader.read(length).catch(() => undefined),
      closed: this.closedBy,
    };
    this.client = new TestClient(end);
    this.detachPlain = () => chunks.detach();
  }

  private readonly detachPlain: () => number;

  /** After the server's ACK: the TLS handshake as a client, then everything over it. Resolves to the TLS socket. */
  async startTls(options: ConnectionOptions): Promise<TLSSocket> {
    expect(this.detachPlain()).toBe(0);
    const secure = tlsConnect({ socket: this.raw, ...options });
    secure.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('closed during the TLS handshake')));
    });
    this.sink = secure;
    this.reader.replaceSource(socketChunks(secure));
    return secure;
  }

  /** Resolves once the server has ended the connection (a TLS alert, a FIN, or a reset). */
  closed(): Promise<void> {
    return this.closedBy;
  }

  destroy(): void {
    this.raw.destroy();
  }
}

const pskClient = (identity: string, key: string, extra: ConnectionOptions = {}): ConnectionOptions => ({
  pskCallback: () => ({ identity, psk: hexBytes(key) }),
  // No certificate comes from a PSK server; nothing to check the name against.
  checkServerIdentity: () => undefined,
  ciphers: 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:ECDHE-PSK-CHACHA20-POLY1305',
  ...extra,
});

describe('NBD over TLS with pre-shared keys (node:tls)', () => {
  let listener: NbdListener | undefined;
  let dir: string | undefined;
  const clients: UpgradingClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await listener?.close();
    listener = undefined;
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const start = async (options: Partial<NbdServerOptions> = {}): Promise<{ port: number; log: string[] }> => {
    dir = mkdtempSync(join(process.platform === 'linux' ? '/dev/shm' : tmpdir(), 'nbd-tls-test-'));
    writeFileSync(join(dir, 'keys.psk'), `alice:${ALICE_KEY}\nbob:${BOB_KEY}\n`);
    const log: string[] = [];
    const device = await RawDisk.open(new MemoryBlockFile(new Uint8Array(1 << 20).fill(0x5a)));
    // A directory holding keys.psk, as qemu's tls-creds-psk takes it.
    const tls = await loadPskCredentials(dir);
    listener = await listenNbd(new NbdServer({ device, log: (line) => log.push(line), ...options }), { port: 0 }, { tls });
    return { port: (listener.address as { port: number }).port, log };
  };

  const open = async (port: number): Promise<UpgradingClient> => {
    const socket = netConnect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const client = new UpgradingClient(socket);
    clients.push(client);
    await client.client.greet();
    return client;
  };

  const starttls = async (client: UpgradingClient): Promise<void> => {
    client.client.sendOption(NBD_OPT_STARTTLS);
    expect((await client.client.optionReply()).type).toBe(NBD_REP_ACK);
  };

  it('upgrades, then haggles and reads over TLS 1.3; a second STARTTLS is refused', async () => {
    const { port } = await start();
    const client = await open(port);
    await starttls(client);
    const secure = await client.startTls(pskClient('alice', ALICE_KEY));
    expect(secure.getProtocol()).toBe('TLSv1.3');
    client.client.sendOption(NBD_OPT_STARTTLS);
    expect((await client.client.optionReply()).type).toBe(NBD_REP_ERR_INVALID);
    const { size } = await client.client.connect({ structured: false, greet: false });
    expect(size).toBe(1 << 20);
    client.client.sendRequest(NBD_CMD_READ, 5n, 4096, 8);
    const reply = await client.client.reply(8);
    expect(reply.error).toBe(0);
    expect([...reply.payload]).toEqual(new Array(8).fill(0x5a));
  });

  it('works with a client that stops at TLS 1.2 (ECDHE-PSK)', async () => {
    const { port } = await start();
    const client = await open(port);
    await starttls(client);
    const secure = await client.startTls(pskClient('bob', BOB_KEY, { maxVersion: 'TLSv1.2' }));
    expect(secure.getProtocol()).toBe('TLSv1.2');
    expect(secure.getCipher().name).toMatch(/^ECDHE-PSK-/);
    expect((await client.client.connect({ greet: false })).size).toBe(1 << 20);
  });

  it('refuses options before TLS and hangs up on EXPORT_NAME', async () => {
    const { port } = await start();
    const client = await open(port);
    client.client.sendOption(NBD_OPT_GO, new MessageBuilder().u32(0).u16(0).finish());
    expect((await client.client.optionReply()).type).toBe(NBD_REP_ERR_TLS_REQD);
    client.client.sendOption(NBD_OPT_EXPORT_NAME);
    await client.closed();
  });

  it('a wrong key or an unknown user fails the handshake; the server keeps serving', async () => {
    const { port, log } = await start();
    for (const [identity, key] of [
      ['alice', BOB_KEY],
      ['mallory', ALICE_KEY],
    ] as const) {
      const client = await open(port);
      await starttls(client);
      await expect(client.startTls(pskClient(identity, key))).rejects.toThrow();
      await client.closed();
    }
    expect(log.filter((line) => line.includes('TLS: TLS handshake failed'))).toHaveLength(2);
    expect(log[1]).toContain("unknown PSK username 'mallory'");
    const good = await open(port);
    await starttls(good);
    await good.startTls(pskClient('alice', ALICE_KEY));
    expect((await good.client.connect({ greet: false })).size).toBe(1 << 20);
  });

  it('serves only the usernames the policy allows', async () => {
    const { port, log } = await start({ tls: { allowedIdentities: ['alice'] } });
    const bob = await open(port);
    await starttls(bob);
    await bob.startTls(pskClient('bob', BOB_KEY));
    await bob.closed();
    expect(log.join('\n')).toContain("TLS identity 'bob' is not authorised");
    const alice = await open(port);
    await starttls(alice);
    await alice.startTls(pskClient('alice', ALICE_KEY));
    expect((await alice.client.connect({ greet: false })).size).toBe(1 << 20);
  });

  it('drops a client that sends more after STARTTLS without waiting for the ACK', async () => {
    const { port, log } = await start();
    const client = await open(port);
    const option = (code: number): Uint8Array => new MessageBuilder().u64(IHAVEOPT).u32(code).u32(0).finish();
    client.client.end.send(new MessageBuilder().bytesOf(option(NBD_OPT_STARTTLS)).bytesOf(option(NBD_OPT_GO)).finish());
    await client.closed();
    expect(log.join('\n')).toMatch(/protocol error: .*after NBD_OPT_STARTTLS/);
  });

  it('shutting down ends a client stuck in the TLS handshake', async () => {
    const { port } = await start();
    const client = await open(port);
    await starttls(client);
    // The client never sends its ClientHello.
    await listener!.close();
    listener = undefined;
    await client.closed();
  });
});
