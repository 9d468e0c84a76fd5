import { transmissionFlags, type NbdExport } from './nbd-export.js';
import {
  MAX_PAYLOAD,
  MIN_BLOCK_SIZE,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_REP_INFO,
  PREFERRED_BLOCK_SIZE,
} from './protocol.js';
import { optionReply } from './replies.js';
import { MessageBuilder, decodeText, viewOf } from './wire.js';

/** The body of NBD_OPT_INFO / NBD_OPT_GO: an export name and the information types the client asks for. */
export interface InfoRequest {
  exportName: string;
  infoTypes: number[];
}

/**
 * Parses a 32-bit name length, the name, a 16-bit count and that many 16-bit info types (the INFO extension).
 * Undefined unless the pieces add up to exactly the option length.
 */
export function parseInfoRequest(data: Uint8Array): InfoRequest | undefined {
  if (data.length < 6) return undefined;
  const view = viewOf(data);
  const nameLength = view.getUint32(0);
  if (nameLength > data.length - 6) return undefined;
  const exportName = decodeText(data.subarray(4, 4 + nameLength));
  if (exportName === undefined) return undefined;
  const count = view.getUint16(4 + nameLength);
  if (data.length !== 6 + nameLength + 2 * count) return undefined;
  const infoTypes: number[] = [];
  for (let i = 0; i < count; i++) infoTypes.push(view.getUint16(6 + nameLength + 2 * i));
  return { exportName, infoTypes };
}

/**
 * The NBD_REP_INFO replies for an INFO or GO. NBD_INFO_EXPORT is mandatory. Block sizes are sent whether asked
 * or not: they tell clients that READ/WRITE payloads above 32 MiB will be refused, which they need to know before
 * sending one. Name and description only when asked; unknown types are ignored, as the extension says.
 */
export function infoReplies(option: number, nbdExport: NbdExport, infoTypes: readonly number[], structuredReplies: boolean): Uint8Array[] {
  const replies = [
    optionReply(
      option,
      NBD_REP_INFO,
      new MessageBuilder(12).u16(NBD_INFO_EXPORT).u64(nbdExport.device.size).u16(transmissionFlags(nbdExport, structuredReplies)).finish(),
    ),
    optionReply(
      option,
      NBD_REP_INFO,
      new MessageBuilder(14).u16(NBD_INFO_BLOCK_SIZE).u32(MIN_BLOCK_SIZE).u32(PREFERRED_BLOCK_SIZE).u32(MAX_PAYLOAD).finish(),
    ),
  ];
  if (infoTypes.includes(NBD_INFO_NAME)) {
    replies.push(optionReply(option, NBD_REP_INFO, new MessageBuilder().u16(NBD_INFO_NAME).text(nbdExport.name).finish()));
  }
  if (infoTypes.includes(NBD_INFO_DESCRIPTION) && nbdExport.description !== undefined) {
    replies.push(
      optionReply(option, NBD_REP_INFO, new MessageBuilder().u16(NBD_INFO_DESCRIPTION).text(nbdExport.description).finish()),
    );
  }
  return replies;
}
