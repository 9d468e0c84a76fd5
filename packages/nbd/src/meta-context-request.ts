import { decodeText, viewOf } from './wire.js';

/** The body of NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT. */
export interface MetaContextRequest {
  exportName: string;
  queries: string[];
}

/**
 * Parses the option data: 32-bit export name length, the name, a 32-bit count of queries, then each query as a
 * 32-bit length and a string (proto.md "NBD_OPT_LIST_META_CONTEXT"). Undefined when the lengths do not add up
 * exactly to the option length or a string is not valid UTF-8 (the caller answers NBD_REP_ERR_INVALID).
 */
export function parseMetaContextRequest(data: Uint8Array): MetaContextRequest | undefined {
  const view = viewOf(data);
  let at = 0;
  const takeString = (): string | undefined => {
    if (at + 4 > data.length) return undefined;
    const length = view.getUint32(at);
    at += 4;
    if (length > data.length - at) return undefined;
    const text = decodeText(data.subarray(at, at + length));
    at += length;
    return text;
  };
  const exportName = takeString();
  if (exportName === undefined || at + 4 > data.length) return undefined;
  const count = view.getUint32(at);
  at += 4;
  // Each query takes at least its 4-byte length: a count larger than that could fit is a lie, not a loop bound.
  if (count > (data.length - at) / 4) return undefined;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    const query = takeString();
    if (query === undefined) return undefined;
    queries.push(query);
  }
  return at === data.length ? { exportName, queries } : undefined;
}
