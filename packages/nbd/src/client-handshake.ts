import { DiskError, type DiskErrorCode } from '@q/raw';
import type { ByteReader } from './byte-reader.js';
import { oneLine, protocolFailure } from './client-errors.js';
import { exportInfo, type BlockSizeConstraints, type NbdExportInfo } from './export-info.js';
import {
  IHAVEOPT,
  MAX_OPTION_LENGTH,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_EXPORT,
  NBD_MAGIC,
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_REP_ACK,
  NBD_REP_ERR_BLOCK_SIZE_REQD,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  OLDSTYLE_MAGIC,
  OPTION_REPLY_MAGIC,
} from './protocol.js';
import type { NbdTransport } from './transport.js';
import { MessageBuilder, decodeText, encodeText, readOffset, viewOf } from './wire.js';

export interface ClientHandshakeOptions {
  exportName: string;
  /** The export's name for errors (its URI). */
  file: string;
  /** Largest READ/WRITE payload to send, whatever the server allows (default 32 MiB). */
  maxPayload: number;
  /** Ask with NBD_OPT_INFO and leave with NBD_OPT_ABORT: learn about the export without using it. */
  probe?: boolean;
}

export interface ClientHandshakeResult {
  info: NbdExportInfo;
  /** In the transmission phase (false after a probe that ended with NBD_OPT_ABORT). */
  transmission: boolean;
}

/**
 * The client's side of the fixed newstyle handshake (proto.md "Newstyle negotiation", "Fixed newstyle
 * negotiation"): NBD_OPT_GO asking for NBD_INFO_EXPORT and NBD_INFO_BLOCK_SIZE, and NBD_OPT_EXPORT_NAME for a
 * server that answers GO with NBD_REP_ERR_UNSUP or does not speak fixed newstyle at all. No structured replies are
 * asked for, so every transmission reply is simple. Every failure is a DiskError naming `options.file`.
 */
export async function negotiateAsClient(reader: ByteReader, transport: NbdTransport, options: ClientHandshakeOptions): Promise<ClientHandshakeResult> {
  const { file } = options;
  const greeting = await reader.read(18);
  if (greeting === undefined) throw protocolFailure('the server closed the connection before its greeting', file);
  const view = viewOf(greeting);
  if (view.getBigUint64(0) !== NBD_MAGIC) throw protocolFailure('not an NBD server (no NBDMAGIC in the greeting)', file);
  const style = view.getBigUint64(8);
  if (style === OLDSTYLE_MAGIC) throw new DiskError('E_UNSUPPORTED', 'the server speaks the oldstyle NBD handshake, which is not supported', { file });
  if (style !== IHAVEOPT) throw protocolFailure('not an NBD server (no IHAVEOPT in the greeting)', file);
  const serverFlags = view.getUint16(16);
  const fixed = (serverFlags & NBD_FLAG_FIXED_NEWSTYLE) !== 0;
  // proto.md "Client flags": NO_ZEROES only when the server offered it, or it must drop us.
  const noZeroes = (serverFlags & NBD_FLAG_NO_ZEROES) !== 0;
  const clientFlags = (fixed ? NBD_FLAG_C_FIXED_NEWSTYLE : 0) | (noZeroes ? NBD_FLAG_C_NO_ZEROES : 0);
  await transport.write([new MessageBuilder(4).u32(clientFlags).finish()]);
  if (fixed) {
    const answered = await optionGo(reader, transport, options);
    if (answered !== undefined) return answered;
  }
  return { info: await optionExportName(reader, transport, options, noZeroes), transmission: true };
}

/** NBD_OPT_GO (or NBD_OPT_INFO when probing); undefined when the server does not know the option. */
async function optionGo(reader: ByteReader, transport: NbdTransport, options: ClientHandshakeOptions): Promise<ClientHandshakeResult | undefined> {
  const option = options.probe === true ? NBD_OPT_INFO : NBD_OPT_GO;
  const name = encodeText(options.exportName);
  const data = new MessageBuilder().u32(name.length).bytesOf(name).u16(2).u16(NBD_INFO_EXPORT).u16(NBD_INFO_BLOCK_SIZE).finish();
  await sendOption(transport, option, data);
  let size: number | undefined;
  let flags = 0;
  let constraints: BlockSizeConstraints | undefined;
  for (;;) {
    const reply = await readOptionReply(reader, option, options.file);
    if (reply.type === NBD_REP_ACK) break;
    if (reply.type === NBD_REP_INFO) {
      const info = parseInfo(reply.data, options.file);
      if (info?.kind === 'export') ({ size, flags } = info);
      if (info?.kind === 'block-size') constraints = info.constraints;
      continue;
    }
    if (reply.type >= 0x80000000) {
      if (reply.type === NBD_REP_ERR_UNSUP) return undefined;
      // A soft disconnect, as proto.md asks of a client that gives up during haggling.
      await sendOption(transport, NBD_OPT_ABORT, new Uint8Array(0)).catch(() => {});
      throw optionError(reply.type, reply.data, options);
    }
    // Any other reply type to GO is one we do not know: proto.md lets a client ignore it and read on.
  }
  if (size === undefined) throw protocolFailure('NBD_OPT_GO succeeded without NBD_INFO_EXPORT', options.file);
  const info = exportInfo(size, flags, constraints, options.maxPayload, options.file);
  if (option === NBD_OPT_INFO) await sendOption(transport, NBD_OPT_ABORT, new Uint8Array(0)).catch(() => {});
  return { info, transmission: option === NBD_OPT_GO };
}

