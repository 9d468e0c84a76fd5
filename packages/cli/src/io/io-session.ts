import type { BlockDevice } from '@q/raw';
import { writeOut } from '../process-output.js';

/** What an aio request prints once it completes, and whether it went well. */
export interface AioOutcome {
  lines: string;
  ok: boolean;
}

/**
 * One open image and the aio requests started on it. qemu-io prints an aio request's lines when its event loop
 * runs the completion, which is at `aio_flush` or when it drains at exit; here the lines wait for the same two
 * moments, in the order the requests were started, so the output does not depend on timing.
 */
export class IoSession {
  private pending: Array<Promise<AioOutcome>> = [];

  constructor(
    readonly device: BlockDevice,
    readonly readOnly: boolean,
  ) {}

  startAio(request: Promise<AioOutcome>): void {
    // Never an unhandled rejection: a failed request becomes its error line.
    this.pending.push(request.catch((error: unknown) => ({ lines: `${error instanceof Error ? error.message : String(error)}\n`, ok: false })));
  }

  /**
   * Waits for every aio request and prints what each printed. A failed aio request does not fail the session:
   * qemu-io counts an aio command as done once it is submitted.
   */
  async drainAio(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    for (const outcome of await Promise.all(pending)) writeOut(outcome.lines);
  }
}
