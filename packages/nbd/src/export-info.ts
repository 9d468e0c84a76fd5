import { DiskError } from '@q/raw';
import {
  MAX_PAYLOAD,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from './protocol.js';

/** What the handshake learnt about an export, and the limits every request is cut to. */
export interface NbdExportInfo {
  /** The export's size in bytes: fixed for the life of the connection. */
  readonly size: number;
  /** The raw transmission flags (proto.md "Transmission flags"). */
  readonly flags: number;
  readonly readOnly: boolean;
  readonly canFlush: boolean;
  readonly canFua: boolean;
  readonly canTrim: boolean;
  readonly canWriteZeroes: boolean;
  /** Several connections to this export see each other's flushed writes (NBD_FLAG_CAN_MULTI_CONN). */
  readonly canMultiConn: boolean;
  /** Offsets and lengths of requests are multiples of this (a power of two, 1 when the server set no minimum). */
  readonly minimumBlock: number;
  readonly preferredBlock: number;
  /** The largest READ or WRITE payload we send: the server's maximum, capped by ours, a multiple of minimumBlock. */
  readonly maximumPayload: number;
}

/** The three numbers of NBD_INFO_BLOCK_SIZE (the INFO extension), as the server sent them. */
export interface BlockSizeConstraints {
  minimum: number;
  preferred: number;
  maximum: number;
}

/**
 * Without NBD_INFO_BLOCK_SIZE the spec's advice for clients: any alignment, at most 32 MiB per READ or WRITE
 * (proto.md "Block size constraints"). A larger server maximum is capped at ours too: one request's payload is
 * held in memory whole, on both sides.
 */
export const DEFAULT_MAX_PAYLOAD = MAX_PAYLOAD;

/** The largest minimum block size the protocol allows (the INFO extension: a power of two, at most 64 KiB). */
const MAX_MINIMUM_BLOCK = 64 * 1024;

/**
 * Joins the export's size and flags with its block size constraints into the limits requests follow. A minimum
 * that is not a power of two up to 64 KiB breaks a MUST of the protocol and makes alignment meaningless, so it is
 * a protocol error; a preferred or maximum size out of line is brought into line instead, as the spec asks clients
 * to be lenient about hints.
 */
export function exportInfo(
  size: number,
  flags: number,
  constraints: BlockSizeConstraints | undefined,
  payloadCap: number,
  file: string,
): NbdExportInfo {
  const minimum = constraints?.minimum ?? 1;
  if (!isPowerOfTwo(minimum) || minimum > MAX_MINIMUM_BLOCK) {
    throw new DiskError('E_IO', `NBD protocol error: invalid minimum block size ${minimum}`, { file });
  }
  const preferred = Math.max(minimum, constraints?.preferred ?? 4096);
  const serverMaximum = constraints?.maximum ?? DEFAULT_MAX_PAYLOAD;
  const maximumPayload = Math.max(minimum, alignDown(Math.min(serverMaximum, payloadCap), minimum));
  const has = (flag: number): boolean => (flags & flag) !== 0;
  return {
    size,
    flags,
    readOnly: has(NBD_FLAG_READ_ONLY),
    canFlush: has(NBD_FLAG_SEND_FLUSH),
    canFua: has(NBD_FLAG_SEND_FUA),
    canTrim: has(NBD_FLAG_SEND_TRIM),
    canWriteZeroes: has(NBD_FLAG_SEND_WRITE_ZEROES),
    canMultiConn: has(NBD_FLAG_CAN_MULTI_CONN),
    minimumBlock: minimum,
    preferredBlock: preferred,
    maximumPayload,
  };
}

export function isPowerOfTwo(value: number): boolean {
  return Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0;
}

/** `value` rounded down to a multiple of `block` (a power of two; offsets may pass 2^32, so no bit masks). */
export function alignDown(value: number, block: number): number {
  return value - (value % block);
}

export function alignUp(value: number, block: number): number {
  const rest = value % block;
  return rest === 0 ? value : value + block - rest;
}
