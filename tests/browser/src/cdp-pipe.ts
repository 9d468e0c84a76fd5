import type { Readable, Writable } from 'node:stream';

/** One event from the browser: `sessionId` says which page it came from (none: the browser itself). */
export interface CdpEvent {
  method: string;
  params: Record<string, unknown>;
  sessionId?: string;
}

interface Pending {
  method: string;
  resolve(result: Record<string, unknown>): void;
  reject(error: Error): void;
}

/**
 * The Chrome DevTools protocol over `--remote-debugging-pipe`: chromium reads commands on its fd 3 and writes
 * answers and events on fd 4, each a JSON message ended by a NUL byte. A pipe needs no port (nothing to race for,
 * nothing another user on the machine can reach) and no WebSocket client (Node 20 has none without a flag), and it
 * closes when chromium dies, so a crash fails every waiting command at once instead of timing out.
 * Sessions are flat (`Target.attachToTarget` with `flatten: true`): a page's commands carry its `sessionId`.
 */
export class CdpPipe {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(event: CdpEvent) => void>();
  private readonly failHooks = new Set<(error: Error) => void>();
  private received: Buffer[] = [];
  private failure: Error | undefined;

  /** `whyClosed` explains the pipe's end (the browser's last words), when it comes before the exit event. */
  constructor(
    private readonly commands: Writable,
    answers: Readable,
    whyClosed: () => string = () => 'the DevTools pipe closed',
  ) {
    answers.on('data', (chunk: Buffer) => this.receive(chunk));
    answers.on('close', () => this.fail(new Error(whyClosed())));
    answers.on('error', (error) => this.fail(error));
    commands.on('error', (error) => this.fail(error));
  }

  /** Sends a command and waits for its answer; an error answer rejects with the protocol's message. */
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { method, resolve, reject });
      this.commands.write(`${JSON.stringify({ id, method, params, sessionId })}\0`);
    });
  }

  /** Calls `listener` with every event until the returned function is called. */
  on(listener: (event: CdpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first event `method` from `sessionId` after this call (subscribe before sending what causes it). */
  next(method: string, sessionId: string | undefined): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      if (this.failure !== undefined) return reject(this.failure);
      const done = (): void => {
        stop();
        this.failHooks.delete(failed);
      };
      const stop = this.on((event) => {
        if (event.method !== method || event.sessionId !== sessionId) return;
        done();
        resolve(event.params);
      });
      const failed = (error: Error): void => {
        done();
        reject(new Error(`waiting for ${method}: ${error.message}`, { cause: error }));
      };
      this.failHooks.add(failed);
    });
  }

  /** Rejects everything waiting, and everything sent from now on, with `error` (chromium exited, a deadline). */
  fail(error: Error): void {
    this.failure ??= error;
    for (const waiting of this.pending.values()) waiting.reject(new Error(`${waiting.method}: ${error.message}`, { cause: error }));
    this.pending.clear();
    for (const hook of [...this.failHooks]) hook(error);
  }

  private receive(chunk: Buffer): void {
    let start = 0;
    for (let end = chunk.indexOf(0); end !== -1; end = chunk.indexOf(0, start)) {
      this.received.push(chunk.subarray(start, end));
      const message = JSON.parse(Buffer.concat(this.received).toString('utf8')) as CdpMessage;
      this.received = [];
      start = end + 1;
      this.dispatch(message);
    }
    if (start < chunk.length) this.received.push(chunk.subarray(start));
  }

  private dispatch(message: CdpMessage): void {
    if (message.id === undefined) {
      const event: CdpEvent = { method: message.method ?? '', params: message.params ?? {}, sessionId: message.sessionId };
      for (const listener of [...this.listeners]) listener(event);
      return;
    }
    const waiting = this.pending.get(message.id);
    if (waiting === undefined) return;
    this.pending.delete(message.id);
    if (message.error !== undefined) waiting.reject(new Error(`${waiting.method}: ${message.error.message} (${message.error.code})`));
    else waiting.resolve(message.result ?? {});
  }
}

interface CdpMessage {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  sessionId?: string;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}
