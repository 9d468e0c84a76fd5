/**
 * Lets at most `limit` connections be served at once (qemu-nbd's `-e/--shared`); the others wait, first come
 * first served, without a greeting. That is what a client of qemu-nbd sees: qemu-nbd stops accepting at its limit,
 * so an extra client sits in the listen backlog, connected but unanswered, until a slot frees up. Accepting and
 * holding the connection here gives the client the same view on any transport, including ones without a backlog.
 */
export class ConnectionGate {
  private readonly limit: number;
  private active = 0;
  private readonly waiting: Array<(admitted: boolean) => void> = [];
  private closed = false;

  /** `limit` 0 (qemu-nbd's `-e 0`) lets everyone in. */
  constructor(limit: number) {
    this.limit = limit;
  }

  /** Connections admitted and not yet left. */
  get activeCount(): number {
    return this.active;
  }

  /** Connections waiting for a slot. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Resolves true once the connection may be served, false when the gate closed first (the server stopped). */
  enter(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.limit === 0 || this.active < this.limit) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** An admitted connection has ended: its slot goes to the longest waiting one, unless the gate is closed. */
  leave(): void {
    this.active--;
    if (this.closed) return;
    const next = this.waiting.shift();
    if (next === undefined) return;
    this.active++;
    next(true);
  }

  /** Admits no one from now on: every waiting connection is turned away (it will be closed unanswered). */
  close(): void {
    this.closed = true;
    for (const turnAway of this.waiting.splice(0)) turnAway(false);
  }
}
