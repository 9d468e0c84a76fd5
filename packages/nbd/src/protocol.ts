/**
 * The numbers of the NBD protocol (proto.md, "Values" and the message layouts in "Handshake" and "Transmission").
 * All multi-byte fields travel in network byte order; 64-bit magics are kept as bigints so they compare exactly.
 */

/** 'NBDMAGIC': the first 8 bytes a server sends (proto.md "Newstyle negotiation"). */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** Follows NBDMAGIC in the oldstyle handshake (proto.md "Oldstyle negotiation"), which we do not speak. */
export const OLDSTYLE_MAGIC = 0x00420281861253n;
/** 'IHAVEOPT': follows NBDMAGIC, and starts every option the client sends. */
export const IHAVEOPT = 0x49484156454f5054n;
/** Starts every option reply (proto.md "Fixed newstyle negotiation"). */
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flags, sent by the server (proto.md "Handshake flags"). */
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;

/** Client flags: the server must drop a client that sets any other bit (proto.md "Client flags"). */
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;
export const KNOWN_CLIENT_FLAGS = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;

/** Transmission flags (proto.md "Transmission flags"). */
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

/**
 * Option types (proto.md "Option types"). The meta context options are 9 and 10 as in the published spec and in
 * libnbd and qemu; some early drafts of proto.md numbered them 10 and 11 (with 9 for a BLOCK_SIZE option).
 */
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;

/** Option reply types; errors have bit 31 set (proto.md "Option reply types"). */
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
export const NBD_REP_ERR_UNSUP = 0x80000001;
export const NBD_REP_ERR_POLICY = 0x80000002;
export const NBD_REP_ERR_INVALID = 0x80000003;
export const NBD_REP_ERR_TLS_REQD = 0x80000005;
export const NBD_REP_ERR_UNKNOWN = 0x80000006;
export const NBD_REP_ERR_SHUTDOWN = 0x80000007;
/** The INFO extension: the server will not serve a client that did not ask for NBD_INFO_BLOCK_SIZE. */
export const NBD_REP_ERR_BLOCK_SIZE_REQD = 0x80000008;

/** Information types inside NBD_REP_INFO (the INFO extension, NBD_OPT_INFO / NBD_OPT_GO). */
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

/** Request types (proto.md "Request types"). */
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

/** Command flags (proto.md "Command flags"). */
export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

/** Structured reply flags and chunk types (proto.md "Structured reply flags", "Structured reply types"). */
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR = 0x8001;
export const NBD_REPLY_TYPE_ERROR_OFFSET = 0x8002;

/**
 * Error values: the protocol fixes these numbers rather than passing the host's errno through (proto.md
 * "Error values"). ENOTSUP is what a server answers NBD_CMD_FLAG_FAST_ZERO with when zeroing would not be fast.
 */
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

/** base:allocation status flags (proto.md "Metadata contexts"). */
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;
export const BASE_ALLOCATION = 'base:allocation';

/**
 * qemu's metadata contexts (qemu's docs/interop/nbd.txt, and what qemu-nbd answers): `qemu:allocation-depth` gives
 * each extent the 1-based layer of the backing chain that allocates it (0: none does); `qemu:dirty-bitmap:NAME`
 * flags the extents a persistent dirty bitmap marks dirty.
 */
export const QEMU_ALLOCATION_DEPTH = 'qemu:allocation-depth';
export const QEMU_DIRTY_BITMAP_PREFIX = 'qemu:dirty-bitmap:';
export const NBD_STATE_DIRTY = 1 << 0;

/** Block size constraints we announce in NBD_INFO_BLOCK_SIZE, and enforce on READ and WRITE payloads. */
export const MIN_BLOCK_SIZE = 1;
export const PREFERRED_BLOCK_SIZE = 4096;
export const MAX_PAYLOAD = 32 * 1024 * 1024;

/**
 * Options carry at most this much data: nothing we understand needs more (a 4096-byte name plus a handful of
 * queries), and a client claiming more is either broken or trying to make us buffer it, so we hang up.
 */
export const MAX_OPTION_LENGTH = 64 * 1024;

/** A longest string the protocol allows (proto.md "Conventions": names and messages MUST be at most 4096 bytes). */
export const MAX_STRING_LENGTH = 4096;
