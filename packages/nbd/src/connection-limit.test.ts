import { describe, expect, it } from 'vitest';
import { ConnectionGate } from './connection-gate.js';
import { NBD_CMD_DISC, NBD_CMD_READ, NBD_FLAG_CAN_MULTI_CONN, NBD_OPT_ABORT } from './protocol.js';
import { memoryServer, type TestClient } from './test-client.js';

/** Lets pending promise callbacks run (the server reacts to a close on later turns). */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 10));

/** The client's greeting (18 bytes) as it arrives, and whether it has yet. */
function awaitGreeting(client: TestClient): { arrived: () => boolean; greeting: Promise<Uint8Array | undefined> } {
  let arrived = false;
  const greeting = client.end.receive(18).then((bytes) => {
    arrived = bytes !== undefined;
    return bytes;
  });
  return { arrived: () => arrived, greeting };
}

function disconnect(client: TestClient): void {
  client.sendRequest(NBD_CMD_DISC, 0n, 0, 0);
  client.end.end();
}

describe('ConnectionGate', () => {
  it('admits up to the limit, then one waiter per leave, in arrival order', async () => {
    const gate = new ConnectionGate(2);
    expect(await gate.enter()).toBe(true);
    expect(await gate.enter()).toBe(true);
    const order: string[] = [];
    const third = gate.enter().then((ok) => order.push(`third ${ok}`));
    const fourth = gate.enter().then((ok) => order.push(`fourth ${ok}`));
    await settle();
    expect(order).toEqual([]);
    expect(gate.waitingCount).toBe(2);
    gate.leave();
    await third;
    expect(order).toEqual(['third true']);
    expect(gate.activeCount).toBe(2);
    gate.close();
    await fourth;
    expect(order).toEqual(['third true', 'fourth false']);
    expect(await gate.enter()).toBe(false);
  });

  it('limit 0 lets everyone in', async () => {
    const gate = new ConnectionGate(0);
    for (let i = 0; i < 100; i++) expect(await gate.enter()).toBe(true);
    expect(gate.activeCount).toBe(100);
  });
});

describe('NbdServer maxConnections (qemu-nbd -e)', () => {
  it('a connection beyond the limit gets no greeting until one leaves', async () => {
    const { server, client, connect } = await memoryServer(1 << 16, { maxConnections: 1 });
    const { flags } = await client.connect();
    // One connection at a time: multi-conn would invite clients to open connections that only wait.
    expect(flags & NBD_FLAG_CAN_MULTI_CONN).toBe(0);
    const second = awaitGreeting(connect());
    await settle();
    expect(second.arrived()).toBe(false);
    expect(server.waitingCount).toBe(1);
    disconnect(client);
    expect(await second.greeting).toHaveLength(18);
    expect(server.waitingCount).toBe(0);
    await server.shutdown();
  });

  it('advertises CAN_MULTI_CONN when more than one connection, or any number, is allowed', async () => {
    for (const maxConnections of [0, 2, undefined]) {
      const { server, client } = await memoryServer(1 << 16, maxConnections === undefined ? {} : { maxConnections });
      expect((await client.connect()).flags & NBD_FLAG_CAN_MULTI_CONN).toBe(NBD_FLAG_CAN_MULTI_CONN);
      await server.shutdown();
    }
  });

  it('shutdown turns waiting connections away unanswered', async () => {
    const { server, client, connect } = await memoryServer(1 << 16, { maxConnections: 1 });
    await client.connect();
    const waiting = connect();
    await settle();
    await server.shutdown();
    await waiting.end.closed;
    expect(await waiting.end.receive(1)).toBeUndefined();
  });
});

describe('NbdServer persistent: false (qemu-nbd without -t)', () => {
  it('stops when the last client that reached transmission leaves, turning waiting ones away', async () => {
    const { server, client, connect } = await memoryServer(1 << 16, { persistent: false, maxConnections: 1 });
    let finished = false;
    void server.finished.then(() => (finished = true));
    await client.connect();
    client.sendRequest(NBD_CMD_READ, 1n, 0, 512);
    expect(await client.reply(512)).toMatchObject({ error: 0 });
    const waiting = connect();
    disconnect(client);
    await server.finished;
    expect(finished).toBe(true);
    await waiting.end.closed;
    expect(await waiting.end.receive(1)).toBeUndefined();
  });

  it('does not stop for clients that never reached transmission, nor while another client is served', async () => {
    const { server, client, connect } = await memoryServer(1 << 16, { persistent: false });
    let finished = false;
    void server.finished.then(() => (finished = true));
    // A probe that hangs up at once, and a client that aborts the handshake (`nbdinfo --list`).
    client.end.end();
    const aborting = connect();
    await aborting.greet();
    aborting.sendOption(NBD_OPT_ABORT);
    await aborting.end.closed;
    const first = connect();
    const second = connect();
    await first.connect();
    await second.connect();
    disconnect(first);
    await settle();
    expect(finished).toBe(false);
    // The server still serves the other client.
    second.sendRequest(NBD_CMD_READ, 2n, 0, 512);
    expect(await second.reply(512)).toMatchObject({ error: 0 });
    disconnect(second);
    await server.finished;
    expect(finished).toBe(true);
  });

  it('a persistent server (the default) keeps serving after every client left', async () => {
    const { server, client, connect } = await memoryServer(1 << 16);
    let finished = false;
    void server.finished.then(() => (finished = true));
    await client.connect();
    disconnect(client);
    await settle();
    expect(finished).toBe(false);
    const next = connect();
    await next.connect();
    next.sendRequest(NBD_CMD_READ, 3n, 0, 512);
    expect(await next.reply(512)).toMatchObject({ error: 0 });
    await server.shutdown();
  });
});
