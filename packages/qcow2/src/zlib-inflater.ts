import type * as NodeZlib from 'node:zlib';

/** The native side of a node:zlib stream: what its own synchronous path (`inflateRawSync`) calls. */
interface ZlibHandle {
  writeSync(flush: number, input: Uint8Array, inOffset: number, inLength: number, output: Uint8Array, outOffset: number, outLength: number): void;
  reset(): void;
}

/**
 * Inflates one raw-deflate stream into `dst`; returns how many bytes came out (at most `dst.length`). Throws when
 * the stream holds more than twice `dst.length` (a deflate bomb), as `inflateRawSync` with that bound did.
 */
export type RawInflater = (src: Uint8Array, dst: Uint8Array) => number;

/**
 * One raw-inflate context, reset for each cluster and inflating straight into the caller's buffer, through the
 * stream's native handle as `zlib.inflateRawSync` itself drives it. `inflateRawSync` builds a whole Transform
 * stream, a 64 KiB output buffer and a native context for every call, all left to the garbage collector:
 * `qcow convert -O raw` of a 2 GiB zlib image held ~20 MiB of dead contexts and ~10 MiB of output buffers at its
 * peak. Undefined when this Node's stream lacks that handle (it is not public API): the caller keeps
 * `inflateRawSync`. A stream that fails is dropped (node destroys it) and the next call starts a fresh one.
 */
export function reusableRawInflater(zlib: typeof NodeZlib): RawInflater | undefined {
  const open = (): { handle: ZlibHandle; state: Uint32Array; failure: () => Error | null } | undefined => {
    const stream = zlib.createInflateRaw() as unknown as { _handle?: Partial<ZlibHandle>; _writeState?: unknown } & NodeZlib.InflateRaw;
    const handle = stream._handle;
    const state = stream._writeState;
    if (typeof handle?.writeSync !== 'function' || typeof handle.reset !== 'function' || !(state instanceof Uint32Array)) {
      stream.destroy();
      return undefined;
    }
    // zlib reports bad data by destroying the stream during writeSync, which sets `errored` at once; the 'error'
    // event comes later and must have a listener.
    stream.on('error', () => {});
    return { handle: handle as ZlibHandle, state, failure: () => stream.errored ?? (stream.destroyed ? new Error('inflate stream closed') : null) };
  };
  let current = open();
  if (current === undefined) return undefined;
  let overflow = new Uint8Array(0);
  /** Throws the stream's failure, if any, dropping the stream so the next call opens a fresh one. */
  const checkFailure = (inflater: NonNullable<typeof current>): void => {
    const failure = inflater.failure();
    if (failure === null) return;
    current = undefined;
    throw failure;
  };
  return (src, dst) => {
    current ??= open();
    const inflater = current!;
    inflater.handle.reset();
    inflater.handle.writeSync(zlib.constants.Z_SYNC_FLUSH, src, 0, src.length, dst, 0, dst.length);
    checkFailure(inflater);
    // state[0] is the output space left, state[1] the input left (node's _writeState).
    const produced = dst.length - inflater.state[0]!;
    const inputLeft = inflater.state[1]!;
    if (produced === dst.length && inputLeft > 0) {
      // The cluster is full and input remains: what follows may be padding, or more data. More than the cluster
      // again is refused (inflateRawSync's maxOutputLength of twice the cluster before).
      if (overflow.length < dst.length) overflow = new Uint8Array(dst.length);
      inflater.handle.writeSync(zlib.constants.Z_SYNC_FLUSH, src, src.length - inputLeft, inputLeft, overflow, 0, dst.length);
      checkFailure(inflater);
      if (inflater.state[0] === 0 && inflater.state[1]! > 0) throw new Error(`the stream inflates to more than ${2 * dst.length} bytes`);
    }
    return produced;
  };
}
