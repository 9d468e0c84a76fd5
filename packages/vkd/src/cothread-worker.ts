import { parentPort, workerData } from 'node:worker_threads';
import { DiskError, type BlockDevice, type BlockStore } from '@q/raw';
import { serializeError, type CothreadLayer, type CothreadMessage, type CothreadReady, type CothreadStart } from './cothread-protocol.js';
import {
  COMPLETED,
  CothreadRing,
  FLAG_FAST,
  FLAG_FUA,
  FLAG_UNMAP,
  LAYER_SHIFT,
  LOOP_ASLEEP,
  OP_BLOCK_STATUS,
  OP_CLOSE,
  OP_DISCARD,
  OP_FLUSH,
  OP_READ,
  OP_WRITE,
  OP_WRITE_ZEROES,
  STATUS_MESSAGE,
  STATUS_OK,
  SUBMITTED,
  WORKER_ASLEEP,
} from './cothread-ring.js';
import { openDisk } from './open-disk.js';

/**
 * The cothread: a worker thread that owns the open disk and runs every request against it with blocking file I/O
 * (it may block; the event loop serving clients is on the other thread). Requests start in submission order and
 * may overlap where the engine allows it (reads of allocated data); the engine serialises metadata itself.
 */
const port = parentPort;
if (port === null) throw new Error('cothread-worker must run as a worker thread');

const start = workerData as CothreadStart;
const ring = new CothreadRing(start.ring);
let device: BlockDevice;
let taken = 0;
let inFlight = 0;
let closing = false;
/** Completions pushed since the event loop's side was last woken. */
let unannounced = false;
/** Resolved (and replaced) whenever a request completes: what the loop waits on while requests run. */
let completion: { promise: Promise<void>; resolve: () => void } | undefined;

function nextCompletion(): Promise<void> {
  if (completion === undefined) {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    completion = { promise, resolve };
  }
  return completion.promise;
}

/** The chain's layer `depth` below the top (requests carry it in their flags). */
function layerAt(depth: number): BlockDevice {
  let layer = device;
  for (let i = 0; i < depth; i++) {
    if (layer.backing === undefined) throw new Error(`the chain has no layer ${depth}`);
    layer = layer.backing;
  }
  return layer;
}

async function execute(slot: number): Promise<CothreadMessage['reply'] | undefined> {
  const offset = ring.offset(slot);
  const length = ring.length(slot);
  const flags = ring.flags(slot);
  const device = layerAt(flags >>> LAYER_SHIFT);
  switch (ring.op(slot)) {
    case OP_READ:
      await device.read(ring.dataOf(slot, length), offset);
      return undefined;
    case OP_WRITE:
      await device.write(ring.dataOf(slot, length), offset);
      if ((flags & FLAG_FUA) !== 0) await device.flush();
      return undefined;
    case OP_WRITE_ZEROES:
      await device.writeZeroes(offset, length, { unmap: (flags & FLAG_UNMAP) !== 0, fast: (flags & FLAG_FAST) !== 0 });
      return undefined;
    case OP_DISCARD:
      await device.discard(offset, length);
      return undefined;
    case OP_FLUSH:
      await device.flush();
      return undefined;
    case OP_BLOCK_STATUS:
      return { ok: true, extents: await device.blockStatus(offset, length) };
    case OP_CLOSE:
      closing = true;
      await device.close();
      return undefined;
    default:
      throw new Error(`unknown cothread request ${ring.op(slot)}`);
  }
}

function complete(slot: number, reply: CothreadMessage['reply'] | undefined): void {
  if (reply === undefined) {
    ring.setStatus(slot, STATUS_OK);
  } else {
    // The message goes first: the event loop's side waits for it once it sees the slot completed with this status.
    ring.setStatus(slot, STATUS_MESSAGE);
    port!.postMessage({ slot, reply } satisfies CothreadMessage);
  }
  // Not woken yet: the loop wakes the event loop's side once per batch (serve).
  ring.push(ring.completedRing, COMPLETED, slot);
  unannounced = true;
  inFlight--;
  const waiting = completion;
  completion = undefined;
  waiting?.resolve();
}

