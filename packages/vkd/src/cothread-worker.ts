import { parentPort, workerData } from 'node:worker_threads';
import type { BlockDevice } from '@q/raw';
import { serializeError, type CothreadReady, type CothreadReply, type CothreadRequest, type CothreadStart } from './cothread-protocol.js';
import { openDisk } from './open-disk.js';

/**
 * The cothread: a worker thread that owns the open disk and runs every request against it with blocking file I/O
 * (it may block; the event loop serving clients is on the other thread). Requests start in arrival order and may
 * overlap where the engine allows it (reads of allocated data); the engine serialises metadata itself.
 */
const port = parentPort;
if (port === null) throw new Error('cothread-worker must run as a worker thread');

const start = workerData as CothreadStart;
let device: BlockDevice | undefined;

async function handle(request: CothreadRequest): Promise<CothreadReply> {
  const disk = device!;
  switch (request.op) {
    case 'read': {
      const data = new Uint8Array(request.length);
      await disk.read(data, request.offset);
      return { id: request.id, ok: true, data: data.buffer };
    }
    case 'write':
      await disk.write(new Uint8Array(request.data), request.offset);
      if (request.fua) await disk.flush();
      return { id: request.id, ok: true };
    case 'writeZeroes':
      await disk.writeZeroes(request.offset, request.length, { unmap: request.unmap });
      return { id: request.id, ok: true };
    case 'discard':
      await disk.discard(request.offset, request.length);
      return { id: request.id, ok: true };
    case 'flush':
      await disk.flush();
      return { id: request.id, ok: true };
    case 'blockStatus':
      return { id: request.id, ok: true, extents: await disk.blockStatus(request.offset, request.length) };
    case 'close':
      await disk.close();
      return { id: request.id, ok: true };
  }
}

port.on('message', (request: CothreadRequest) => {
  handle(request).then(
    (reply) => port.postMessage(reply, reply.ok && reply.data !== undefined ? [reply.data] : []),
    (error: unknown) => port.postMessage({ id: request.id, ok: false, error: serializeError(error) } satisfies CothreadReply),
  );
});

openDisk(start.spec, { ...start.options, blockingIo: true }).then(
  (opened) => {
    device = opened;
    port.postMessage({ ready: true, name: opened.name, format: opened.format, size: opened.size, readOnly: opened.readOnly } satisfies CothreadReady);
  },
  (error: unknown) => port.postMessage({ ready: false, error: serializeError(error) } satisfies CothreadReady),
);
