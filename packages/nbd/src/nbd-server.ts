import type { BlockDevice } from '@q/raw';
import { ByteReader } from './byte-reader.js';
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
  private stopping = false;

  constructor(options: NbdServerOptions) {
    this.export = {
      device: options.device,
      name: options.name ?? '',
      readOnly: options.readOnly === true,
      ...(options.description === undefined ? {} : { description: options.description }),
    };
    this.maxInFlight = Math.max(1, options.maxInFlight ?? 16);
    this.log = options.log;
    this.tls = options.tls;
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Runs one connection from the greeting to its end, then closes the transport. Never rejects. */
  serve(transport: NbdTransport): Promise<void> {
    const abort = new AbortController();
    const connection: NbdConnection = { reader: new ByteReader(transport.incoming), transport, signal: abort.signal };
    const entry = { connection, abort, done: Promise.resolve() };
    entry.done = this.run(connection).finally(() => {
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
    const open = [...this.connections];
    for (const entry of open) {
      entry.connection.reader.stop();
      entry.abort.abort();
    }
    await Promise.allSettled(open.map((connection) => connection.done));
  }

  private async run(connection: NbdConnection): Promise<void> {
    const shuttingDown = (): boolean => this.stopping;
    try {
      if (this.stopping) return;
      // A transport able to upgrade was given credentials: TLS is then required whatever the options say.
      const tls = this.tls ?? (connection.transport.startTls === undefined ? undefined : {});
      const session = await negotiate(connection, this.export, { shuttingDown, tls });
      if (session === undefined) return;
      const { reader, transport } = connection;
      await runTransmission(reader, transport, this.export, session, { maxInFlight: this.maxInFlight, shuttingDown, log: this.log });
    } catch (error) {
      // Protocol errors are the client's; anything else (a socket reset mid-handshake) only ends this connection.
      const what = error instanceof NbdProtocolError ? 'protocol error' : error instanceof NbdTlsError ? 'TLS' : 'connection error';
      this.log?.(`${connection.transport.peer ?? 'client'}: ${what}: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  }
}