/** Starts every request submitted since the last call. */
function startSubmitted(): void {
  const submitted = Atomics.load(ring.control, SUBMITTED);
  while (taken !== submitted) {
    const slot = ring.submittedRing[taken & (ring.submittedRing.length - 1)]!;
    taken = (taken + 1) | 0;
    inFlight++;
    execute(slot).then(
      (reply) => complete(slot, reply),
      (error: unknown) => complete(slot, { ok: false, error: serializeError(error) }),
    );
  }
}

/** True when every running request completes before the event loop turns (the usual case: blocking I/O). */
async function allCompleteBeforeTurn(): Promise<boolean> {
  let turn: NodeJS.Immediate | undefined;
  const turned = new Promise<false>((resolve) => (turn = setImmediate(() => resolve(false))));
  while (inFlight > 0) if (!(await Promise.race([nextCompletion().then(() => true), turned]))) break;
  clearImmediate(turn);
  return inFlight === 0;
}

/** Wakes the event loop's side once for every completion pushed since the last time. */
function announce(): void {
  if (!unannounced) return;
  unannounced = false;
  ring.wake(LOOP_ASLEEP, COMPLETED);
}

/** Sleeps until the event loop's side submits something. */
function sleepUntilSubmitted(): void {
  Atomics.store(ring.control, WORKER_ASLEEP, 1);
  Atomics.wait(ring.control, SUBMITTED, taken);
  Atomics.store(ring.control, WORKER_ASLEEP, 0);
}

/**
 * Blocking I/O completes within microtasks, so a batch of requests started usually finishes before the event loop
 * turns; the event loop's side is then woken once for the whole batch, and with nothing submitted meanwhile the
 * thread sleeps in Atomics.wait until the next submission. Requests still running after a turn (thread pool I/O,
 * a flush, waiting for a lock) keep the thread's event loop turning instead, until one completes or a new
 * submission arrives (Atomics.waitAsync): reads are not held up behind a slow flush.
 */
async function serve(): Promise<void> {
  while (!closing) {
    startSubmitted();
    const settled = inFlight === 0 || (await allCompleteBeforeTurn());
    announce();
    if (settled) {
      if (!closing) sleepUntilSubmitted();
      continue;
    }
    Atomics.store(ring.control, WORKER_ASLEEP, 1);
    const submission = Atomics.waitAsync(ring.control, SUBMITTED, taken);
    if (submission.async) await Promise.race([nextCompletion(), submission.value]);
    Atomics.store(ring.control, WORKER_ASLEEP, 0);
  }
  announce();
}

/** The store the start message names (a module's `createStore()`), or the default one. */
async function workerStore(): Promise<BlockStore | undefined> {
  if (start.storeModule === undefined) return undefined;
  const module = (await import(start.storeModule)) as { createStore?: () => BlockStore | Promise<BlockStore> };
  if (typeof module.createStore !== 'function') {
    throw new DiskError('E_INVALID', `store module ${start.storeModule} has no createStore() export`);
  }
  return module.createStore();
}

workerStore().then((store) => openDisk(start.spec, { ...start.options, store, blockingIo: 'always' })).then(
  (opened) => {
    device = opened;
    const layers: CothreadLayer[] = [];
    for (let layer: BlockDevice | undefined = opened; layer !== undefined; layer = layer.backing) {
      layers.push({ name: layer.name, format: layer.format, size: layer.size, readOnly: layer.readOnly });
    }
    port.postMessage({ ready: true, layers } satisfies CothreadReady);
    void serve();
  },
  (error: unknown) => port.postMessage({ ready: false, error: serializeError(error) } satisfies CothreadReady),
);
