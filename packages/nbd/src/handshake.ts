import { parseMetaContextRequest } from './meta-context-request.js';
import { exportContexts, listContexts, selectContexts, type MetaContext } from './meta-contexts.js';
import type { NbdConnection } from './nbd-connection.js';
import { NbdProtocolError, NbdTlsError } from './nbd-error.js';
import { exportMatches, transmissionFlags, type NbdExport } from './nbd-export.js';
import {
  IHAVEOPT,
  KNOWN_CLIENT_FLAGS,
  MAX_OPTION_LENGTH,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_MAGIC,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
} from './protocol.js';
import { infoReplies, parseInfoRequest } from './info-option.js';
import { optionError, optionReply } from './replies.js';
import { answerStartTls, type NbdTlsPolicy } from './start-tls.js';
import { MessageBuilder, decodeText, viewOf } from './wire.js';

/** What option haggling settled, carried into transmission. */
export interface NegotiatedSession {
  /** NBD_OPT_STRUCTURED_REPLY was acknowledged: READ must use structured replies. */
  structuredReplies: boolean;
  /** The contexts the last NBD_OPT_SET_META_CONTEXT selected; BLOCK_STATUS needs at least one. */
  contexts: MetaContext[];
}

export interface HandshakeOptions {
  shuttingDown: () => boolean;
  /** Present: TLS is required (FORCEDTLS); absent: the server runs without TLS (NOTLS). */
  tls: NbdTlsPolicy | undefined;
}

/**
 * Runs the fixed newstyle handshake (proto.md "Newstyle negotiation", "Fixed newstyle negotiation") up to the
 * start of transmission. Returns undefined when the client leaves during haggling (NBD_OPT_ABORT or a close);
 * throws NbdProtocolError when the stream cannot go on and NbdTlsError when TLS refuses the client (the caller
 * drops the connection). NBD_OPT_STARTTLS replaces `connection`'s transport and reader's source.
 */
