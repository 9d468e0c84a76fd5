import { ALIGNED_VIEW_OFFSET } from '@q/raw';

/**
 * The shared memory between a cothread disk (the event loop's side) and its worker: request slots, each with a
 * fixed data area, and two rings of slot numbers (submitted, completed). A request costs no message and no copy
 * beyond the data area: the event loop writes a slot, bumps the submit counter and wakes the worker with
 * Atomics.notify; the worker reads into or writes from the slot's data area, pushes the slot onto the completed
 * ring and wakes the event loop (Atomics.waitAsync). Replies that carry more than a status (block status extents,
 * errors) travel as messages instead.
 *
 * Ordering: every counter is read and written with Atomics, so the plain writes of a slot made before the counter
 * moved are visible to the thread that sees it move (the ECMAScript memory model's synchronizes-with).
 */
export const SLOT_COUNT = 64;
/** Data area per slot; bigger requests are split into slot-sized pieces. */
export const SLOT_BYTES = 256 * 1024;

/** Indexes into the control words. */
export const SUBMITTED = 0;
export const COMPLETED = 1;
/** Set by a side about to sleep on the other's counter: only then does the other pay for Atomics.notify. */
export const WORKER_ASLEEP = 2;
export const LOOP_ASLEEP = 3;
const CONTROL_WORDS = 4;

export const OP_READ = 1;
export const OP_WRITE = 2;
export const OP_WRITE_ZEROES = 3;
export const OP_DISCARD = 4;
export const OP_FLUSH = 5;
export const OP_BLOCK_STATUS = 6;
export const OP_CLOSE = 7;

/** Request flags. */
export const FLAG_FUA = 1;
export const FLAG_UNMAP = 2;
export const FLAG_FAST = 4;
/** The layer of the backing chain a request is for (0 = the top image), in the flags above this bit. */
export const LAYER_SHIFT = 8;

/** A completed slot's status word: done, or the reply (error, extents) follows as a message. */
export const STATUS_OK = 0;
export const STATUS_MESSAGE = 1;

/** Per slot: op, flags, status, and offset/length as float64 (exact up to 2^53). */
const META_FLOATS = 4;
/**
 * Where the data areas start: after the words above, at the offset that puts them on a page in memory from
 * glibc's malloc (alignedBytes in @q/raw), where the kernel copies reads from the page cache into them fastest.
 */
const DATA_OFFSET = ALIGNED_VIEW_OFFSET;

export class CothreadRing {
  readonly buffer: SharedArrayBuffer;
  readonly control: Int32Array;
  readonly submittedRing: Int32Array;
  readonly completedRing: Int32Array;
  private readonly meta: Float64Array;
  private readonly data: Uint8Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(CothreadRing.bytes())) {
    this.buffer = buffer;
    let at = 0;
    this.meta = new Float64Array(buffer, at, SLOT_COUNT * META_FLOATS);
    at += this.meta.byteLength;
    this.control = new Int32Array(buffer, at, CONTROL_WORDS);
    at += this.control.byteLength;
    this.submittedRing = new Int32Array(buffer, at, SLOT_COUNT);
    at += this.submittedRing.byteLength;
    this.completedRing = new Int32Array(buffer, at, SLOT_COUNT);
    this.data = new Uint8Array(buffer, DATA_OFFSET, SLOT_COUNT * SLOT_BYTES);
  }

  static bytes(): number {
    return DATA_OFFSET + SLOT_COUNT * SLOT_BYTES;
  }

  /** The slot's data area, `length` bytes of it. */
  dataOf(slot: number, length = SLOT_BYTES): Uint8Array {
    return this.data.subarray(slot * SLOT_BYTES, slot * SLOT_BYTES + length);
  }

  setRequest(slot: number, op: number, offset: number, length: number, flags: number): void {
    const at = slot * META_FLOATS;
    this.meta[at] = op;
    this.meta[at + 1] = flags;
    this.meta[at + 2] = offset;
    this.meta[at + 3] = length;
  }

  op(slot: number): number {
    return this.meta[slot * META_FLOATS]!;
  }

  flags(slot: number): number {
    return this.meta[slot * META_FLOATS + 1]!;
  }

  offset(slot: number): number {
    return this.meta[slot * META_FLOATS + 2]!;
  }

  length(slot: number): number {
    return this.meta[slot * META_FLOATS + 3]!;
  }

  /** The status word shares the flags float: written by the worker after the request is done with them. */
  setStatus(slot: number, status: number): void {
    this.meta[slot * META_FLOATS + 1] = status;
  }

  status(slot: number): number {
    return this.meta[slot * META_FLOATS + 1]!;
  }

  /**
   * Appends `slot` to a ring whose counter is `control[counter]` (one producer per ring). The consumer sees it when
   * it next looks; call `wake` once the batch is pushed.
   */
  push(ring: Int32Array, counter: number, slot: number): void {
    const tail = Atomics.load(this.control, counter);
    ring[tail & (SLOT_COUNT - 1)] = slot;
    Atomics.store(this.control, counter, (tail + 1) | 0);
  }

  /**
   * Wakes the consumer of `counter` if it said it sleeps (`asleep`). Both sides write before they read (the
   * producer its counter, the sleeper its flag) with sequentially consistent atomics, so at least one of them sees
   * the other's write: either the producer notifies or the sleeper finds the counter moved and does not sleep.
   */
  wake(asleep: number, counter: number): void {
    if (Atomics.load(this.control, asleep) !== 0) Atomics.notify(this.control, counter);
  }
}
