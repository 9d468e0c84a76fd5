import type { BlockDevice } from '@q/raw';
import type { DirtyBitmapSource } from './dirty-bitmap-source.js';
import { ByteReader } from './byte-reader.js';
import { ConnectionGate } from './connection-gate.js';
import { negotiate } from './handshake.js';
import type { NbdConnection } from './nbd-connection.js';
import { NbdProtocolError, NbdTlsError } from './nbd-error.js';
import type { NbdExport } from './nbd-export.js';
import type { NbdTlsPolicy } from './start-tls.js';
import { runTransmission } from './transmission.js';
import type { NbdTransport } from './transport.js';

export interface NbdServerOptions {
  device: BlockDevice;
  /** The export name (`qemu-nbd -x`); default: the empty name. */
  name?: string;
  description?: string;
  /** Serve read-only even when the device is writable. */
  readOnly?: boolean;
  /** Requests in flight per connection before the server stops reading from it (default 16). */
  maxInFlight?: number;
  /**
   * Require TLS (proto.md's FORCEDTLS mode), optionally from listed identities only. The transports must be able
   * to upgrade (`NbdTransport.startTls`, which `@q/nbd/node` provides when given credentials); one that cannot is
   * never served. A transport that can upgrade is held to TLS even without this option.
   */
  tls?: NbdTlsPolicy;
  /**
   * Where to report dropped connections and failed requests; default: nowhere. `error` is what ended a connection
   * (an NbdTlsError for a client TLS refused), for callers that report some kinds only.
   */
  log?: (message: string, error?: unknown) => void;
  /**
   * Connections served at once (qemu-nbd's `-e/--shared`); one beyond waits, connected but without a greeting,
   * until another leaves. 0 or absent: no limit. At 1 the export does not advertise CAN_MULTI_CONN (qemu-nbd does
   * the same), so clients such as nbdcopy do not open connections that would only wait.
   */
  maxConnections?: number;
  /**
   * false (qemu-nbd without `-t`): the server stops by itself once a client that reached transmission leaves and
   * no other connection is being served; clients still waiting for a slot are turned away. `finished` then
   * resolves. Default true: serve until `shutdown()`.
   */
  persistent?: boolean;
  /** Offer the `qemu:allocation-depth` metadata context (`qemu-nbd -A`). */
  allocationDepth?: boolean;
  /** Offer a `qemu:dirty-bitmap:NAME` metadata context for each bitmap (`qemu-nbd -B NAME`, repeatable). */
  dirtyBitmaps?: readonly DirtyBitmapSource[];
}

/**
 * Serves one device over NBD to any number of connections at once. Transport-neutral: hand it each connection
 * (`serve`), from `@q/nbd/node`'s listener, an in-memory pair, or anything else that moves bytes. A client that
 * misbehaves loses its own connection only; the server, and every other client, carry on.
 */
export class NbdServer {
  readonly export: NbdExport;
  private readonly maxInFlight: number;
  private readonly log: ((message: string, error?: unknown) => void) | undefined;
  private readonly tls: NbdTlsPolicy | undefined;
  private readonly connections = new Set<{ connection: NbdConnection; abort: AbortController; done: Promise<void> }>();
  private readonly gate: ConnectionGate;
  private readonly persistent: boolean;
  private stopping = false;
  private markFinished: () => void = () => {};
  /**
   * Resolves when a non-persistent server has served its last client and stopped by itself (never for a
   * persistent one). The owner then closes the listener and the device, as after `shutdown()`.
   */
  readonly finished: Promise<void> = new Promise((resolve) => {
    this.markFinished = resolve;
  });

  constructor(options: NbdServerOptions) {
    const maxConnections = Math.max(0, Math.floor(options.maxConnections ?? 0));
    this.export = {
      device: options.device,
      name: options.name ?? '',
      readOnly: options.readOnly === true,
      ...(options.description === undefined ? {} : { description: options.description }),
      multiConn: maxConnections !== 1,
      allocationDepth: options.allocationDepth === true,
      dirtyBitmaps: options.dirtyBitmaps ?? [],
    };
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 16);
    this.log = options.log;
    this.tls = options.tls;
    this.gate = new ConnectionGate(maxConnections);
    this.persistent = options.persistent !== false;
  }

  /** Connections currently open, waiting for a slot or served. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Connections waiting for a slot (`maxConnections` are being served). */
  get waitingCount(): number {
    return this.gate.waitingCount;
  }

  /**
   * Runs one connection from the greeting to its end, then closes the transport. Never rejects. Beyond
   * `maxConnections` the connection first waits for a slot; if the server stops meanwhile it is closed unanswered.
   */
  serve(transport: NbdTransport): Promise<void> {
    const abort = new AbortController();
    const connection: NbdConnection = { reader: new ByteReader(transport.incoming), transport, signal: abort.signal };
    const entry = { connection, abort, done: Promise.resolve() };
    entry.done = this.admitAndRun(connection).finally(() => {
      this.connections.delete(entry);
      // The transport in use at the end: after STARTTLS, closing the TLS one sends close_notify first.
      connection.transport.close();
    });
    this.connections.add(entry);
    return entry.done;
  }

  /**
   * Stops serving: options still being haggled get NBD_REP_ERR_SHUTDOWN, new requests ESHUTDOWN, requests already
   * running finish and reply, then every connection is closed. Resolves when all have ended.
   */
  async shutdown(): Promise<void> {
    this.stopping = true;
    this.gate.close();
    const open = [...this.connections];
    for (const entry of open) {
      entry.connection.reader.stop();
      entry.abort.abort();
    }
    await Promise.allSettled(open.map((connection) => connection.done));
  }

  private async admitAndRun(connection: NbdConnection): Promise<void> {
    if (!(await this.gate.enter())) return;
    let transmitted = false;
    try {
      transmitted = await this.run(connection);
    } finally {
      // As qemu-nbd: only a client that got as far as transmission ends a non-persistent server (a probe that
      // connects and hangs up, or `nbdinfo --list`, does not), and only when it was the last one being served.
      // Stop before freeing the slot, so that no waiting connection is admitted into a server that is ending.
      if (transmitted && !this.persistent && this.gate.activeCount === 1 && !this.stopping) {
        void this.shutdown().then(this.markFinished);
      }
      this.gate.leave();
    }
  }

  /** One connection from the greeting on; true when it reached transmission. */
  private async run(connection: NbdConnection): Promise<boolean> {
    const shuttingDown = (): boolean => this.stopping;
    let transmitted = false;
    try {
      if (this.stopping) return false;
      // A transport able to upgrade was given credentials: TLS is then required whatever the options say.
      const tls = this.tls ?? (connection.transport.startTls === undefined ? undefined : {});
      const session = await negotiate(connection, this.export, { shuttingDown, tls });
      if (session === undefined) return false;
      transmitted = true;
      const { reader, transport } = connection;
      await runTransmission(reader, transport, this.export, session, { maxInFlight: this.maxInFlight, shuttingDown, log: this.log });
    } catch (error) {
      // Protocol errors are the client's; anything else (a socket reset mid-handshake) only ends this connection.
      const what = error instanceof NbdProtocolError ? 'protocol error' : error instanceof NbdTlsError ? 'TLS' : 'connection error';
      this.log?.(`${connection.transport.peer ?? 'client'}: ${what}: ${error instanceof Error ? error.message : String(error)}`, error);
    }
    return transmitted;
  }
}