export async function negotiate(
  connection: NbdConnection,
  nbdExport: NbdExport,
  options: HandshakeOptions,
): Promise<NegotiatedSession | undefined> {
  const { reader } = connection;
  await connection.transport.write([new MessageBuilder(18).u64(NBD_MAGIC).u64(IHAVEOPT).u16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES).finish()]);
  const clientFlagBytes = await reader.read(4);
  if (clientFlagBytes === undefined) return undefined;
  const clientFlags = viewOf(clientFlagBytes).getUint32(0);
  // proto.md "Client flags": the server MUST drop a client setting a flag it does not know.
  if ((clientFlags & ~KNOWN_CLIENT_FLAGS) !== 0) throw new NbdProtocolError(`unknown client flags 0x${clientFlags.toString(16)}`);
  const noZeroes = (clientFlags & NBD_FLAG_C_NO_ZEROES) !== 0;
  const session: NegotiatedSession = { structuredReplies: false, contexts: [] };
  const reply = (parts: Uint8Array[]): Promise<void> => connection.transport.write(parts);
  let tlsRunning = false;

  for (;;) {
    const header = await reader.read(16);
    if (header === undefined) return undefined;
    const view = viewOf(header);
    if (view.getBigUint64(0) !== IHAVEOPT) throw new NbdProtocolError('option without the IHAVEOPT magic');
    const option = view.getUint32(8);
    const length = view.getUint32(12);
    // Hanging up on an absurd length is the DoS exception proto.md allows; reading it would mean buffering it.
    if (length > MAX_OPTION_LENGTH) throw new NbdProtocolError(`option ${option} claims ${length} bytes of data`);
    const data = await reader.readExact(length);

    if (option === NBD_OPT_ABORT) {
      // The client may already have hung up; a failed ACK changes nothing (proto.md "NBD_OPT_ABORT").
      await reply([optionReply(option, NBD_REP_ACK)]).catch(() => {});
      return undefined;
    }
    if (options.shuttingDown()) {
      if (option === NBD_OPT_EXPORT_NAME) return undefined;
      await reply([optionError(option, NBD_REP_ERR_SHUTDOWN, 'server is shutting down')]);
      continue;
    }
    if (option === NBD_OPT_STARTTLS) {
      tlsRunning = await answerStartTls(connection, length, options.tls, tlsRunning);
      continue;
    }
    if (options.tls !== undefined && !tlsRunning) {
      // FORCEDTLS: the option is read (so the stream stays in step) but not looked at; no error message names the
      // export or anything about it. EXPORT_NAME has no error reply, so it can only be answered by hanging up.
      if (option === NBD_OPT_EXPORT_NAME) throw new NbdTlsError('E_NBD_TLS_REQUIRED', 'NBD_OPT_EXPORT_NAME before TLS');
      await reply([optionError(option, NBD_REP_ERR_TLS_REQD, 'TLS is required: send NBD_OPT_STARTTLS first')]);
      continue;
    }
    switch (option) {
      case NBD_OPT_EXPORT_NAME: {
        // No error reply exists for this option: an unknown name can only be answered by hanging up.
        const name = decodeText(data);
        if (name === undefined || !exportMatches(nbdExport, name)) throw new NbdProtocolError(`no export named '${name ?? '?'}'`);
        const answer = new MessageBuilder(134).u64(nbdExport.device.size).u16(transmissionFlags(nbdExport, session.structuredReplies));
        if (!noZeroes) answer.zeros(124);
        await reply([answer.finish()]);
        return session;
      }
      case NBD_OPT_LIST: {
        if (length !== 0) {
          await reply([optionError(option, NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data')]);
          break;
        }
        const name = new MessageBuilder().text(nbdExport.name).finish();
        const server = new MessageBuilder().u32(name.length).bytesOf(name).text(nbdExport.description ?? '').finish();
        await reply([optionReply(option, NBD_REP_SERVER, server), optionReply(option, NBD_REP_ACK)]);
        break;
      }
      case NBD_OPT_INFO:
      case NBD_OPT_GO: {
        const request = parseInfoRequest(data);
        if (request === undefined) {
          await reply([optionError(option, NBD_REP_ERR_INVALID, 'malformed NBD_OPT_INFO/NBD_OPT_GO data')]);
          break;
        }
        if (!exportMatches(nbdExport, request.exportName)) {
          await reply([optionError(option, NBD_REP_ERR_UNKNOWN, `no export named '${request.exportName}'`)]);
          break;
        }
        await reply([...infoReplies(option, nbdExport, request.infoTypes, session.structuredReplies), optionReply(option, NBD_REP_ACK)]);
        if (option === NBD_OPT_GO) return session;
        break;
      }
      case NBD_OPT_STRUCTURED_REPLY:
        if (length !== 0) {
          await reply([optionError(option, NBD_REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data')]);
          break;
        }
        session.structuredReplies = true;
        await reply([optionReply(option, NBD_REP_ACK)]);
        break;
      case NBD_OPT_LIST_META_CONTEXT:
      case NBD_OPT_SET_META_CONTEXT:
        await reply(metaContextReplies(option, data, nbdExport, session));
        break;
      default:
        // Unknown options are refused, never fatal.
        await reply([optionError(option, NBD_REP_ERR_UNSUP, `option ${option} is not supported`)]);
    }
  }
}

/**
 * Answers LIST/SET_META_CONTEXT: one NBD_REP_META_CONTEXT per context found, then an ACK. Both need structured
 * replies first (proto.md "NBD_OPT_LIST_META_CONTEXT"); SET replaces the selection, even with nothing.
 */
function metaContextReplies(option: number, data: Uint8Array, nbdExport: NbdExport, session: NegotiatedSession): Uint8Array[] {
  if (!session.structuredReplies) return [optionError(option, NBD_REP_ERR_INVALID, 'negotiate structured replies first')];
  const request = parseMetaContextRequest(data);
  if (request === undefined) return [optionError(option, NBD_REP_ERR_INVALID, 'malformed meta context request')];
  if (!exportMatches(nbdExport, request.exportName)) {
    return [optionError(option, NBD_REP_ERR_UNKNOWN, `no export named '${request.exportName}'`)];
  }
  const contexts = exportContexts(nbdExport);
  const set = option === NBD_OPT_SET_META_CONTEXT;
  const found = set ? selectContexts(contexts, request.queries) : listContexts(contexts, request.queries);
  if (set) session.contexts = found;
  // The id in LIST replies is reserved and SHOULD be 0; in SET replies it is the id BLOCK_STATUS will carry.
  return [
    ...found.map((context) => optionReply(option, NBD_REP_META_CONTEXT, new MessageBuilder().u32(set ? context.id : 0).text(context.name).finish())),
    optionReply(option, NBD_REP_ACK),
  ];
}
