import type { Worker } from 'node:worker_threads';
import { DiskError } from '@q/raw';
import { deserializeError, type CothreadMessage } from './cothread-protocol.js';
import { COMPLETED, CothreadRing, LOOP_ASLEEP, SLOT_COUNT, STATUS_OK, SUBMITTED, WORKER_ASLEEP } from './cothread-ring.js';

export type CothreadReply = CothreadMessage['reply'] | undefined;

interface Pending {
  resolve: (reply: CothreadReply) => void;
  reject: (error: Error) => void;
  /** Seen on the completed ring with STATUS_MESSAGE, its message not yet here. */
  awaitingMessage: boolean;
}

/**
 * The event loop's end of a cothread: submits requests into the shared ring (cothread-ring.ts) and settles them
 * as the worker completes them. No message and no allocation per request, one copy of the data on this side. At
 * most SLOT_COUNT requests are with the worker at once; more wait here for a slot.
 */
export class CothreadChannel {
  private readonly freeSlots = Array.from({ length: SLOT_COUNT }, (_, i) => SLOT_COUNT - 1 - i);
  private readonly slotWaiters: Array<{ resolve: (slot: number) => void; reject: (error: Error) => void }> = [];
  private readonly pending: Array<Pending | undefined> = new Array<Pending | undefined>(SLOT_COUNT);
  /** Replies whose message came before the slot showed up on the completed ring. */
  private readonly earlyReplies = new Map<number, CothreadReply>();
  private outstanding = 0;
  private completedSeen = 0;
  private watching = false;
  private failure: Error | undefined;

  constructor(
    readonly worker: Worker,
    private readonly ring: CothreadRing,
    name: string,
  ) {
    worker.on('message', (message: CothreadMessage) => this.onMessage(message));
    worker.on('error', (error) => this.failAll(new DiskError('E_IO', `the disk's worker failed: ${error.message}`, { file: name })));
    worker.on('exit', () => {
      // What it completed before it went (the close request, last of all) still counts.
      this.drain();
      this.failAll(new DiskError('E_IO', "the disk's worker exited", { file: name }));
    });
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** Runs one request in a slot: `src` is copied in before, `dst` filled from the slot after. */
  async request(op: number, offset: number, length: number, flags: number, src?: Uint8Array, dst?: Uint8Array): Promise<CothreadReply> {
    if (this.failure !== undefined) throw this.failure;
    const slot = this.freeSlots.pop() ?? (await new Promise<number>((resolve, reject) => this.slotWaiters.push({ resolve, reject })));
    try {
      if (this.failure !== undefined) throw this.failure;
      this.ring.setRequest(slot, op, offset, length, flags);
      if (src !== undefined) this.ring.dataOf(slot, src.length).set(src);
      const reply = await new Promise<CothreadReply>((resolve, reject) => {
        this.pending[slot] = { resolve, reject, awaitingMessage: false };
        this.outstanding++;
        this.ring.push(this.ring.submittedRing, SUBMITTED, slot);
        this.ring.wake(WORKER_ASLEEP, SUBMITTED);
        this.watch();
      });
      if (reply?.ok === false) throw deserializeError(reply.error);
      if (dst !== undefined) dst.set(this.ring.dataOf(slot, dst.length));
      return reply;
    } finally {
      this.releaseSlot(slot);
    }
  }

  private releaseSlot(slot: number): void {
    const next = this.slotWaiters.shift();
    if (next !== undefined) next.resolve(slot);
    else this.freeSlots.push(slot);
  }

  /**
   * Collects completions while requests are out: at the end of this turn of the event loop (after every request
   * that arrived in it was submitted) it looks, then sleeps on the completed counter without blocking the event
   * loop (Atomics.waitAsync), telling the worker to notify it. (Polling a while before sleeping, as QEMU's event
   * loop does, made things slower on a 2-core VM: the spinning thread takes the core the other side needs.)
   */
  private watch(): void {
    if (this.watching || this.outstanding === 0) return;
    this.watching = true;
    setImmediate(() => {
      if (this.failure !== undefined) return;
      if (Atomics.load(this.ring.control, COMPLETED) !== this.completedSeen) {
        this.drain();
        return;
      }
      Atomics.store(this.ring.control, LOOP_ASLEEP, 1);
      const waiting = Atomics.waitAsync(this.ring.control, COMPLETED, this.completedSeen);
      const wake = (): void => {
        Atomics.store(this.ring.control, LOOP_ASLEEP, 0);
        this.drain();
      };
      if (waiting.async) void waiting.value.then(wake);
      else wake();
    });
  }

  private drain(): void {
    this.watching = false;
    const completed = Atomics.load(this.ring.control, COMPLETED);
    while (this.completedSeen !== completed) {
      const slot = this.ring.completedRing[this.completedSeen & (SLOT_COUNT - 1)]!;
      this.completedSeen = (this.completedSeen + 1) | 0;
      const waiting = this.pending[slot];
      if (waiting === undefined) continue;
      if (this.ring.status(slot) === STATUS_OK) this.settle(slot, undefined);
      else if (this.earlyReplies.has(slot)) this.settle(slot, this.earlyReplies.get(slot));
      else waiting.awaitingMessage = true;
    }
    this.watch();
  }

  private onMessage(message: CothreadMessage): void {
    if (this.pending[message.slot]?.awaitingMessage === true) this.settle(message.slot, message.reply);
    else this.earlyReplies.set(message.slot, message.reply);
  }

  private settle(slot: number, reply: CothreadReply): void {
    const waiting = this.pending[slot]!;
    this.pending[slot] = undefined;
    this.earlyReplies.delete(slot);
    this.outstanding--;
    waiting.resolve(reply);
  }

  failAll(error: Error): void {
    this.failure ??= error;
    for (let slot = 0; slot < SLOT_COUNT; slot++) {
      const waiting = this.pending[slot];
      this.pending[slot] = undefined;
      waiting?.reject(this.failure);
    }
    this.outstanding = 0;
    for (const waiter of this.slotWaiters.splice(0)) waiter.reject(this.failure);
  }
}
