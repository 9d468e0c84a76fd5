import { createServer, connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { socketChunks } from './socket-chunks.js';

/** A connected TCP pair on loopback: what the client writes, the server side reads. */
async function socketPair(): Promise<{ client: Socket; server: Socket; close: () => void }> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const address = listener.address() as { port: number };
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  const client = connect(address.port, '127.0.0.1');
  const server = await accepted;
  return { client, server, close: () => (client.destroy(), server.destroy(), listener.close()) };
}

let cleanup: (() => void) | undefined;
afterEach(() => cleanup?.());

describe('socketChunks', () => {
  it('yields every byte in order and ends when the peer closes', async () => {
    const pair = await socketPair();
    cleanup = pair.close;
    const sent = new Uint8Array(300_000).map((_, i) => i * 7);
    pair.client.end(sent);
    const received: Uint8Array[] = [];
    for await (const chunk of socketChunks(pair.server)) received.push(chunk);
    // Buffer.equals, not toEqual: a deep compare of 300 KB takes seconds on a busy machine.
    expect(Buffer.concat(received).equals(Buffer.from(sent))).toBe(true);
  });

  it('pauses the socket past its high water mark and resumes as the consumer catches up', async () => {
    const pair = await socketPair();
    cleanup = pair.close;
    const iterator = socketChunks(pair.server)[Symbol.asyncIterator]();
    pair.client.write(new Uint8Array(3 << 20));
    // Nobody consumes: the socket stops reading once a megabyte is queued.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(pair.server.isPaused()).toBe(true);
    let total = 0;
    while (total < 3 << 20) total += (await iterator.next()).value!.length;
    expect(total).toBe(3 << 20);
    expect(pair.server.isPaused()).toBe(false);
  });

  it('detach leaves later bytes in the socket for the next reader and counts the unread ones', async () => {
    const pair = await socketPair();
    cleanup = pair.close;
    const chunks = socketChunks(pair.server);
    const iterator = chunks[Symbol.asyncIterator]();
    pair.client.write(new Uint8Array([1, 2, 3]));
    expect([...(await iterator.next()).value!]).toEqual([1, 2, 3]);
    expect(chunks.detach()).toBe(0);
    expect((await iterator.next()).done).toBe(true);
    pair.client.write(new Uint8Array([4, 5]));
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Nothing was taken while detached: the next reader finds the bytes.
    const next = await new Promise<Buffer>((resolve) => pair.server.once('data', resolve).resume());
    expect([...next]).toEqual([4, 5]);
  });

  it('detach reports bytes that arrived and were never consumed', async () => {
    const pair = await socketPair();
    cleanup = pair.close;
    const chunks = socketChunks(pair.server);
    pair.client.write(new Uint8Array(10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(chunks.detach()).toBe(10);
  });
});