/** NBD_OPT_EXPORT_NAME: no error reply exists, so a server refusing the name just hangs up (proto.md). */
async function optionExportName(
  reader: ByteReader,
  transport: NbdTransport,
  options: ClientHandshakeOptions,
  noZeroes: boolean,
): Promise<NbdExportInfo> {
  await sendOption(transport, NBD_OPT_EXPORT_NAME, encodeText(options.exportName));
  const answer = await reader.read(10);
  if (answer === undefined) {
    throw new DiskError('E_NOT_FOUND', `Requested export not available: the server hung up on export '${oneLine(options.exportName)}'`, {
      file: options.file,
    });
  }
  const view = viewOf(answer);
  if (!noZeroes) await reader.skip(124);
  return exportInfo(checkedSize(view, 0, options.file), view.getUint16(8), undefined, options.maxPayload, options.file);
}

function sendOption(transport: NbdTransport, option: number, data: Uint8Array): Promise<void> {
  return transport.write([new MessageBuilder(16 + data.length).u64(IHAVEOPT).u32(option).u32(data.length).bytesOf(data).finish()]);
}

/** One option reply (proto.md "Fixed newstyle negotiation"); its data is bounded so a lying length cannot make us buffer it. */
async function readOptionReply(reader: ByteReader, option: number, file: string): Promise<{ type: number; data: Uint8Array }> {
  const header = await reader.read(20);
  if (header === undefined) throw protocolFailure('the server closed the connection during option haggling', file);
  const view = viewOf(header);
  if (view.getBigUint64(0) !== OPTION_REPLY_MAGIC) throw protocolFailure('bad option reply magic', file);
  const answered = view.getUint32(8);
  if (answered !== option) throw protocolFailure(`reply to option ${answered} while option ${option} was asked`, file);
  const length = view.getUint32(16);
  if (length > MAX_OPTION_LENGTH) throw protocolFailure(`option reply of ${length} bytes`, file);
  return { type: view.getUint32(12), data: length === 0 ? new Uint8Array(0) : await reader.readExact(length) };
}

type InfoItem = { kind: 'export'; size: number; flags: number } | { kind: 'block-size'; constraints: BlockSizeConstraints };

/** An NBD_REP_INFO payload: a 16-bit type, then its fields. Types we did not ask about are ignored. */
function parseInfo(data: Uint8Array, file: string): InfoItem | undefined {
  if (data.length < 2) throw protocolFailure('NBD_REP_INFO without a type', file);
  const view = viewOf(data);
  const type = view.getUint16(0);
  if (type === NBD_INFO_EXPORT) {
    if (data.length !== 12) throw protocolFailure(`NBD_INFO_EXPORT of ${data.length} bytes`, file);
    return { kind: 'export', size: checkedSize(view, 2, file), flags: view.getUint16(10) };
  }
  if (type === NBD_INFO_BLOCK_SIZE) {
    if (data.length !== 14) throw protocolFailure(`NBD_INFO_BLOCK_SIZE of ${data.length} bytes`, file);
    return { kind: 'block-size', constraints: { minimum: view.getUint32(2), preferred: view.getUint32(6), maximum: view.getUint32(10) } };
  }
  return undefined;
}

function checkedSize(view: DataView, at: number, file: string): number {
  const size = readOffset(view, at);
  if (size === undefined) throw new DiskError('E_TOO_LARGE', 'the export is larger than 2^53 bytes', { file });
  return size;
}

/** An error reply to GO as a DiskError: an unknown export is E_NOT_FOUND, in qemu-img's words. */
function optionError(type: number, data: Uint8Array, options: ClientHandshakeOptions): DiskError {
  const said = decodeText(data.subarray(0, 4096));
  const reported = said === undefined || said === '' ? '' : `: server reported: ${oneLine(said)}`;
  const [code, text]: [DiskErrorCode, string] =
    type === NBD_REP_ERR_UNKNOWN
      ? ['E_NOT_FOUND', 'Requested export not available']
      : type === NBD_REP_ERR_TLS_REQD
        ? ['E_UNSUPPORTED', 'the server requires TLS, which this client does not support']
        : type === NBD_REP_ERR_POLICY
          ? ['E_IO', 'the server refused the export by its policy']
          : type === NBD_REP_ERR_SHUTDOWN
            ? ['E_IO', 'the server is shutting down']
            : type === NBD_REP_ERR_BLOCK_SIZE_REQD
              ? ['E_IO', 'the server insists on block size negotiation (NBD_REP_ERR_BLOCK_SIZE_REQD)']
              : ['E_IO', `the server refused NBD_OPT_GO (error 0x${type.toString(16)})`];
  return new DiskError(code, text + reported, { file: options.file });
}
